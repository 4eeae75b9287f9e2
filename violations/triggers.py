"""The database side of the pipeline: a row trigger that logs and announces every change.

In the same transaction as the change, the trigger appends an event to the event log
(`violation_events`) and NOTIFYs its id. So an event exists exactly when the change
committed, and a NOTIFY is only a wake-up call: the listener reads the log, never trusts
the payload, and after any outage finds in the log whatever it missed.

The payload stays small and fixed-size, `{"event_id", "table", "op", "id"}` (readable in a
psql `LISTEN`), however large the row: a NOTIFY over 8000 bytes would fail the INSERT.
"""

import pgtrigger

from violations.notify import NOTIFY_CHANNEL, validate_channel_name

# The event log's table; the trigger writes it, the listener and web processes read it.
EVENT_LOG_TABLE = "violation_events"

# The last `seq` handed out (see violations.listener), in a one-row table written by the
# same statement that numbers events: transactional, unlike a sequence, and untouched when
# the log is pruned or truncated, so `seq` never goes back.
HEAD_TABLE = "violation_events_head"

# Both names are pasted into the trigger's SQL, so they are checked first.
validate_channel_name(NOTIFY_CHANNEL)
validate_channel_name(EVENT_LOG_TABLE)
validate_channel_name(HEAD_TABLE)

# OLD is NULL for INSERT and NEW for DELETE; plain PL/pgSQL branches (not one SQL CASE)
# keep it valid on every PostgreSQL version Django supports. `{meta.pk.column}` is filled
# in per model by pgtrigger.Func. The f-string only pastes the two names validated above.
_LOG_AND_NOTIFY = pgtrigger.Func(
    f"""
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.{{meta.pk.column}};
        row_data := NULL;
    ELSE
        row_id := NEW.{{meta.pk.column}};
        row_data := to_jsonb(NEW);
    END IF;
    INSERT INTO {EVENT_LOG_TABLE} (table_name, op, row_id, data)
        VALUES (TG_TABLE_NAME, TG_OP, row_id, row_data)
        RETURNING id INTO event_id;
    PERFORM pg_notify(
        '{NOTIFY_CHANNEL}',
        json_build_object(
            'event_id', event_id, 'table', TG_TABLE_NAME, 'op', TG_OP, 'id', row_id
        )::text
    );
    RETURN NULL;
    """  # noqa: S608
)


def notify_on_change() -> pgtrigger.Trigger:
    """Row-level AFTER INSERT/UPDATE/DELETE trigger: log the change, NOTIFY its event id."""
    return pgtrigger.Trigger(
        name="notify_violation_change",
        level=pgtrigger.Row,
        when=pgtrigger.After,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        declare=[("row_id", "bigint"), ("row_data", "jsonb"), ("event_id", "bigint")],
        func=_LOG_AND_NOTIFY,
    )
