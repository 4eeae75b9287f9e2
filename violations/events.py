"""What a change notification says, and the event the rest of the system receives.

Plain functions, no IO: the listener feeds them NOTIFY payloads and rows it read, and
they decide what is announced. The event shape is defined here and nowhere else.

A NOTIFY payload is an untrusted hint: anyone who can connect to the database can send
one. An event is only ever built from the row as the database holds it.
"""

import datetime
import decimal
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Channel-layer group every event is sent to; the dashboard subscribes to it.
EVENTS_GROUP = "violation_events"
# Channel-layer message type: consumers handle it in a `violation_event` method.
EVENT_MESSAGE_TYPE = "violation.event"

OPERATIONS = frozenset({"INSERT", "UPDATE", "DELETE"})
MAX_ROW_ID = 2**63 - 1  # bigint
# A real hint is under 150 bytes; anything much longer is not worth parsing.
MAX_HINT_BYTES = 1024

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
Event = dict[str, Any]


class InvalidHint(ValueError):
    """A NOTIFY payload that is not a change hint for a known table."""


@dataclass(frozen=True)
class ChangeHint:
    """What the trigger claims: `op` happened to row `id` of `table`."""

    table: str
    op: str
    id: int


def parse_hint(payload: str, known_tables: Iterable[str]) -> ChangeHint:
    """Parse and check a NOTIFY payload; raise InvalidHint saying what is wrong with it."""
    if len(payload) > MAX_HINT_BYTES:
        raise InvalidHint(f"payload of {len(payload)} characters is too long to be a hint")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise InvalidHint(f"payload is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidHint("payload is not a JSON object")
    table, op, row_id = data.get("table"), data.get("op"), data.get("id")
    if not isinstance(table, str) or table not in set(known_tables):
        raise InvalidHint(f"unknown table {table!r}")
    if op not in OPERATIONS:
        raise InvalidHint(f"unknown operation {op!r}")
    # bool is an int in Python; a JSON true is not a row id.
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 0 < row_id <= MAX_ROW_ID:
        raise InvalidHint(f"id {row_id!r} is not a positive bigint")
    return ChangeHint(table=table, op=op, id=row_id)


def ids_by_table(hints: Iterable[ChangeHint]) -> dict[str, list[int]]:
    """The distinct row ids to read per table, so one query per table serves a batch."""
    wanted: dict[str, dict[int, None]] = {}
    for hint in hints:
        wanted.setdefault(hint.table, {})[hint.id] = None
    return {table: list(ids) for table, ids in wanted.items()}


def json_value(value: Any) -> JsonValue:
    """A database value as JSON: dates and times in ISO 8601, decimals and UUIDs as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def build_event(hint: ChangeHint, row: Mapping[str, Any] | None) -> Event:
    """The event for a confirmed hint: `data` is the row, or None once it is deleted."""
    data = None if row is None else {name: json_value(value) for name, value in row.items()}
    return {"table": hint.table, "op": hint.op, "id": hint.id, "data": data}


def confirmed_events(
    hints: Iterable[ChangeHint], rows: Mapping[str, Mapping[int, Mapping[str, Any]]]
) -> tuple[list[Event], list[ChangeHint]]:
    """Split hints into events the database confirms and hints it contradicts.

    `rows` is what was read after the hints arrived: {table: {id: row}}. An INSERT or
    UPDATE is confirmed by the row being there (its data is read, not trusted), a DELETE by
    its absence. A row inserted and deleted before it was read yields only the DELETE.
    """
    events: list[Event] = []
    rejected: list[ChangeHint] = []
    for hint in hints:
        row = rows.get(hint.table, {}).get(hint.id)
        if hint.op == "DELETE":
            if row is None:
                events.append(build_event(hint, None))
            else:
                rejected.append(hint)
        elif row is not None:
            events.append(build_event(hint, row))
        else:
            rejected.append(hint)
    return events, rejected


def channel_layer_message(event: Event) -> dict[str, Any]:
    """Wrap an event for `channel_layer.group_send(EVENTS_GROUP, ...)`."""
    return {"type": EVENT_MESSAGE_TYPE, "event": event}
