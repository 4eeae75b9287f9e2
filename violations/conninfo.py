"""libpq connection strings for Django's DATABASES entries (the listener connects with
psycopg directly, outside Django's connection handling)."""

from typing import Any

from psycopg.conninfo import make_conninfo

# Django OPTIONS keys that are libpq connection parameters (others, such as
# isolation_level or pool, are Django's own and mean nothing to libpq).
_LIBPQ_OPTIONS = {
    "host",
    "port",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "options",
    "passfile",
    "service",
    "target_session_attrs",
    "connect_timeout",
}


def conninfo(database: dict[str, Any]) -> str:
    """A libpq connection string for one of Django's DATABASES entries."""
    params = {
        "dbname": database.get("NAME"),
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
    }
    options = database.get("OPTIONS", {})
    params.update({key: value for key, value in options.items() if key in _LIBPQ_OPTIONS})
    return make_conninfo(**{key: str(v) for key, v in params.items() if v not in (None, "")})
