"""What a notification says, and building the events clients receive from the log.

Plain functions, no IO. The event's shape is violations.contract.Event:

    {"seq": 42, "table": "violation_ppedetections", "op": "INSERT", "id": 7,
     "data": {...the row as committed, or null after a DELETE...},
     "at": "2026-11-21T10:00:00.123456+00:00"}

`data` is bounded, whatever a writer put in the row: a text value longer than
MAX_VALUE_CHARS is cut there and ends in CUT_MARKER, and the event then carries
`"cut": {"column": original length, ...}`. The log keeps the row whole; only what goes
on the wire is cut, so no frame comes near the servers' 1 MiB message limit.

A NOTIFY payload is an untrusted wake-up call: anyone who can connect to the database can
send one. Events are only ever built from the event log, which only the trigger writes.
"""

import datetime
import json
from collections.abc import Iterator, Mapping
from typing import Any

from violations.contract import EVENTS_MESSAGE_TYPE, OPERATIONS, Event, is_plain_identifier

# A real notification is under 100 bytes; anything much longer is not worth parsing.
MAX_NOTIFICATION_BYTES = 1024
# The longest text value an event carries; longer ones are cut here and end in CUT_MARKER.
# A path or URL fits (browsers cap URLs near 2,000 characters); a pasted image does not.
MAX_VALUE_CHARS = 2000
CUT_MARKER = "…"
# Past this many characters of row JSON (a fork's table with many long columns), every
# value is cut further, largest first, to SHORT_VALUE_CHARS: the bound holds per event.
MAX_DATA_CHARS = 32 * 1024
SHORT_VALUE_CHARS = 64
# One channel-layer message carries at most about this much event JSON: a burst of large
# rows becomes several messages instead of one that Redis and msgpack struggle with.
MAX_MESSAGE_BYTES = 256 * 1024


class InvalidNotification(ValueError):
    """A NOTIFY payload that is not one the trigger sends."""


def parse_notification(payload: str) -> tuple[str, str]:
    """The table and operation a NOTIFY payload names; raise InvalidNotification saying
    what is wrong.

    Only says "the log has news": events are read from the log, so a forged notification
    finds nothing to announce. The trigger sends `{"table": …, "op": …}` once per
    statement kind and transaction, without event ids, so PostgreSQL can drop repeats.
    """
    if len(payload) > MAX_NOTIFICATION_BYTES:
        raise InvalidNotification(f"payload of {len(payload)} characters is too long")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise InvalidNotification(f"payload is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidNotification("payload is not a JSON object")
    table, op = data.get("table"), data.get("op")
    if not is_plain_identifier(table):
        raise InvalidNotification(f"table {table!r} is not a plain identifier")
    if op not in OPERATIONS:
        raise InvalidNotification(f"op {op!r} is not one of {', '.join(sorted(OPERATIONS))}")
    return table, op


def bound_row(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """`data` with every long value cut, and the original length of each value cut.

    Text is cut to MAX_VALUE_CHARS; any other value whose JSON is longer (a large jsonb
    or array column) becomes its JSON text, cut the same way. If the row is still over
    MAX_DATA_CHARS, the largest values are cut to SHORT_VALUE_CHARS until it fits.
    """
    row: dict[str, Any] = dict(data)
    cut: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for column, value in row.items():
        text = value if isinstance(value, str) else _json(value)
        sizes[column] = len(text)
        if len(text) > MAX_VALUE_CHARS:
            row[column] = _cut(text, MAX_VALUE_CHARS)
            cut[column] = len(text)
    total = len(_json(row))
    for column in sorted(row, key=lambda name: sizes[name], reverse=True):
        if total <= MAX_DATA_CHARS:
            break
        value = row[column]
        text = value if isinstance(value, str) else _json(value)
        if len(text) <= SHORT_VALUE_CHARS + len(CUT_MARKER):
            break
        shorter = _cut(text, SHORT_VALUE_CHARS)
        total -= len(_json(value)) - len(_json(shorter))
        row[column] = shorter
        cut[column] = sizes[column]
    return row, cut


def _cut(text: str, length: int) -> str:
    return text[:length] + CUT_MARKER


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build_event(
    *,
    seq: int,
    table: str,
    op: str,
    row_id: int | None,
    data: Mapping[str, Any] | None,
    created_at: datetime.datetime,
) -> Event:
    """The event clients receive for one entry of the log, its `data` bounded."""
    bounded, cut = (None, None) if data is None else bound_row(data)
    return Event(
        seq=seq,
        table=table,
        op=op,
        id=row_id,
        data=bounded,
        at=created_at.isoformat(),
        cut=cut or None,
    )


def event_from_log_row(row: Mapping[str, Any]) -> Event:
    """An event from a `violation_events` row read as a mapping of its columns."""
    return build_event(
        seq=row["seq"],
        table=row["table_name"],
        op=row["op"],
        row_id=row["row_id"],
        data=row["data"],
        created_at=row["created_at"],
    )


def channel_layer_messages(events: list[Event]) -> Iterator[dict[str, Any]]:
    """`events` (in seq order) as channel-layer messages of bounded size, still in order."""
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event.to_json())
        if batch and size + event_size > MAX_MESSAGE_BYTES:
            yield {"type": EVENTS_MESSAGE_TYPE, "events": batch}
            batch, size = [], 0
        batch.append(event.to_wire())
        size += event_size
    if batch:
        yield {"type": EVENTS_MESSAGE_TYPE, "events": batch}
