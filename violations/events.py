"""What a notification says, and the event the rest of the system receives.

Plain functions, no IO. The event shape is defined here and nowhere else:

    {"seq": 42, "table": "violation_ppedetections", "op": "INSERT", "id": 7,
     "data": {...the row as committed, or null after a DELETE...},
     "at": "2026-11-21T10:00:00.123456+00:00"}

`seq` is the event's place in the delivered stream (1, 2, 3... without gaps): a client
that remembers the last `seq` it applied can ask for everything after it.

A NOTIFY payload is an untrusted wake-up call: anyone who can connect to the database can
send one. Events are only ever built from the event log, which only the trigger writes.
"""

import datetime
import json
from collections.abc import Iterator, Mapping
from typing import Any

# Channel-layer group every event batch is sent to; each web process subscribes once.
EVENTS_GROUP = "violation_events"
# Channel-layer message type: a batch of events, in `seq` order.
EVENTS_MESSAGE_TYPE = "violation.events"

OPERATIONS = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"})
MAX_BIGINT = 2**63 - 1
# A real notification is under 200 bytes; anything much longer is not worth parsing.
MAX_NOTIFICATION_BYTES = 1024
# One channel-layer message carries at most about this much event JSON: a burst of large
# rows becomes several messages instead of one that Redis and msgpack struggle with.
MAX_MESSAGE_BYTES = 256 * 1024

Event = dict[str, Any]


class InvalidNotification(ValueError):
    """A NOTIFY payload that is not one the trigger sends."""


def parse_notification(payload: str) -> int:
    """The event id a NOTIFY payload names; raise InvalidNotification saying what is wrong.

    Only the id is used, and only to say "the log has news": the event itself is read from
    the log, so a forged notification finds nothing to announce.
    """
    if len(payload) > MAX_NOTIFICATION_BYTES:
        raise InvalidNotification(f"payload of {len(payload)} characters is too long")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise InvalidNotification(f"payload is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidNotification("payload is not a JSON object")
    event_id = data.get("event_id")
    # bool is an int in Python; a JSON true is not an id.
    if isinstance(event_id, bool) or not isinstance(event_id, int):
        raise InvalidNotification(f"event_id {event_id!r} is not an integer")
    if not 0 < event_id <= MAX_BIGINT:
        raise InvalidNotification(f"event_id {event_id} is not a positive bigint")
    return event_id


def build_event(
    *,
    seq: int,
    table: str,
    op: str,
    row_id: int | None,
    data: Mapping[str, Any] | None,
    created_at: datetime.datetime,
) -> Event:
    """The event clients receive for one entry of the log."""
    return {
        "seq": seq,
        "table": table,
        "op": op,
        "id": row_id,
        "data": None if data is None else dict(data),
        "at": created_at.isoformat(),
    }


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


def encode_event(event: Event) -> str:
    """The JSON text of an event, as the programmatic feed sends it."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def channel_layer_messages(events: list[Event]) -> Iterator[dict[str, Any]]:
    """`events` (in seq order) as channel-layer messages of bounded size, still in order."""
    batch: list[Event] = []
    size = 0
    for event in events:
        event_size = len(encode_event(event))
        if batch and size + event_size > MAX_MESSAGE_BYTES:
            yield {"type": EVENTS_MESSAGE_TYPE, "events": batch}
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield {"type": EVENTS_MESSAGE_TYPE, "events": batch}
