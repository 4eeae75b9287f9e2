"""What separate processes must agree on, defined once.

The triggers (inside PostgreSQL), the listener, every web process, the browser and the
template's generation hooks each hold one side of these names and shapes; nothing else in
the project spells them. Standard library only: the hooks load this file by path
on a Python that may not have Django.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

# -- The identifier rule --------------------------------------------------------------
# Identifiers cannot be query parameters (LISTEN takes its channel as one), and
# django-pgtrigger pastes table and column names into trigger SQL. So every name a fork can
# configure that reaches SQL is a plain lower-case identifier: nothing that needs quoting.
IDENTIFIER_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
IDENTIFIER_RULE = (
    "1-63 characters of a-z, 0-9 and _, not starting with a digit (^[a-z_][a-z0-9_]{0,62}$)"
)


class InvalidIdentifier(ValueError):
    """A name that would reach SQL but is not a plain lower-case identifier."""


def is_plain_identifier(name: object) -> bool:
    return isinstance(name, str) and IDENTIFIER_PATTERN.fullmatch(name) is not None


def validate_identifier(name: object, what: str = "name") -> str:
    """Return `name` unchanged, or raise InvalidIdentifier saying what is allowed."""
    if not is_plain_identifier(name):
        raise InvalidIdentifier(
            f"{what} {name!r} is not allowed in SQL here: use {IDENTIFIER_RULE}."
        )
    return name  # type: ignore[return-value]


# -- Names in the database ------------------------------------------------------------
# The channel every violation trigger NOTIFYs and the listener LISTENs on.
NOTIFY_CHANNEL = "violations_channel"
# The event log the triggers append to; the listener numbers it, web processes read it.
EVENT_LOG_TABLE = "violation_events"
# One row: the last `seq` handed out. Transactional, unlike a sequence, and untouched when
# the log is pruned or truncated, so `seq` never goes back.
HEAD_TABLE = "violation_events_head"
# They are pasted into trigger SQL and migrations: a fork's rename is checked on import.
for _name in (NOTIFY_CHANNEL, EVENT_LOG_TABLE, HEAD_TABLE):
    validate_identifier(_name)


def listener_lock_key(channel: str = NOTIFY_CHANNEL) -> int:
    """The advisory-lock key the active listener of `channel` holds (a positive bigint).

    Derived from the channel so two projects sharing a database do not block each other.
    """
    digest = hashlib.sha256(f"listen_notify:{channel}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# -- Names in the channel layer -------------------------------------------------------
# Every batch of events goes to this group; each web process subscribes once.
EVENTS_GROUP = "violation_events"
# The channel-layer message type of such a batch: {"type": ..., "events": [wire events]}.
EVENTS_MESSAGE_TYPE = "violation.events"
# A logout in any web process closes that session's sockets in every process.
LOGOUTS_GROUP = "dashboard.logouts"
LOGOUT_MESSAGE_TYPE = "session.logged_out"


# -- The event ------------------------------------------------------------------------
OPERATIONS = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"})


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One committed change, as every client receives it.

    `seq` is its place in the delivered stream (1, 2, 3... without gaps): a client that
    remembers the last `seq` it applied can ask for everything after it. `data` is the row
    as committed (None after a DELETE or TRUNCATE), its long values cut; `cut` names the
    columns cut and their original lengths. `at` is when the change was made (ISO 8601).
    """

    seq: int
    table: str
    op: str
    id: int | None
    data: dict[str, Any] | None
    at: str
    cut: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object clients receive: `cut` only when something was cut."""
        wire = {
            "seq": self.seq,
            "table": self.table,
            "op": self.op,
            "id": self.id,
            "data": self.data,
            "at": self.at,
        }
        if self.cut:
            wire["cut"] = self.cut
        return wire

    def to_json(self) -> str:
        return wire_json(self.to_wire())

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Event:
        return cls(**wire)  # the wire's keys are the fields' names


def wire_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is: how every JSON frame is written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- The JSON feed's frames besides events --------------------------------------------
def heartbeat_frame(seq: int, at: str) -> str:
    """Sent to a quiet socket: the last `seq` it was sent, and the server's time (ISO)."""
    return wire_json({"type": "heartbeat", "seq": seq, "at": at})


def resync_frame(head: int) -> str:
    """Sent to a client whose resume point the log cannot serve: start again from `head`."""
    return wire_json({"type": "resync", "seq": head})


# -- How a dashboard WebSocket can end ------------------------------------------------
class CloseCode(IntEnum):
    """Close codes a client can act on (static/js/dashboard.js does).

    All in 4000-4999, the range RFC 6455 leaves to applications and the only one (besides
    1000) Daphne lets a server send. Each echoes the HTTP status of the same meaning. The
    page sends the user to the login page on 4401 and 4403, waits a minute on 4409, and
    reconnects after anything else.
    """

    BAD_MESSAGE = 4400  # not a message this server understands (never echoed back)
    UNAUTHENTICATED = 4401  # not logged in, or the session logged out
    FORBIDDEN = 4403  # logged in without the dashboard.view_dashboard permission
    TOO_SLOW = 4408  # nothing acknowledged for the ack timeout with the window full
    TOO_MANY_SOCKETS = 4409  # the session or user holds as many sockets as allowed
    MESSAGE_TOO_BIG = 4413  # over the largest client message accepted
    TOO_MANY_MESSAGES = 4429  # the client sent more than its allowance
    SERVER_ERROR = 4500  # the server could not send what this socket needs (logged)
