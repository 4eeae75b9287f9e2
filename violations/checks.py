"""System checks: run by every manage.py command (migrate, listen_notify), before any SQL."""

from collections.abc import Iterable
from typing import Any

from django.core.checks import Error, Tags, register

from violations.contract import (
    EVENT_LOG_TABLE,
    HEAD_TABLE,
    IDENTIFIER_RULE,
    NOTIFY_CHANNEL,
    is_plain_identifier,
)


def configured_identifiers() -> list[tuple[str, str]]:
    """Every configurable name that reaches SQL, as (what it names, the name)."""
    from violations.models import violation_models

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
            hint=f"Use {IDENTIFIER_RULE}.",
            id="violations.E001",
        )
        for what, name in names
        if not is_plain_identifier(name)
    ]


@register(Tags.models)
def check_sql_identifiers(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return identifier_errors(configured_identifiers())
