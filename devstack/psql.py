"""`make psql` (`python -m devstack.psql`): psql on the database in use.

DATABASE_URL when set, else the embedded PostgreSQL that `make run` started. Extra
arguments go to psql, e.g. `python -m devstack.psql -c 'TABLE violation_ppedetections'`.
"""

import os
import sys

from devstack.local import NOT_RUNNING, database_url_in_use
from devstack.postgres import psql_binary


def main(args: list[str]) -> int:
    url = database_url_in_use()
    if url is None:
        print(NOT_RUNNING, file=sys.stderr)
        return 2
    binary = psql_binary()
    # psql takes over this process, so it owns the terminal (prompt, Ctrl-C, pager).
    os.execv(binary, [binary, url, *args])  # noqa: S606 (our own argv, no shell)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
