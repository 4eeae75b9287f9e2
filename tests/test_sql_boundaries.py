"""Every configurable channel, table and column name that reaches SQL is a plain identifier.

Where they reach SQL: LISTEN and the event-log queries (violations/listener.py, quoted
with psycopg.sql), pg_notify's channel (violations/notify.py, a query parameter), the
trigger body's channel and event-log tables (violations/triggers.py, pasted after
validation) and the trigger's table and key column, pasted by django-pgtrigger. The
system check `violations.E001` holds them all to one rule; the template's answers are
held to it before a project is generated from it.
"""

import pytest
from django.core import checks

from violations.checks import configured_identifiers, identifier_errors
from violations.contract import is_plain_identifier


def test_every_configured_name_that_reaches_sql_is_a_plain_identifier():
    names = configured_identifiers()
    found = {name for _, name in names}
    assert {
        "violations_channel",
        "violation_events",
        "violation_events_head",
        "violation_humandetections",
        "violation_lotodetections",
        "violation_ppedetections",
        "id",
    } <= found  # the walk reached them all
    assert [(what, name) for what, name in names if not is_plain_identifier(name)] == []


def test_the_system_check_passes_for_the_project():
    errors = [e for e in checks.run_checks() if e.id == "violations.E001"]
    assert errors == []


@pytest.mark.parametrize(
    "name",
    [
        'x"; DROP TABLE auth_user; --',  # pgtrigger leaves a name starting with " unquoted
        '"quoted"',
        "Violation_Humans",
        "pg_authid; SELECT 1",
        "a" * 64,
        "1table",
        "",
        None,
    ],
)
def test_a_name_that_could_break_out_of_sql_fails_the_system_check(name):
    errors = identifier_errors([("the table of a fork's model", name)])

    assert [e.id for e in errors] == ["violations.E001"]
    assert "the table of a fork's model" in errors[0].msg
    assert "^[a-z_][a-z0-9_]{0,62}$" in errors[0].hint
