"""Reading and pruning the event log from Django (web processes, commands).

The listener writes `seq` with SQL of its own (violations.listener); everything here is
read-only except `prune`, and never touches an event that is not yet delivered.
"""

import datetime
import re
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from violations.contract import HEAD_TABLE, NOTIFY_CHANNEL, Event, listener_lock_key
from violations.events import event_from_log_row
from violations.models import ChangeEvent

_LOG_COLUMNS = ("seq", "table_name", "op", "row_id", "data", "created_at")
HEAD_SQL = f"SELECT seq FROM {HEAD_TABLE}"  # noqa: S608 (a validated constant)


def head_seq() -> int:
    """The last delivered event's `seq` (0 before the first), whether or not the log still
    holds it. Committed with the events it counts: a seq up to it that the log lacks is
    gone for good (pruned), never merely not yet committed."""
    with connection.cursor() as cursor:
        cursor.execute(HEAD_SQL)
        (head,) = cursor.fetchone()
    return int(head)


def events_after(after: int, *, upto: int | None = None, limit: int = 1000) -> list[Event]:
    """Delivered events with `after < seq <= upto`, oldest first, at most `limit`."""
    rows = ChangeEvent.objects.filter(seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    values = rows.order_by("seq").values(*_LOG_COLUMNS)[:limit]
    return [event_from_log_row(row) for row in values]


@dataclass(frozen=True)
class ListenerStatus:
    """What the dashboard says about the listener."""

    active: bool  # some listener holds the lock on this database
    head: int  # last delivered seq
    last_event_at: datetime.datetime | None  # when the last delivered change was made


def listener_status(channel: str = NOTIFY_CHANNEL) -> ListenerStatus:
    key = listener_lock_key(channel)
    with connection.cursor() as cursor:
        # A bigint advisory key shows in pg_locks as two 32-bit halves, objsubid 1.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1 AND granted)",
            [key >> 32, key & 0xFFFFFFFF],
        )
        (active,) = cursor.fetchone()
    head = head_seq()
    last = ChangeEvent.objects.filter(seq=head).values_list("created_at", flat=True).first()
    return ListenerStatus(active=active, head=head, last_event_at=last)


def prune(older_than: datetime.timedelta, *, batch_size: int = 10_000) -> int:
    """Delete delivered events older than `older_than`; undelivered ones always stay.

    Deletes in batches so a large first prune does not hold one long transaction.
    """
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            ChangeEvent.objects.filter(created_at__lt=cutoff, seq__isnull=False)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += ChangeEvent.objects.filter(id__in=ids).delete()[0]


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> datetime.timedelta:
    """`7d`, `12h`, `30m`, `90s`, `2w` as a timedelta; ValueError says what is accepted."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, e.g. 7d, 12h, 30m, 90s, 2w"
        )
    number, unit = match.groups()
    return datetime.timedelta(**{_UNITS[unit]: int(number)})
