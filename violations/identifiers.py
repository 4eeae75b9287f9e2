"""Names that reach SQL as identifiers, and the one rule they all follow.

Identifiers cannot be query parameters. LISTEN takes its channel as an identifier; the
listener quotes names with psycopg.sql.Identifier, but django-pgtrigger pastes table and
column names into trigger SQL and quotes a name only when it does not already start or
end with a double quote, and the trigger body carries the channel and the event log's
tables as they are. So every channel, table and key column name a fork can configure is
held to plain lower-case identifiers: nothing that needs quoting, nothing that can break
out of it.
"""

import re
from collections.abc import Iterable

from django.core.checks import Error

SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RULE = "1-63 characters of a-z, 0-9 and _, not starting with a digit (^[a-z_][a-z0-9_]{0,62}$)"


def is_plain_identifier(name: object) -> bool:
    return isinstance(name, str) and SQL_IDENTIFIER.fullmatch(name) is not None


def configured_identifiers() -> list[tuple[str, str]]:
    """Every configurable name that reaches SQL, as (what it names, the name)."""
    from violations.models import violation_models
    from violations.notify import NOTIFY_CHANNEL
    from violations.triggers import EVENT_LOG_TABLE, HEAD_TABLE

    names = [
        ("the NOTIFY channel", NOTIFY_CHANNEL),
        ("the event log's table", EVENT_LOG_TABLE),
        ("the event log's head table", HEAD_TABLE),
    ]
    for table, model in violation_models().items():
        names.append((f"{model._meta.label}'s table", table))
        names.append((f"{model._meta.label}'s primary key column", model._meta.pk.column))
    return names


def identifier_errors(names: Iterable[tuple[str, object]]) -> list[Error]:
    """System-check errors for the names that are not plain identifiers."""
    return [
        Error(
            f"{what} is {name!r}, which is not allowed in SQL here.",
            hint=f"Use {RULE}.",
            id="violations.E001",
        )
        for what, name in names
        if not is_plain_identifier(name)
    ]
