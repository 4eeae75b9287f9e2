import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from devstack.postgres import psql_binary
from tests.browser import (  # noqa: F401 (fixtures)
    browser_context,
    chromium_browser,
    page,
    playwright_instance,
)
from tests.processes import (
    PROJECT_ROOT,
    WEB_SERVERS,
    Daphne,
    Granian,
    Listener,
    Uvicorn,
    WebServer,
)

# The tiers (`make test-fast` runs `-m "not slow"`). A test is slow when it starts a
# process: through one of these fixtures (every server fixture needs stack_env; `web` picks
# its server at run time), or by itself, when it is marked slow by hand.
PROCESS_FIXTURES = {"stack_env", "playwright_instance", "web"}
PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.fork", "os.exec"}
_fast_test: str | None = None  # the test running now, when it is in the fast tier


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marks
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    global _fast_test
    _fast_test = None if item.get_closest_marker("slow") else item.nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    global _fast_test
    # Not in teardown: a slow test's module or session fixtures may end after a fast test.
    _fast_test = None


def _fast_tests_start_no_process(event: str, args: tuple) -> None:
    # Raised inside the call that would start it: a forgotten mark fails in `make test` too.
    if _fast_test is not None and event in PROCESS_EVENTS:
        raise RuntimeError(f"{_fast_test} starts a process ({event}): mark it slow")


sys.addaudithook(_fast_tests_start_no_process)


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (the query, e.g. a socket host, is kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """A test database of this run's own, so runs sharing one server never collide."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def flushes_between_tests_are_not_truncate_events() -> Iterator[None]:
    """pytest-django empties the tables after each transactional test with one TRUNCATE of
    them all: bookkeeping, not a change to announce. Logged, its TRUNCATE events would wait
    in the emptied log for the next test (pgtrigger.ignore skips them, on that flush only)."""
    import pgtrigger
    from django.core.management.commands import flush

    from violations.models import violation_models

    truncate_triggers = [
        f"{model._meta.label}:{trigger.name}"
        for model in violation_models().values()
        for trigger in model._meta.triggers
        if trigger.operation == pgtrigger.Truncate
    ]
    handle = flush.Command.handle

    def handle_without_truncate_events(self, *args, **options):
        with pgtrigger.ignore(*truncate_triggers):
            return handle(self, *args, **options)

    flush.Command.handle = handle_without_truncate_events
    yield
    flush.Command.handle = handle


@pytest.fixture(scope="session")
def stack_env(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:
    """Environment for processes that must see the test database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = with_database(
        os.environ["DATABASE_URL"], connection.settings_dict["NAME"]
    )
    env["PYTHONUNBUFFERED"] = "1"
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
    )
    yield env
    # Servers stopped by their tests may leave a backend behind for a moment (a proxied
    # connection closing, say); end them so pytest-django can drop the test database.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@contextmanager
def empty_database(server_url: str, name: str) -> Iterator[str]:
    """A new, empty database `name` on the server of `server_url` (replacing any left by an
    interrupted run), its URL, and the database dropped afterwards."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch_database_url(stack_env) -> Iterator[str]:
    """An empty database of the test's own on the suite's server, dropped afterwards: for
    processes that must not share the test database (its listener lock, its event log)."""
    with empty_database(
        stack_env["DATABASE_URL"], f"{connection.settings_dict['NAME']}_scratch"
    ) as url:
        yield url


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def daphne(stack_env, logs) -> Iterator[Daphne]:
    server = Daphne(stack_env, logs / "daphne.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def uvicorn(stack_env, logs) -> Iterator[Uvicorn]:
    """The same application under uvicorn (WEB_SERVER=uvicorn), beside the session's Daphne."""
    server = Uvicorn(stack_env, logs / "uvicorn.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def granian(stack_env, logs) -> Iterator[Granian]:
    """The same application under granian (WEB_SERVER=granian)."""
    server = Granian(stack_env, logs / "granian.log").start()
    yield server
    server.stop()


# A deployment behind a reverse proxy, with a wall screen, an https site trusted to open
# sockets and email for password resets (README, Configuration), for `configured_web`.
# Loopback answers on all of 127.0.0.0/8, so each party connects from an address of its own.
PROXY_ADDRESS = "127.0.0.2"
SCREEN_ADDRESS = "127.0.0.3"
TRUSTED_ORIGIN = "https://wall.example.org:8443"
LOGIN_COOLOFF_S = 3
CONFIGURED_ENV = {
    "FORWARDED_ALLOW_IPS": PROXY_ADDRESS,
    "DJANGO_LOGIN_NEVER_LOCKOUT_IPS": SCREEN_ADDRESS,
    "DJANGO_LOGIN_COOLOFF_SECONDS": str(LOGIN_COOLOFF_S),
    "DJANGO_CSRF_TRUSTED_ORIGINS": TRUSTED_ORIGIN,
    "EMAIL_URL": "consolemail://",
}


@pytest.fixture(scope="session", params=["daphne", "uvicorn"])
def configured_web(request, stack_env, logs) -> Iterator[WebServer]:
    """Each server in turn, started as `CONFIGURED_ENV` configures a deployment."""
    env = stack_env | CONFIGURED_ENV | {"WEB_SERVER": request.param}
    server = WEB_SERVERS[request.param](env, logs / f"{request.param}-configured.log").start()
    yield server
    server.stop()


@pytest.fixture(params=list(WEB_SERVERS))
def web(request) -> WebServer:
    """The session's web server of each kind, in turn: a test taking `web` runs under each."""
    return request.getfixturevalue(request.param)


def feed_socket(server: WebServer, cookie: str, query: str = "") -> ClientConnection:
    """`/ws/violations/` on `server` from its own page's origin, as the viewer of `cookie`."""
    return connect(
        f"{server.ws_url}/ws/violations/{query}",
        origin=server.http_url,
        additional_headers={"Cookie": cookie},
        open_timeout=10,
    )


@pytest.fixture(scope="session")
def listener(stack_env, logs) -> Iterator[Listener]:
    process = Listener(stack_env, logs / "listener.log").start()
    yield process
    process.stop()


@pytest.fixture
def listener_paused(listener) -> Iterator[None]:
    """For a test that runs listeners of its own: only one can be active per database, so
    the session's listener stops for the test and starts again after it."""
    listener.stop()
    yield
    listener.start()


@pytest.fixture
def psql(stack_env) -> Callable[[str], str]:
    """Run SQL through the real psql binary, as a user at a psql prompt would."""

    def run(sql: str) -> str:
        result = subprocess.run(
            [psql_binary(), stack_env["DATABASE_URL"], "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"psql failed: {result.stderr}"
        return result.stdout.strip()

    return run


def grant_dashboard_view(user) -> None:
    """Let `user` watch the dashboard (as the "Dashboard viewers" group does in production).

    The permission itself, not the group: Django re-creates permissions after each
    transactional test's flush, but not the group its migration made.
    """
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="dashboard", codename="view_dashboard")
    )


def as_viewer(application):
    """`application` with a viewer in its scope, for a consumer tested in-process: an unsaved
    active superuser, who may view without a database query (and has no session to cap)."""
    viewer = get_user_model()(username="in-process-viewer", is_active=True, is_superuser=True)

    async def with_viewer(scope, receive, send):
        return await application(dict(scope, user=viewer), receive, send)

    return with_viewer


@pytest.fixture
def session_cookie(transactional_db) -> str:
    """A logged-in dashboard viewer's session cookie, as a browser would hold it."""
    user = get_user_model().objects.create_user("officer", password="unused-in-tests")
    grant_dashboard_view(user)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def open_feed(daphne, session_cookie) -> Iterator[Callable[..., ClientConnection]]:
    """Open `/ws/violations/` as the logged-in user (or with other headers)."""
    sockets = ExitStack()

    def open_socket(
        path: str = "/ws/violations/", *, cookie: str | None = session_cookie, origin=None
    ) -> ClientConnection:
        headers = {"Cookie": cookie} if cookie else {}
        return sockets.enter_context(
            connect(
                daphne.ws_url + path,
                origin=origin or daphne.http_url,
                additional_headers=headers,
                open_timeout=5,
            )
        )

    with sockets:
        yield open_socket


def receive_json(socket: ClientConnection, timeout: float = 1.0) -> dict:
    """The next JSON message that is not a heartbeat, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            message = json.loads(socket.recv(timeout=max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            pytest.fail(f"no message within {timeout} s")
        if message.get("type") != "heartbeat":
            return message


def receive_fragment(socket: ClientConnection, timeout: float = 5.0) -> str:
    """The next dashboard frame that is not a heartbeat, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            frame = socket.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pytest.fail(f"no frame within {timeout} s")
        if 'id="heartbeat"' not in frame[:200]:
            return frame


def http_get(url: str, cookie: str | None = None) -> tuple[dict[str, str], bytes]:
    """GET `url` (ours, on 127.0.0.1) as a browser holding `cookie` would: headers, body."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers), response.read()
