"""The database side of the pipeline: triggers that log and announce every change.

In the same transaction as the change, a trigger appends an event to the event log
(`violation_events`) and NOTIFYs its id. So an event exists exactly when the change
committed, and a NOTIFY is only a wake-up call: the listener reads the log, never trusts
the payload, and after any outage finds in the log whatever it missed.

The payload stays small and fixed-size, `{"event_id", "table", "op", "id"}` (readable in a
psql `LISTEN`), however large the row: a NOTIFY over 8000 bytes would fail the INSERT.

A row trigger logs INSERT, UPDATE and DELETE; a primary-key change is logged as a DELETE
of the old id then an INSERT of the new one, so nothing stays on screen under the old id.
A statement trigger logs TRUNCATE, with a null id and null data.
"""

import pgtrigger
from django.db import models
from pgtrigger import features, utils

from violations.contract import EVENT_LOG_TABLE, NOTIFY_CHANNEL

# The log's INSERT, shared by both functions. `{event_log}` is the log's schema-qualified
# name (see ViolationTrigger); the f-string only pastes the contract's checked channel.
_LOG_AND_NOTIFY = f"""
        INSERT INTO {{event_log}} (table_name, op, row_id, data)
            VALUES (TG_TABLE_NAME, logged_op, row_id, row_data)
            RETURNING id INTO event_id;
        PERFORM pg_notify(
            '{NOTIFY_CHANNEL}',
            json_build_object(
                'event_id', event_id, 'table', TG_TABLE_NAME, 'op', logged_op, 'id', row_id
            )::text
        );
"""  # noqa: S608

# OLD is NULL for INSERT and NEW for DELETE; plain PL/pgSQL branches (not one SQL CASE)
# keep it valid on every PostgreSQL version Django supports. `{meta.pk.column}` is filled
# in per model by pgtrigger.Func. A primary-key change logs DELETE(old id) first, then
# falls through to log INSERT(new id): a client applying INSERT/DELETE stays right.
_ROW_CHANGE = pgtrigger.Func(
    """
    IF TG_OP = 'UPDATE' AND OLD.{meta.pk.column} IS DISTINCT FROM NEW.{meta.pk.column} THEN
        logged_op := 'DELETE';
        row_id := OLD.{meta.pk.column};
        row_data := NULL;"""
    + _LOG_AND_NOTIFY
    + """
        logged_op := 'INSERT';
    ELSE
        logged_op := TG_OP;
    END IF;
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.{meta.pk.column};
        row_data := NULL;
    ELSE
        row_id := NEW.{meta.pk.column};
        row_data := to_jsonb(NEW);
    END IF;"""
    + _LOG_AND_NOTIFY
    + """
    RETURN NULL;
    """
)

# One event per truncated table (a TRUNCATE of several tables fires once for each).
_TRUNCATE = pgtrigger.Func(
    """
    logged_op := TG_OP;
    row_id := NULL;
    row_data := NULL;"""
    + _LOG_AND_NOTIFY
    + """
    RETURN NULL;
    """
)

_DECLARE = [
    ("logged_op", "text"),
    ("row_id", "bigint"),
    ("row_data", "jsonb"),
    ("event_id", "bigint"),
]


def event_log_schema() -> str:
    """The schema of the event log: django-pgtrigger's (`PGTRIGGER_SCHEMA`, default
    `public`), the one it already qualifies its own helper with in these functions."""
    return features.schema()


class ViolationTrigger(pgtrigger.Trigger):
    """A trigger whose function names the log schema-qualified.

    Writers may run with any search_path (pg_dump's restore scripts set it to ''); a name
    fixed when the migration is made costs nothing per row, unlike dynamic SQL (see
    docs/decisions.md).
    """

    def get_func_template_kwargs(self, model: type[models.Model]) -> dict:
        event_log = f"{utils.quote(event_log_schema())}.{EVENT_LOG_TABLE}"
        return super().get_func_template_kwargs(model) | {"event_log": event_log}


def notify_on_change() -> pgtrigger.Trigger:
    """Row-level AFTER INSERT/UPDATE/DELETE trigger: log the change, NOTIFY its event id."""
    return ViolationTrigger(
        name="notify_violation_change",
        level=pgtrigger.Row,
        when=pgtrigger.After,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        declare=_DECLARE,
        func=_ROW_CHANGE,
    )


def notify_on_truncate() -> pgtrigger.Trigger:
    """Statement-level AFTER TRUNCATE trigger: log one event for the table, NOTIFY it."""
    return ViolationTrigger(
        name="notify_violation_truncate",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Truncate,
        declare=_DECLARE,
        func=_TRUNCATE,
    )
