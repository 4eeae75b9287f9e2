"""System checks: run by every manage.py command (migrate, listen_notify), before any SQL."""

from typing import Any

from django.core.checks import Error, Tags, register

from violations.identifiers import configured_identifiers, identifier_errors


@register(Tags.models)
def check_sql_identifiers(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return identifier_errors(configured_identifiers())
