"""The database side of the pipeline: a row trigger that announces every change.

The trigger sends a fixed-size hint, `{"table", "op", "id"}`, never the row itself: the
row may be any size, and a NOTIFY payload over 8000 bytes would make the INSERT fail.
The listener reads the row from the table, so the hint is all it needs.
"""

import pgtrigger

from violations.notify import NOTIFY_CHANNEL, validate_channel_name

# The name is pasted into the trigger's SQL, so it is checked first.
validate_channel_name(NOTIFY_CHANNEL)

# OLD is NULL for INSERT and NEW for DELETE; reading the id in plain PL/pgSQL branches
# (not one SQL CASE) keeps it valid on every PostgreSQL version Django supports.
# `{meta.pk.column}` is filled in per model by pgtrigger.Func.
_NOTIFY_BODY = pgtrigger.Func(
    f"""
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.{{meta.pk.column}};
    ELSE
        row_id := NEW.{{meta.pk.column}};
    END IF;
    PERFORM pg_notify(
        '{NOTIFY_CHANNEL}',
        json_build_object('table', TG_TABLE_NAME, 'op', TG_OP, 'id', row_id)::text
    );
    RETURN NULL;
    """
)


def notify_on_change() -> pgtrigger.Trigger:
    """Row-level AFTER INSERT/UPDATE/DELETE trigger that NOTIFYs `NOTIFY_CHANNEL`."""
    return pgtrigger.Trigger(
        name="notify_violation_change",
        level=pgtrigger.Row,
        when=pgtrigger.After,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        declare=[("row_id", "bigint")],
        func=_NOTIFY_BODY,
    )
