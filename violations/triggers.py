"""The database side of the pipeline: triggers that log and announce every change.

In the same transaction as the change, a trigger appends its events to the event log
(`violation_events`) and NOTIFYs. So an event exists exactly when the change committed,
and a NOTIFY is only a wake-up call: the listener reads the log, never trusts the
payload, and after any outage finds in the log whatever it missed.

Statement-level triggers, one per operation (PostgreSQL allows transition tables only on
single-event triggers): each appends one event per row with one `INSERT … SELECT` from
the statement's transition table, in the statement's row order, and NOTIFYs once. The
payload is `{"table": …, "op": …}`, readable in a psql `LISTEN` and identical for every
statement of a kind, so PostgreSQL sends it once per transaction however many statements
ran (NOTIFY drops duplicates within a transaction); a NOTIFY over 8000 bytes could
never happen. A statement that touched no row logs and sends nothing.

An UPDATE that changes primary keys logs a DELETE of every id it took away, then, in row
order, an UPDATE of each row whose id was there before and an INSERT of each new id: a
client applying events by id ends with what the table holds, and a single row's id
change is DELETE(old id) then INSERT(new id). A TRUNCATE logs one event, null id and
data. docs/decisions.md has the measurements.
"""

import pgtrigger
from django.db import models
from pgtrigger import features, utils

from violations.contract import EVENT_LOG_TABLE, NOTIFY_CHANNEL

# The f-string only pastes the contract's checked channel. Sent once per transaction per
# table and operation: the listener reads the log, not this.
_NOTIFY = f"""
        PERFORM pg_notify(
            '{NOTIFY_CHANNEL}', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP)::text
        );"""


def _func(body: str) -> pgtrigger.Func:
    """`body` with `{notify}` replaced by the NOTIFY (its braces are pgtrigger's)."""
    return pgtrigger.Func(body.replace("{notify}", _NOTIFY))


# `{event_log}` is the log's schema-qualified name (see ViolationTrigger), `{meta.pk.column}`
# the model's primary key: both filled in by pgtrigger.Func per model. `to_jsonb` of the
# transition table's row is the row as committed, as `to_jsonb(NEW)` was.
_INSERT = _func(
    """
    INSERT INTO {event_log} (table_name, op, row_id, data)
        SELECT TG_TABLE_NAME, 'INSERT', new_row.{meta.pk.column}, to_jsonb(new_row)
        FROM new_rows AS new_row;
    IF FOUND THEN{notify}
    END IF;
    RETURN NULL;
    """
)

_DELETE = _func(
    """
    INSERT INTO {event_log} (table_name, op, row_id, data)
        SELECT TG_TABLE_NAME, 'DELETE', old_row.{meta.pk.column}, NULL
        FROM old_rows AS old_row;
    IF FOUND THEN{notify}
    END IF;
    RETURN NULL;
    """
)

# Old and new rows cannot be paired (a transition table has no ctid), but ids can: an id
# in both sets is an UPDATE, whatever moved. Ids are unique and both sets equally large,
# so no id was taken away exactly when none is new: the usual case, one plain scan.
_UPDATE = _func(
    """
    IF NOT EXISTS (
        SELECT FROM old_rows AS old_row WHERE NOT EXISTS (
            SELECT FROM new_rows AS new_row
            WHERE new_row.{meta.pk.column} = old_row.{meta.pk.column}
        )
    ) THEN
        INSERT INTO {event_log} (table_name, op, row_id, data)
            SELECT TG_TABLE_NAME, 'UPDATE', new_row.{meta.pk.column}, to_jsonb(new_row)
            FROM new_rows AS new_row;
    ELSE
        INSERT INTO {event_log} (table_name, op, row_id, data)
            SELECT TG_TABLE_NAME, 'DELETE', old_row.{meta.pk.column}, NULL
            FROM old_rows AS old_row WHERE NOT EXISTS (
                SELECT FROM new_rows AS new_row
                WHERE new_row.{meta.pk.column} = old_row.{meta.pk.column}
            );
        -- An uncorrelated IN (a hashed subplan) keeps the new rows in statement order.
        INSERT INTO {event_log} (table_name, op, row_id, data)
            SELECT TG_TABLE_NAME,
                CASE WHEN new_row.{meta.pk.column} IN (
                    SELECT old_row.{meta.pk.column} FROM old_rows AS old_row
                ) THEN 'UPDATE' ELSE 'INSERT' END,
                new_row.{meta.pk.column}, to_jsonb(new_row)
            FROM new_rows AS new_row;
    END IF;
    IF FOUND THEN{notify}
    END IF;
    RETURN NULL;
    """
)

# One event per truncated table (a TRUNCATE of several tables fires once for each).
_TRUNCATE = _func(
    """
    INSERT INTO {event_log} (table_name, op, row_id, data)
        VALUES (TG_TABLE_NAME, 'TRUNCATE', NULL, NULL);{notify}
    RETURN NULL;
    """
)


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


def _statement_trigger(name: str, operation, func, referencing=None) -> pgtrigger.Trigger:
    return ViolationTrigger(
        name=name,
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=operation,
        referencing=referencing,
        func=func,
    )


def notify_on_change() -> list[pgtrigger.Trigger]:
    """Statement-level AFTER INSERT, UPDATE and DELETE triggers: log every row the
    statement changed, in one `INSERT … SELECT` from its transition tables; NOTIFY once."""
    return [
        _statement_trigger(
            "notify_violation_insert",
            pgtrigger.Insert,
            _INSERT,
            pgtrigger.Referencing(new="new_rows"),
        ),
        _statement_trigger(
            "notify_violation_update",
            pgtrigger.Update,
            _UPDATE,
            pgtrigger.Referencing(old="old_rows", new="new_rows"),
        ),
        _statement_trigger(
            "notify_violation_delete",
            pgtrigger.Delete,
            _DELETE,
            pgtrigger.Referencing(old="old_rows"),
        ),
    ]


def notify_on_truncate() -> pgtrigger.Trigger:
    """Statement-level AFTER TRUNCATE trigger: log one event for the table, NOTIFY it."""
    return _statement_trigger("notify_violation_truncate", pgtrigger.Truncate, _TRUNCATE)
