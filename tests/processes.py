"""Real server processes for tests: the web server (Daphne, uvicorn or granian) and the
listener, each its own OS process (devstack.process), its output in a log file.

Each is started on 127.0.0.1 with a free port where it has one, and stopped by pid.
"""

import shutil
import socket
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from config.web_server import server_argv
from devstack.ports import free_port
from devstack.process import ServerProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent

__all__ = ["PROJECT_ROOT", "ServerProcess"]


class WebServer(ServerProcess):
    """`config.asgi:application` served by `server` (config.web_server), on 127.0.0.1."""

    server: str  # a name config.web_server knows: each subclass sets it

    def __init__(
        self, env: Mapping[str, str], log_path: Path, port: int | None = None, workers: int = 1
    ) -> None:
        self.port = port or free_port()
        argv = server_argv(self.server, "127.0.0.1", self.port, workers=workers)
        super().__init__([sys.executable, *argv], env, log_path, name=self.server)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as response:
            return response.status == 200


class Daphne(WebServer):
    server = "daphne"


class Uvicorn(WebServer):
    server = "uvicorn"


class Granian(WebServer):
    server = "granian"


WEB_SERVERS = {"daphne": Daphne, "uvicorn": Uvicorn, "granian": Granian}


class Listener(ServerProcess):
    READY_LINE = "listening on channel"
    STANDBY_LINE = "standby: another listener is active"

    def __init__(self, env: Mapping[str, str], log_path: Path, *options: str) -> None:
        argv = [sys.executable, "manage.py", "listen_notify", "--health-interval", "1", *options]
        super().__init__(argv, env, log_path, name="listener")

    def ready(self) -> bool:
        return self.READY_LINE in self.log()


class Nginx(ServerProcess):
    """nginx in the foreground with `config` (a whole nginx.conf), its files under `prefix`."""

    def __init__(self, config: Path, prefix: Path, log_path: Path, port: int) -> None:
        self.port = port
        argv = [NGINX, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"]
        super().__init__(argv, {}, log_path, name="nginx")

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
