"""Real server processes for tests: the web server (Daphne, or uvicorn) and the listener,
each its own OS process.

Each is started on 127.0.0.1 with a free port where it has one, and stopped by pid.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from config.web_server import server_argv
from devstack.ports import free_port, wait_until

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> "ServerProcess":
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait:
            return self
        try:
            wait_until(self.ready, timeout=30, what=" ".join(self.argv[1:]))
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc}\n--- log ---\n{self.log()}") from None
        return self

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.argv} exited early:\n{self.log()}")
        return True

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, since_start: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_bytes()
        if since_start:
            text = text[self._log_offset :]
        return text.decode(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float = 15, since: int = 0) -> None:
        """Wait until the log (from byte `since` of this start's output) contains `text`."""
        wait_until(
            lambda: text in self.log(since_start=True)[since:],
            timeout=timeout,
            what=f"{text!r} in {self.log_path.name}",
        )

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL if it will not go; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class WebServer(ServerProcess):
    """`config.asgi:application` served by `server` (config.web_server), on 127.0.0.1."""

    server: str  # a name config.web_server knows: each subclass sets it

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        argv = server_argv(self.server, "127.0.0.1", self.port)
        super().__init__([sys.executable, *argv], env, log_path)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        super().ready()
        url = f"{self.http_url}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200


class Daphne(WebServer):
    server = "daphne"


class Uvicorn(WebServer):
    server = "uvicorn"


WEB_SERVERS = {"daphne": Daphne, "uvicorn": Uvicorn}


class Listener(ServerProcess):
    READY_LINE = "listening on channel"
    STANDBY_LINE = "standby: another listener is active"

    def __init__(self, env: Mapping[str, str], log_path: Path, *options: str) -> None:
        argv = [sys.executable, "manage.py", "listen_notify", "--health-interval", "1", *options]
        super().__init__(argv, env, log_path)

    def ready(self) -> bool:
        super().ready()
        return self.READY_LINE in self.log(since_start=True)


class Nginx(ServerProcess):
    """nginx in the foreground with `config` (a whole nginx.conf), its files under `prefix`."""

    def __init__(self, config: Path, prefix: Path, log_path: Path, port: int) -> None:
        self.port = port
        argv = [NGINX, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"]
        super().__init__(argv, {}, log_path)

    def ready(self) -> bool:
        super().ready()
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
