"""What a client may send over a dashboard socket, checked before anything acts on it.

Pure functions, no IO. A message is one WebSocket text frame holding a JSON object with a
string "type". The one type today:

    {"type": "resume", "since": 1234}   # or "since": null — resume after event 1234

Messages of other types are ignored (a newer page may talk to an older server), and no
message is ever echoed: errors say what rule was broken, never quote what was sent.
"""

import json
from dataclasses import dataclass
from typing import Any, NoReturn

MAX_MESSAGE_BYTES = 1024
MAX_EVENT_ID = 2**63 - 1  # bigint, like the ids it refers to


class InvalidClientMessage(ValueError):
    """A frame that breaks the protocol; the message says which rule, not what was sent."""


class MessageTooLarge(InvalidClientMessage):
    """A frame over MAX_MESSAGE_BYTES."""


@dataclass(frozen=True)
class Resume:
    """Send what happened after event `since` (None: the client has seen nothing yet)."""

    since: int | None


ClientMessage = Resume  # a union as more types arrive


def parse_client_message(frame: str | bytes) -> ClientMessage | None:
    """The message in `frame`, None for a well-formed message of an unknown type.

    Raises MessageTooLarge or InvalidClientMessage for anything else.
    """
    if isinstance(frame, bytes):
        if len(frame) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(_too_large())
        raise InvalidClientMessage("binary frames are not accepted; send JSON as text")
    # A character is at least one byte: the cheap test rejects a huge frame without
    # encoding it. "surrogatepass" counts a lone surrogate instead of raising on it.
    if len(frame) > MAX_MESSAGE_BYTES or len(frame.encode("utf-8", "surrogatepass")) > (
        MAX_MESSAGE_BYTES
    ):
        raise MessageTooLarge(_too_large())
    try:
        data = json.loads(frame, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidClientMessage("a message must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidClientMessage("a message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidClientMessage('a message needs a string "type"')
    if kind == "resume":
        return Resume(since=_event_id(data))
    return None


def _event_id(data: dict[str, Any]) -> int | None:
    if "since" not in data:
        raise InvalidClientMessage('"resume" needs "since": an event id or null')
    since = data["since"]
    if since is None:
        return None
    # bool is an int in Python; a JSON true is not an event id, nor is 3.0.
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_EVENT_ID:
        raise InvalidClientMessage('"since" must be null or an integer from 0 to 2**63-1')
    return since


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _too_large() -> str:
    return f"a message may be at most {MAX_MESSAGE_BYTES} bytes"
