"""The real stack for the bench: services, a database of its own, and every server process.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, otherwise an embedded
PostgreSQL and a redis-server of our own are started (devstack), exactly as for the tests:
nothing on the default ports is ever probed or borrowed. The bench works in a database of
its own (`bench_<pid>`, dropped at the end) and under channel-layer prefixes of its own.

Our stack is started by its public commands only (`manage.py migrate`, `createsuperuser`,
`collectstatic`, `listen_notify`, and `config.asgi:application` served twice: by Daphne,
the default, and by uvicorn, as `WEB_SERVER=uvicorn` starts it), and its sockets are
opened with the session cookie of a user who logged in at /accounts/login/ over HTTP.

With `--before REF`, REF's `config.asgi:application` is served by Daphne too, from a git
worktree of REF, with the same database, Redis and channel-layer prefix: the one current
listener feeds it, so REF's web side is measured against the current database side.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from bench import procstat
from bench.baseline.schema import BASELINE_TABLES, RAW_TABLES, statements
from config.web_server import APPLICATION, server_argv
from devstack.ports import free_port
from devstack.process import ServerProcess, log_has

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUR_TABLES = ["violation_humandetections", "violation_lotodetections", "violation_ppedetections"]
# "ours-uvicorn" / "ours-granian": our listener and application, with uvicorn or granian
# as the web process (granian only with `python -m bench --granian`); "ours-before": an
# earlier commit's application under Daphne, fed by our listener (`--before REF`).
TARGET_ORDER = ["ours", "ours-before", "ours-uvicorn", "ours-granian", "baseline", "raw"]
GRANIAN = "ours-granian"
BEFORE = "ours-before"
# The settings module the bench serves ours with; REF must have it too.
SETTINGS_MODULE = "bench.settings"
BENCH_USER = "bench"


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and the servers it starts."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (the query, e.g. a socket host, is kept)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


class Server(ServerProcess):
    """A server process of the bench (devstack.process), with what it costs: CPU and memory
    of it and of its workers (a multi-process server's master does little itself)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log: Path,
        ready: Callable[[ServerProcess], bool] | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        super().__init__(argv, env, log, name=name, ready=ready, stop_timeout=15, cwd=cwd)

    def pids(self) -> list[int]:
        workers = psutil.Process(self.pid).children(recursive=True)
        return [self.pid, *(worker.pid for worker in workers)]

    def cpu_seconds(self) -> float:
        return sum(procstat.cpu_seconds(pid) for pid in self.pids())

    def rss_kib(self) -> int:
        return sum(procstat.rss_kib(pid) for pid in self.pids())


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our http:// URLs)
        return response.status == 200


@dataclass
class Target:
    """One system under test, as the clients and the writer see it."""

    name: str
    tables: list[str]
    servers: list[Server]  # whose CPU is the server side's cost
    web: Server  # the process holding the WebSockets (memory per connection)
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    ws_path: str = "/ws/violations/"
    restart: Callable[[], None] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.ws_path}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_pids(self) -> list[int]:
        return [pid for server in self.servers for pid in server.pids()]


class GitError(RuntimeError):
    """A git command failed; the message is git's."""


def git(*argv: str) -> str:
    """A git command's output, run in this checkout."""
    result = subprocess.run(["git", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode:
        raise GitError(f"git {' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout.strip()


def resolve_before(ref: str) -> str:
    """The commit `ref` names, checked before anything starts: it must have the bench's
    settings module, or its application cannot be served as ours is."""
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitError:
        raise SystemExit(f"--before {ref}: not a commit of this repository") from None
    settings = SETTINGS_MODULE.replace(".", "/") + ".py"
    try:
        git("cat-file", "-e", f"{commit}:{settings}")
    except GitError:
        raise SystemExit(f"--before {ref}: it has no {settings}, the bench's settings") from None
    return commit


class Stack:
    """Everything the bench runs against; `close()` stops it all and drops the database.
    With `before` (a commit), also that commit's application (target "ours-before")."""

    def __init__(self, workdir: Path, before: str | None = None) -> None:
        self.workdir = workdir
        self.before = before
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._cleanup = ExitStack()
        self.services_note = ""
        self.targets: dict[str, Target] = {}
        self.prefix = f"bench{os.getpid()}"

    # --- services and database ------------------------------------------------------------
    def prepare(self) -> None:
        """Services, the bench database, our schema (migrate) and the baseline's tables."""
        server_url = os.environ.get("DATABASE_URL")
        if server_url:
            self.services_note = "PostgreSQL from DATABASE_URL"
        else:
            from devstack.postgres import EmbeddedPostgres

            postgres = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="bench-pg-")) / "data", delete_on_stop=True
            )
            self._cleanup.callback(postgres.stop)
            server_url = postgres.url()
            self.services_note = "embedded PostgreSQL"
        self.redis_url = os.environ.get("REDIS_URL")
        if self.redis_url:
            self.services_note += ", Redis from REDIS_URL"
        else:
            from devstack.redis import LocalRedis

            redis = LocalRedis()
            self._cleanup.callback(redis.stop)
            self.redis_url = redis.url
            self.services_note += ", redis-server started by the bench"

        self.database = f"bench_{os.getpid()}"
        self.server_url = server_url
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self._cleanup.callback(self._drop_database)
        self.database_url = with_database(server_url, self.database)

        self.our_env = self._our_env()
        manage = {"cwd": PROJECT_ROOT, "env": self.our_env}
        # collectstatic needs no database: it runs while migrate does.
        with subprocess.Popen(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], **manage
        ) as collectstatic:
            superuser = ["--noinput", "--username", BENCH_USER, "--email", "b@example.com"]
            for command in (["migrate", "--noinput", "-v0"], ["createsuperuser", *superuser]):
                subprocess.run([sys.executable, "manage.py", *command], check=True, **manage)
        if collectstatic.returncode:
            raise subprocess.CalledProcessError(collectstatic.returncode, collectstatic.args)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for statement in statements():
                conn.execute(statement)
        if self.before:
            self._prepare_before(self.before)

    def _prepare_before(self, commit: str) -> None:
        """A worktree of `commit` (removed by close()) and its own static files: its
        templates name its own hashed files. Its schema is the current one (migrate above)."""
        self.before_root = self.workdir / f"before-{commit[:12]}"
        git("worktree", "add", "--detach", str(self.before_root), commit)
        self._cleanup.callback(git, "worktree", "remove", "--force", str(self.before_root))
        self.before_env = self.our_env | {"DJANGO_STATIC_ROOT": str(self.workdir / "static-before")}
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=self.before_root,
            env=self.before_env,
            check=True,
        )

    def _our_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("LISTEN_DATABASE_URL", "DJANGO_DEBUG"):
            env.pop(name, None)
        self.password = secrets.token_urlsafe(16)
        static_root = self.workdir / "static"
        return env | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            # Production settings served over plain http (the suite's settings module:
            # production's, with only the https-only flags off), socket caps lifted.
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_STATIC_ROOT": str(static_root),
            "DJANGO_SUPERUSER_PASSWORD": self.password,
            "CHANNEL_LAYER_PREFIX": self.prefix,
            "PYTHONUNBUFFERED": "1",
        }

    def _drop_database(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )

    # --- server processes -------------------------------------------------------------------
    def start_servers(self, *, granian: bool = False) -> None:
        """Every target's processes (with `granian`, ours under granian too; with `before`,
        the earlier commit's). The targets start side by side: most of a start is one
        process importing Django, and on two cores the others need not wait for it."""
        listener = self._our_listener()
        with ThreadPoolExecutor() as pool:
            starts = [
                pool.submit(self._start_ours, "ours", "daphne", listener),
                pool.submit(self._start_ours, "ours-uvicorn", "uvicorn", listener),
                pool.submit(self._start_baseline),
                pool.submit(self._start_raw),
            ]
            if granian:
                starts.append(pool.submit(self._start_ours, GRANIAN, "granian", listener))
            if self.before:
                starts.append(pool.submit(self._start_before, listener))
        for start in starts:
            start.result()  # the first failure, if any; close() stops whatever did start
        # In the report's order, whichever started first.
        self.targets = {name: self.targets[name] for name in TARGET_ORDER if name in self.targets}

    def _web(
        self,
        name: str,
        app: str,
        env: Mapping[str, str],
        server: str = "daphne",
        cwd: Path = PROJECT_ROOT,
    ) -> tuple[Server, int]:
        """`app` of the code in `cwd` served by `server` (started as config.web_server
        starts it) on a free port."""
        port = free_port()
        argv = [sys.executable, *server_argv(server, "127.0.0.1", port, app)]
        healthz = f"http://127.0.0.1:{port}/healthz"
        web = Server(name, argv, env, self.logs / f"{name}.log", lambda _: http_ok(healthz), cwd)
        web.start()
        self._cleanup.callback(web.stop)
        return web, port

    def _web_target(
        self,
        name: str,
        tables: list[str],
        listener: Server,
        start_web: Callable[[], tuple[Server, int]],
    ) -> Target:
        """A target of `listener` and the web process `start_web()` starts (again, for a
        fresh one, on `restart()`)."""
        web, port = start_web()
        target = Target(name, tables, [listener, web], web, port)

        def restart() -> None:
            target.web.stop()
            target.web, target.port = start_web()
            target.servers = [listener, target.web]

        target.restart = restart
        return target

    def _our_listener(self) -> Server:
        """Our listener, which feeds each of our web processes (Daphne, uvicorn, granian): its
        CPU counts for each, as its share of a frame."""
        listener = Server(
            "ours-listener",
            [sys.executable, "manage.py", "listen_notify"],
            self.our_env,
            self.logs / "ours-listener.log",
        ).start()
        self._cleanup.callback(listener.stop)
        return listener

    def _start_ours(self, name: str, server: str, listener: Server) -> None:
        """Target `name`: `listener` and our application served by `server`, with a login
        of its own."""
        start_web = partial(self._web, f"ours-{server}", APPLICATION, self.our_env, server)
        self._start_logged_in(name, listener, start_web)

    def _start_before(self, listener: Server) -> None:
        """Target "ours-before": the earlier commit's application, under Daphne, from its
        worktree; the current listener feeds it through the same channel layer."""
        start_web = partial(
            self._web, "before-daphne", APPLICATION, self.before_env, "daphne", self.before_root
        )
        self._start_logged_in(BEFORE, listener, start_web)

    def _start_logged_in(
        self, name: str, listener: Server, start_web: Callable[[], tuple[Server, int]]
    ) -> None:
        """Target `name` on our tables, with a login of its own at its web process."""
        target = self._web_target(name, OUR_TABLES, listener, start_web)
        target.headers = {"Cookie": login(target.origin, BENCH_USER, self.password)}
        self.targets[name] = target

    def _start_baseline(self) -> None:
        env = dict(os.environ) | {
            "REDIS_URL": self.redis_url,
            "DJANGO_SETTINGS_MODULE": "bench.baseline.settings",
            "BENCH_BASELINE_PREFIX": f"{self.prefix}base",
            "PYTHONUNBUFFERED": "1",
        }
        listener = Server(
            "baseline-listener",
            [sys.executable, "-m", "bench.baseline.listener", self.database_url],
            env,
            self.logs / "baseline-listener.log",
            log_has("listening"),
        ).start()
        self._cleanup.callback(listener.stop)
        self.targets["baseline"] = self._web_target(
            "baseline",
            BASELINE_TABLES,
            listener,
            partial(self._web, "baseline-daphne", "bench.baseline.asgi:application", env),
        )

    def _start_raw(self) -> None:
        port = free_port()
        server = Server(
            "raw-broadcast",
            [sys.executable, "-m", "bench.raw_broadcast", self.database_url, str(port)],
            dict(os.environ) | {"PYTHONUNBUFFERED": "1"},
            self.logs / "raw-broadcast.log",
            log_has("listening"),
        ).start()
        self._cleanup.callback(server.stop)
        self.targets["raw"] = Target("raw", RAW_TABLES, [server], server, port)

    def versions(self) -> dict[str, str]:
        with psycopg.connect(self.database_url) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            redis_version = client.info("server")["redis_version"]
        finally:
            client.close()
        return {"postgresql": postgres, "redis": redis_version}

    def close(self) -> None:
        self._cleanup.close()


def login(http_url: str, username: str, password: str) -> str:
    """Log in at /accounts/login/ as a browser would; the session cookie to send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{http_url}/accounts/login/"
    with opener.open(login_url, timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError(f"no CSRF token in the login page at {login_url}")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
    ).encode()
    with opener.open(login_url, data=form, timeout=30) as response:
        response.read()
    session = {cookie.name: cookie.value for cookie in jar}.get("sessionid")
    if not session:
        raise RuntimeError(f"logging in at {login_url} gave no session cookie")
    return f"sessionid={session}"
