"""`make run` (`python -m devstack.run`): the whole stack on a machine with only Python.

With DATABASE_URL / REDIS_URL set, those servers are used and nothing is started for
them. Unset, it starts an embedded PostgreSQL whose data stays in .local/postgres between
runs, and a redis-server of its own on a free port (the listener is its own process, as in
production, so the two need a real channel layer between them). Then it migrates, makes
sure the demo login exists, starts the listener and the web server (Daphne, or uvicorn or
granian with WEB_SERVER, in WEB_CONCURRENCY processes: config.web_server), and says how
to use them. Each is a devstack.process.ServerProcess, its lines prefixed with its name.
Ctrl-C or SIGTERM stops everything it started, children first, each by pid.

Hand-written rather than a Procfile runner (honcho): the services start in order, each
waited for until it answers, with an embedded PostgreSQL and Redis to set up first.
"""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack

from config.web_server import (
    UnknownWebServer,
    chosen_concurrency,
    chosen_web_server,
    server_argv,
)
from devstack.local import LocalDataError, postgres_data_dir, running_embedded_url
from devstack.process import NotReady, ProcessExited, ServerProcess, log_has

SETTINGS = "config.settings.local"
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LISTENER_READY = "listening on channel"
# Another listener holds this database's lock (a second `make run` on the same database):
# this one waits on standby and takes over if that one stops. Ready all the same.
LISTENER_STANDBY = "standby: another listener is active"
START_TIMEOUT = 90.0  # seconds; generous, as a loaded 2-core machine can be slow
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL

EXAMPLE_INSERT = (
    "INSERT INTO violation_humandetections "
    "(camera_id, violation_date, violation_time, violation_image) "
    "VALUES (2, CURRENT_DATE, LOCALTIME(0), 'cam2/snapshot.jpg');"
)


class StartupError(RuntimeError):
    """Something could not start; the message says what and what to do."""


class Stop(Exception):
    """SIGINT or SIGTERM asked everything to stop."""


_output_lock = threading.Lock()


def say(text: str) -> None:
    with _output_lock:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on `port` now (SO_REUSEADDR, as both web servers set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise StartupError(f"PORT={text!r} is not a TCP port number (1-65535).")
    return port


def psql_command(database_url: str, *, from_environment: bool) -> str:
    """The exact shell line that inserts one violation with psql."""
    from devstack.postgres import psql_binary

    binary = "psql" if shutil.which("psql") else shlex.quote(psql_binary())
    # A DATABASE_URL of the user's may hold a password: name the variable, not its value.
    target = '"$DATABASE_URL"' if from_environment else shlex.quote(database_url)
    return f'{binary} {target} -c "{EXAMPLE_INSERT}"'


class Stack:
    """What `make run` started, so that all of it can be stopped, in reverse order."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        self.port = parse_port(self.environ.get("PORT", str(DEFAULT_PORT)))
        try:
            self.web_server = chosen_web_server(self.environ)
            self.workers = chosen_concurrency(self.environ, self.web_server)
        except UnknownWebServer as error:
            raise StartupError(str(error)) from None
        self.cleanup = ExitStack()
        self.children: list[ServerProcess] = []
        self.lines: list[str] = []  # the summary printed once everything answers

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> None:
        if not port_is_free(self.port):
            raise StartupError(
                f"Port {self.port} on {HOST} is already in use (another `make run`, or another "
                f"server). Stop it, or pick another port: PORT={self.port + 1} make run"
            )
        env = dict(self.environ)
        env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        env["PYTHONUNBUFFERED"] = "1"
        env["DATABASE_URL"], database = self._database()
        env["REDIS_URL"], redis = self._redis()
        self.env = env

        self._run_once("migrate", ["manage.py", "migrate", "--noinput"])
        login = self._run_once("demo user", ["manage.py", "create_demo_user"], echo=False)

        listener = self._start_child(
            "listener",
            ["manage.py", "listen_notify"],
            ready=log_has(LISTENER_READY, LISTENER_STANDBY),
        )
        web = self._start_child(
            self.web_server,
            server_argv(self.web_server, HOST, self.port, workers=self.workers),
            ready=lambda web: self._answers(),
        )

        from_environment = bool(self.environ.get("DATABASE_URL"))
        standby = (
            " (on standby: another listener is active on this database)"
            if LISTENER_STANDBY in listener.log() and LISTENER_READY not in listener.log()
            else ""
        )
        workers = f" ({self.workers} workers)" if self.workers > 1 else ""
        self.lines = [
            f"Dashboard:  {self.url}",
            *(line.strip() for line in login.splitlines() if line.strip()),
            f"PostgreSQL: {database}",
            f"Redis:      {redis}",
            f"Processes:  listener pid {listener.pid}{standby}, {web.name} pid {web.pid}{workers}",
            "",
            "Insert a violation and watch it appear:",
            "  " + psql_command(env["DATABASE_URL"], from_environment=from_environment),
            'A psql prompt on this database: make psql (a dump: make pg_dump ARGS="-f x.sql")',
            'manage.py through .venv, on this database: make manage ARGS="createsuperuser"',
            "Stop everything: Ctrl-C",
        ]

    def _database(self) -> tuple[str, str]:
        if self.environ.get("DATABASE_URL"):
            return self.environ["DATABASE_URL"], "from DATABASE_URL (nothing started)"
        from devstack.postgres import EmbeddedPostgres

        try:
            data_dir = postgres_data_dir(self.environ)
        except LocalDataError as error:
            raise StartupError(str(error)) from None
        existed = (data_dir / "PG_VERSION").exists()
        say(f"Starting the embedded PostgreSQL (data in {data_dir})...")
        try:
            postgres = EmbeddedPostgres(data_dir)
        except (OSError, subprocess.SubprocessError) as error:
            raise StartupError(
                f"The embedded PostgreSQL did not start ({error}); its log is {data_dir / 'log'}"
            ) from None
        self.cleanup.callback(self._stop_postgres, postgres)
        kept = "data kept from the last run" if existed else "new, kept between runs"
        return postgres.url(), f"embedded, pid {postgres.pid}, data in {data_dir} ({kept})"

    def _redis(self) -> tuple[str, str]:
        if self.environ.get("REDIS_URL"):
            return self.environ["REDIS_URL"], "from REDIS_URL (nothing started)"
        from devstack.redis import LocalRedis

        try:
            redis = LocalRedis()
        except (OSError, TimeoutError) as error:
            raise StartupError(f"redis-server did not start: {error}") from None
        self.cleanup.callback(self._stop_redis, redis)
        return redis.url, (
            f"redis-server on {HOST}:{redis.port}, pid {redis.process.pid}, for this run only"
        )

    def _child(self, name: str, args: list[str], *, echo: bool = True, **options) -> ServerProcess:
        """`python args` in the project, its lines passed on prefixed with `name`."""
        return ServerProcess(
            [sys.executable, *args],
            self.env,
            name=name,
            on_line=(lambda line: say(f"{name:<9}| {line}")) if echo else None,
            start_timeout=START_TIMEOUT,
            stop_timeout=STOP_TIMEOUT,
            **options,
        )

    def _run_once(self, name: str, args: list[str], *, echo: bool = True) -> str:
        child = self._child(name, args, echo=echo).start(wait=False)
        self.cleanup.callback(child.stop)  # if Ctrl-C comes while it runs
        code = child.wait()
        output = child.log()
        if code != 0:
            if not echo:
                say(output)
            raise StartupError(f"`{' '.join(args)}` failed with exit code {code}.")
        return output

    def _start_child(
        self, name: str, args: list[str], ready: Callable[[ServerProcess], bool]
    ) -> ServerProcess:
        """Start it and wait until `ready()`; the output is on the terminal already."""
        child = self._child(name, args, ready=ready)
        self.children.append(child)
        self.cleanup.callback(child.stop)
        try:
            child.start()
        except ProcessExited as exited:
            raise StartupError(
                f"{name} exited with code {exited.returncode}; its output is above."
            ) from None
        except NotReady:
            raise StartupError(f"{name} not ready after {START_TIMEOUT:g} s") from None
        return child

    def _answers(self) -> bool:
        # Our own http:// URL on 127.0.0.1.
        with urllib.request.urlopen(f"{self.url}healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200

    def watch(self) -> None:
        """Block while all is well: a child that exits by itself is an error; signals raise Stop."""
        while True:
            for child in self.children:
                if child.exited():
                    raise StartupError(
                        f"{child.name} exited with code {child.process.returncode}; "
                        "stopping everything."
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        self.cleanup.close()

    @staticmethod
    def _stop_redis(redis) -> None:
        redis.stop()

    @staticmethod
    def _stop_postgres(postgres) -> None:
        say("Stopping the embedded PostgreSQL...")
        postgres.stop()
        if running_embedded_url(postgres.data_dir):
            # The package stops it only when the last process holding it lets go.
            say("The embedded PostgreSQL keeps running: another `make run` uses it.")


def _on_signal(signum: int, frame) -> None:
    # Only the first signal interrupts; another Ctrl-C must not cut the stopping short.
    signal.signal(signal.SIGINT, _while_stopping)
    signal.signal(signal.SIGTERM, _while_stopping)
    raise Stop(signal.Signals(signum).name)


def _while_stopping(signum: int, frame) -> None:
    say(f"Still stopping (each process gets at most {STOP_TIMEOUT:g} s before it is killed)...")


def banner(lines: list[str]) -> str:
    rule = "=" * 78
    return "\n".join([rule, *(f"  {line}" if line else "" for line in lines), rule])


def main(environ: Mapping[str, str] = os.environ) -> int:
    # Installed here, not inherited: a shell that starts us in the background ignores
    # SIGINT, and `kill -INT` should still stop us cleanly.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    stack = None
    try:
        stack = Stack(environ)
        stack.start()
        say(banner(stack.lines))
        stack.watch()
    except Stop as stop:
        say(f"{stop} received: stopping everything...")
    except StartupError as error:
        say(f"make run: {error}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, _while_stopping)
        signal.signal(signal.SIGTERM, _while_stopping)
        if stack is not None:
            stack.stop()
            say("Stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
