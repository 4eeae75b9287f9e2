"""docker-compose.yml and the Dockerfile, without a Docker engine.

The compose file is checked against the compose-spec schema, then each of our services
runs its own command from the file, with its own environment (filled in from
.env.example, as after `cp .env.example .env`), as a local process against this
session's PostgreSQL and Redis: `migrate` on an empty database, then `web` and
`listener`, and a row inserted with psql reaches a logged-in WebSocket and browser; the
same `web` command with WEB_SERVER=uvicorn in .env serves under uvicorn.
"""

import html
import http.cookies
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from config import web_server
from dashboard.healthcheck import probe_host
from devstack.ports import free_port, port_open, wait_until
from devstack.postgres import psql_binary
from tests.browser import page_errors
from tests.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    app_services,
    command_argv,
    healthcheck_argv,
    image_env,
    interpolate,
    load_compose,
    read_dockerfile,
    read_env_file,
    translate_argv,
    translate_env,
    variables_used,
)
from tests.conftest import empty_database, receive_json
from tests.processes import PROJECT_ROOT, ServerProcess

OUR_SERVICES = {"migrate", "web", "listener", "prune"}
# Where the listener's container keeps its health file; the tests use a path of their own.
LISTENER_HEALTH_FILE = "/tmp/listener-alive"  # noqa: S108 (inside the container)
PSQL_INSERT = (
    "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
    "violation_image) VALUES (4, '2025-07-28', '15:00:00', 'cam4/compose.jpg') RETURNING id;"
)


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    """What compose reads from .env after `cp .env.example .env`."""
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(dotenv) -> dict:
    return load_compose(dotenv)


@pytest.fixture(scope="module")
def dockerfile():
    return read_dockerfile()


# --- The files themselves --------------------------------------------------------------------


def check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_the_compose_file_follows_the_compose_spec():
    result = check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_schema_check_rejects_a_mistake(tmp_path):
    broken = COMPOSE_FILE.read_text().replace(
        "service_completed_successfully", "service_completed", 1
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = check_compose_schema(tmp_path / "docker-compose.yml")
    assert result.returncode != 0
    assert "service_completed" in result.stdout + result.stderr


def test_the_services_and_their_start_order(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", *OUR_SERVICES}
    assert set(app_services(compose)) == OUR_SERVICES

    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "listener", "prune"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
        assert services[name]["restart"] == "unless-stopped"
    assert "restart" not in services["migrate"]  # runs once, then the others start


def test_images_are_pinned_and_only_the_web_port_is_published_on_localhost(compose):
    services = compose["services"]
    assert re.fullmatch(r"postgres:\d+", services["db"]["image"])
    assert re.fullmatch(r"redis:\d+\.\d+(-alpine)?", services["redis"]["image"])
    assert [name for name, s in services.items() if "ports" in s] == ["web"]
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_database_data_lives_in_a_named_volume(compose):
    (mount,) = compose["services"]["db"]["volumes"]
    volume, _, path = mount.partition(":")
    assert volume in compose["volumes"]
    major = int(compose["services"]["db"]["image"].split(":")[1])
    # PostgreSQL 18's image keeps its data one level up, in a versioned folder.
    assert path == ("/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data")


def test_the_healthchecks(compose):
    services = compose["services"]
    db_check = healthcheck_argv(services["db"])
    assert db_check[:2] == ["sh", "-c"]
    assert db_check[2].startswith("pg_isready -h 127.0.0.1 ")  # TCP: not the init server
    assert '-U "${POSTGRES_USER}" -d "${POSTGRES_DB}"' in db_check[2]
    assert healthcheck_argv(services["redis"]) == ["redis-cli", "ping"]
    assert healthcheck_argv(services["web"]) == [
        "python",
        "-m",
        "dashboard.healthcheck",
        "http://127.0.0.1:8000/healthz",
    ]
    assert healthcheck_argv(services["listener"]) == [
        *("python", "-m", "violations.listener_health", LISTENER_HEALTH_FILE)
    ]
    assert command_argv(services["listener"]["command"])[-2:] == [
        "--health-file",
        LISTENER_HEALTH_FILE,
    ]


def test_the_app_urls_point_at_the_db_and_redis_services(compose):
    db = compose["services"]["db"]["environment"]
    for name, service in app_services(compose).items():
        database = urllib.parse.urlsplit(service["environment"]["DATABASE_URL"])
        assert (database.hostname, database.port) == ("db", 5432), name
        assert database.username == db["POSTGRES_USER"]
        assert database.password == db["POSTGRES_PASSWORD"]
        assert database.path == f"/{db['POSTGRES_DB']}"
        redis = urllib.parse.urlsplit(service["environment"]["REDIS_URL"])
        assert (redis.hostname, redis.port) == ("redis", 6379), name


def test_every_variable_compose_needs_is_in_env_example_and_nothing_else_is(dotenv):
    used = variables_used(COMPOSE_FILE.read_text())
    required = {name for name, has_default in used.items() if not has_default}
    assert required <= set(dotenv), f"missing from .env.example: {required - set(dotenv)}"
    assert set(dotenv) <= set(used), f"unused in docker-compose.yml: {set(dotenv) - set(used)}"


def test_without_a_dotenv_compose_says_what_to_do():
    with pytest.raises(ValueError, match=r"POSTGRES_\w+ is missing a value: copy .env.example"):
        interpolate(COMPOSE_FILE.read_text(), {})


def settings_variables() -> set[str]:
    """Environment variables config/settings/ reads (env("X"), env.bool("X"), ...)."""
    source = "\n".join(p.read_text() for p in (PROJECT_ROOT / "config/settings").glob("*.py"))
    return set(re.findall(r"""\benv(?:\.\w+)?\(\s*["']([A-Z_][A-Z0-9_]*)["']""", source))


def documented_variables() -> set[str]:
    """Variables in the README's configuration table."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z_][A-Z0-9_]*)` \|", readme, flags=re.MULTILINE))


def test_every_variable_passed_to_our_containers_is_read_by_settings_and_documented(
    compose, dockerfile
):
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"} <= settings_variables()
    passed = set(image_env(dockerfile)) - {
        # Python's and pip's own, not the project's.
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    for service in app_services(compose).values():
        passed |= set(service["environment"])
    # Read by Django itself, and by the web command (config.web_server) before Django starts.
    read = settings_variables() | {"DJANGO_SETTINGS_MODULE"}
    read |= {web_server.ENV_VARIABLE, web_server.CONCURRENCY_VARIABLE}
    assert passed <= read, f"not read by the settings: {passed - read}"
    assert passed <= documented_variables(), f"not in README: {passed - documented_variables()}"


def test_the_dockerfile(dockerfile):
    keywords = [i.keyword for i in dockerfile]
    (base,) = [i.arguments for i in dockerfile if i.keyword == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim-\w+", base)

    copies = [n for n, i in enumerate(dockerfile) if i.keyword == "COPY"]
    dependencies, source = copies
    assert dockerfile[dependencies].arguments == "pyproject.toml constraints.txt ./"
    assert dockerfile[source].arguments == ". ."
    installs = [n for n, i in enumerate(dockerfile) if "pip install" in i.arguments]
    assert installs, "no pip install"
    assert all(dependencies < n < source for n in installs), "dependencies not cached apart"
    assert all("-c constraints.txt" in dockerfile[n].arguments for n in installs)
    assert not any("[dev]" in i.arguments or "[local]" in i.arguments for i in dockerfile)

    (collectstatic,) = [n for n, i in enumerate(dockerfile) if "collectstatic" in i.arguments]
    assert collectstatic > source
    assert image_env(dockerfile)["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert "DJANGO_SECRET_KEY" not in image_env(dockerfile)  # build placeholder is RUN-only

    users = [i.arguments for i in dockerfile if i.keyword == "USER"]
    assert users, "runs as root"
    assert users[-1] not in ("root", "0")
    assert keywords.index("USER") > collectstatic
    assert keywords[-1] == "CMD"


def test_the_image_runs_the_web_command_by_default(compose, dockerfile):
    cmd = json.loads(dockerfile[-1].arguments)
    assert cmd == command_argv(compose["services"]["web"]["command"])


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "**/__pycache__", "staticfiles", ".local"} <= set(ignored)
    assert ".env.example" not in ignored


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("localhost,127.0.0.1", "localhost"),
        ("dashboard.example.com", "dashboard.example.com"),
        (".example.com,localhost", "example.com"),
        ("*", "localhost"),
        ("", "localhost"),
    ],
)
def test_the_web_healthcheck_asks_with_a_host_django_allows(allowed_hosts, host):
    assert probe_host(allowed_hosts) == host


# --- Our services as local processes ---------------------------------------------------------


@pytest.fixture(scope="module")
def compose_database() -> Iterator[str]:
    """An empty database of this module's own: `migrate` must build it from nothing."""
    with empty_database(os.environ["DATABASE_URL"], f"compose_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def static_root(tmp_path_factory, dockerfile) -> Path:
    """The image's collectstatic step, run as the Dockerfile writes it (no database)."""
    root = tmp_path_factory.mktemp("staticfiles")
    (step,) = [i.arguments for i in dockerfile if "collectstatic" in i.arguments]
    result = subprocess.run(
        ["sh", "-c", step],
        cwd=PROJECT_ROOT,
        env=base_env() | image_env(dockerfile) | {"DJANGO_STATIC_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "staticfiles.json").is_file()  # the manifest whitenoise serves from
    return root


def base_env() -> dict[str, str]:
    """A container's bare environment, with this venv's python first on PATH."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "LANG": "C.UTF-8",
    }


@pytest.fixture(scope="module")
def service_env(compose, dockerfile, compose_database, static_root):
    """`service`'s environment in the container (of `compose`, or of another .env's
    compose file), translated to this machine."""
    hosts = {"db": compose_database, "redis": os.environ["REDIS_URL"]}

    def env_of(service: str, of: dict | None = None) -> dict[str, str]:
        environment = (of or compose)["services"][service]["environment"]
        return (
            base_env()
            | image_env(dockerfile)
            | translate_env(environment, hosts)
            | {
                # The image's /app/staticfiles, filled by the build step above.
                "DJANGO_STATIC_ROOT": str(static_root),
                # Compose's Redis is the stack's own; the session's may be shared (make run).
                "CHANNEL_LAYER_PREFIX": f"compose{os.getpid()}",
            }
        )

    return env_of


def run_command(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def migrated(compose, service_env) -> subprocess.CompletedProcess:
    return run_command(
        command_argv(compose["services"]["migrate"]["command"]), service_env("migrate")
    )


class ComposeService(ServerProcess):
    """A compose service's command as a local process, ready when `ready_check` says so."""

    def __init__(self, argv, env, log_path, ready_check) -> None:
        super().__init__(argv, env, log_path)
        self.ready_check = ready_check

    def ready(self) -> bool:
        super().ready()
        return self.ready_check(self)


def healthz_answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def start_web(command: list[str], env: dict[str, str], log: Path) -> ComposeService:
    """The `web` service's command as a local process on a free port; `.url` on localhost."""
    port = free_port()
    argv = translate_argv(command_argv(command), 8000, port)
    server = ComposeService(
        argv, env, log, lambda _: healthz_answers(f"http://127.0.0.1:{port}/healthz")
    )
    server.port = port
    server.url = f"http://localhost:{port}"
    return server.start()


@pytest.fixture(scope="module")
def web(compose, service_env, migrated, tmp_path_factory) -> Iterator[ComposeService]:
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path_factory.mktemp("web") / "web.log"
    server = start_web(compose["services"]["web"]["command"], service_env("web"), log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web_under_uvicorn(dotenv, service_env, migrated, tmp_path_factory) -> Iterator[ComposeService]:
    """`web` after WEB_SERVER=uvicorn is set in .env."""
    assert migrated.returncode == 0, migrated.stderr
    compose = load_compose(dotenv | {"WEB_SERVER": "uvicorn"})
    env = service_env("web", of=compose)
    log = tmp_path_factory.mktemp("web-uvicorn") / "web.log"
    server = start_web(compose["services"]["web"]["command"], env, log)
    yield server
    server.stop()


def local_paths(argv: list[str], health_file: Path) -> list[str]:
    """The container's health-file path replaced by a local one."""
    return [str(health_file) if arg == LISTENER_HEALTH_FILE else arg for arg in argv]


@pytest.fixture(scope="module")
def listener_health_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("listener-health") / "alive"


@pytest.fixture(scope="module")
def listener(
    compose, service_env, migrated, tmp_path_factory, listener_health_file
) -> Iterator[ComposeService]:
    assert migrated.returncode == 0, migrated.stderr
    argv = local_paths(
        command_argv(compose["services"]["listener"]["command"]), listener_health_file
    )
    log = tmp_path_factory.mktemp("listener") / "listener.log"
    process = ComposeService(
        argv, service_env("listener"), log, lambda p: "listening on channel" in p.log()
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def officer(service_env) -> tuple[str, str]:
    """A login, made the way the README tells compose users (createsuperuser)."""
    password = "compose-officer-pw-1"
    result = run_command(
        [
            *("python", "manage.py", "createsuperuser", "--noinput"),
            *("--username", "officer", "--email", "officer@example.com"),
        ],
        service_env("web") | {"DJANGO_SUPERUSER_PASSWORD": password},
    )
    assert result.returncode == 0, result.stderr
    return "officer", password


@pytest.mark.slow
def test_migrate_builds_an_empty_database_and_exits_0(migrated, compose, service_env):
    assert migrated.returncode == 0, migrated.stderr
    assert "Applying violations.0001_initial... OK" in migrated.stdout
    again = run_command(
        command_argv(compose["services"]["migrate"]["command"]), service_env("migrate")
    )
    assert again.returncode == 0, again.stderr
    assert "No migrations to apply." in again.stdout


def test_web_answers_healthz_and_the_login_page(web):
    with urllib.request.urlopen(f"{web.url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert response.read() == b'{"status": "ok"}'
    with urllib.request.urlopen(f"{web.url}/accounts/login/", timeout=10) as response:
        assert response.status == 200
        body = response.read().decode()
    assert '<input type="password" name="password"' in body
    # Static files are the collected, hashed ones (whitenoise, no DEBUG).
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet, "no hashed stylesheet link"
    with urllib.request.urlopen(web.url + stylesheet.group(1), timeout=10) as response:
        assert response.status == 200


def test_the_web_healthcheck_passes_while_web_is_up_and_fails_when_it_is_not(
    web, compose, service_env
):
    check = healthcheck_argv(compose["services"]["web"])
    up = run_command(translate_argv(check, 8000, web.port), service_env("web"))
    assert up.returncode == 0, up.stderr
    down = run_command(translate_argv(check, 8000, free_port()), service_env("web"))
    assert down.returncode == 1
    assert "did not answer 200" in down.stderr


@pytest.mark.slow
def test_the_listener_healthcheck_passes_while_it_delivers_and_fails_once_it_stops(
    listener, listener_health_file, compose, service_env
):
    check = local_paths(healthcheck_argv(compose["services"]["listener"]), listener_health_file)
    wait_until(listener_health_file.exists, timeout=15, what="the listener's health file")
    up = run_command(check, service_env("listener"))
    assert up.returncode == 0, up.stderr

    stale = run_command([*check, "--max-age", "0"], service_env("listener"))
    assert stale.returncode == 1
    assert "the listener is not delivering" in stale.stderr

    listener.stop()
    try:
        down = run_command(check, service_env("listener"))
        assert down.returncode == 1
        assert "does not exist" in down.stderr
    finally:
        listener.start()


@pytest.mark.slow
def test_the_prune_service_prunes_at_once_then_waits_and_stops_on_sigterm(
    compose, service_env, migrated, tmp_path
):
    argv = command_argv(compose["services"]["prune"]["command"])
    assert argv[-2:] == ["--every", "24h"]
    process = ComposeService(
        argv,
        service_env("prune"),
        tmp_path / "prune.log",
        lambda p: "Deleted 0 delivered events older than 7d." in p.log(),
    ).start()
    assert process.running()  # waiting for its next run, a day away
    assert process.stop(timeout=5) == 0  # SIGTERM: a clean exit, promptly


@pytest.mark.slow
def test_the_web_healthcheck_works_behind_a_tls_proxy_too(compose, service_env, migrated, tmp_path):
    """With production's https redirect on and only the public host allowed (and a key of
    its own: .env.example's placeholder is refused for a public host)."""
    port = free_port()
    argv = translate_argv(command_argv(compose["services"]["web"]["command"]), 8000, port)
    env = service_env("web") | {
        "DJANGO_SECURE_SSL_REDIRECT": "True",
        "DJANGO_ALLOWED_HOSTS": "dashboard.example.com",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    }
    listening = ComposeService(argv, env, tmp_path / "web.log", lambda _: port_open(port)).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as plain:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert plain.value.code == 400  # 127.0.0.1 is not an allowed host
        check = translate_argv(healthcheck_argv(compose["services"]["web"]), 8000, port)
        result = run_command(check, env)
        assert result.returncode == 0, result.stderr
    finally:
        listening.stop()


def log_in(base_url: str, username: str, password: str) -> str:
    """Log in through the login form as a browser would; the session's Cookie header."""
    browser = urllib.request.build_opener(KeepRedirects)
    with browser.open(f"{base_url}/accounts/login/", timeout=10) as response:
        csrf_cookie = cookies_set(response)["csrftoken"]
        form = response.read().decode()
    token = html.unescape(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1])
    fields = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    request = urllib.request.Request(
        f"{base_url}/accounts/login/",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Cookie": f"csrftoken={csrf_cookie}", "Origin": base_url},
    )
    with browser.open(request, timeout=10) as response:
        assert response.status == 302, response.read().decode()
        return f"sessionid={cookies_set(response)['sessionid']}"


def cookies_set(response) -> dict[str, str]:
    jar = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie", []):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


class KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hand back a redirect response as it is (with its Set-Cookie) instead of following it."""

    def http_error_302(self, request, response, code, message, headers):
        return response


def a_psql_insert_reaches_a_logged_in_websocket(web, officer, compose_database) -> None:
    cookie = log_in(web.url, *officer)
    with connect(
        f"ws://localhost:{web.port}/ws/violations/",
        origin=web.url,
        additional_headers={"Cookie": cookie},
        open_timeout=10,
    ) as socket:
        row_id = int(psql(compose_database, PSQL_INSERT))
        event = receive_json(socket, timeout=10)
    assert (event["table"], event["op"], event["id"]) == (
        "violation_humandetections",
        "INSERT",
        row_id,
    )
    assert event["data"]["violation_image"] == "cam4/compose.jpg"


def test_a_psql_insert_reaches_a_logged_in_websocket(web, listener, officer, compose_database):
    a_psql_insert_reaches_a_logged_in_websocket(web, officer, compose_database)


def test_the_web_command_runs_daphne_unless_dotenv_says_otherwise(web, dotenv):
    assert dotenv["WEB_SERVER"] == "daphne"
    # Exec'd in place: the process compose would have started is the server itself.
    assert psutil.Process(web.pid).cmdline()[1:3] == ["-m", "daphne"]
    # A .env copied before WEB_SERVER existed gets Daphne too.
    older = {k: v for k, v in dotenv.items() if k != "WEB_SERVER"}
    assert load_compose(older)["services"]["web"]["environment"]["WEB_SERVER"] == "daphne"


@pytest.mark.slow
def test_with_web_server_uvicorn_in_dotenv_the_web_command_serves_under_uvicorn(
    web_under_uvicorn, listener, officer, compose_database, compose, service_env
):
    web = web_under_uvicorn
    assert psutil.Process(web.pid).cmdline()[1:3] == ["-m", "uvicorn"]
    check = translate_argv(healthcheck_argv(compose["services"]["web"]), 8000, web.port)
    health = run_command(check, service_env("web"))
    assert health.returncode == 0, health.stderr
    a_psql_insert_reaches_a_logged_in_websocket(web, officer, compose_database)


def readme_psql_command() -> tuple[str, str]:
    """The README's `docker compose exec db psql -U <user> -c "<sql>"`: user and SQL."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r'^docker compose exec db psql -U (\w+) -c "(.+)"$', readme, re.MULTILINE)
    assert match, "README has no `docker compose exec db psql -U ... -c` command"
    return match[1], match[2]


def test_a_browser_logs_in_on_localhost_and_sees_the_readmes_insert(
    web, listener, officer, compose_database, dotenv, page
):
    """What the README tells a compose user to do, in a real browser over plain http.

    Also the .env.example promise: Secure-only cookies still work on http://localhost.
    """
    user, insert = readme_psql_command()
    assert user == dotenv["POSTGRES_USER"]

    page.goto(f"{web.url}/")
    page.fill("#id_username", officer[0])
    page.fill("#id_password", officer[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    psql(compose_database, insert)
    row_id = psql(compose_database, "SELECT max(id) FROM violation_humandetections")
    expect(page.locator(f'#feed [data-row-id="{row_id}"]')).to_be_visible()
    assert page_errors(page) == []


def psql(database_url: str, sql: str) -> str:
    result = subprocess.run(
        [psql_binary(), database_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
