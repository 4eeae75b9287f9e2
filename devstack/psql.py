"""`make psql`, `make pg_dump`, `make pg_restore`: PostgreSQL's clients on the database in use.

DATABASE_URL when set, else the embedded PostgreSQL that `make run` started. Extra
arguments go to the client, e.g. `python -m devstack.psql -c 'TABLE violation_ppedetections'`
or `python -m devstack.psql --client=pg_dump -Fc -f dump.pgc`.
"""

import os
import sys

from devstack.local import NOT_RUNNING, database_url_in_use
from devstack.postgres import pg_dump_binary, pg_restore_binary, psql_binary

CLIENTS = ("psql", "pg_dump", "pg_restore")


def client_argv(client: str, url: str) -> list[str]:
    """The argv that starts `client` on `url`, before the caller's own arguments."""
    if client == "psql":
        return [psql_binary(), url]
    # pg_dump refuses a newer server and the system's may be older than the embedded one.
    version = server_version_num(url)
    binary = pg_dump_binary(version) if client == "pg_dump" else pg_restore_binary(version)
    return [binary, f"--dbname={url}"]


def server_version_num(url: str) -> int:
    """The server's version as a number (`SHOW server_version_num`, e.g. 180001)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as connection:
        return int(connection.execute("SHOW server_version_num").fetchone()[0])


def main(argv: list[str]) -> int:
    # Only a leading --client is ours: everything else, however it is spelled, is the client's.
    client, args = "psql", argv
    if argv and argv[0].startswith("--client="):
        client, args = argv[0].removeprefix("--client="), argv[1:]
    if client not in CLIENTS:
        print(f"--client must be one of {', '.join(CLIENTS)}, not {client!r}", file=sys.stderr)
        return 2
    url = database_url_in_use()
    if url is None:
        print(NOT_RUNNING, file=sys.stderr)
        return 2
    command = [*client_argv(client, url), *args]
    # The client takes over this process, so it owns the terminal (prompt, Ctrl-C, pager).
    os.execv(command[0], command)  # noqa: S606 (our own argv, no shell)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
