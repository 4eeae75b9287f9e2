"""What a client may send over a dashboard socket, checked before anything acts on it.

Pure functions, no IO. A message is one WebSocket text frame holding a JSON object with a
string "type". The types:

    {"type": "resume", "since": 1234}   # or "since": null — resume after seq 1234
    {"type": "ack", "seq": 1234}        # I have everything the server sent up to 1234

The feed's handshake may say the same in its query string, `?since=1234`
(`since_from_query`). Every number a client sends, in a message or a query string, is
ASCII digits only: `str.isdigit()` and `int()` also take '²' or '١٢', and `int('²')` raises.

Messages of other types are ignored (a newer page may talk to an older server), and no
message is ever echoed: errors say what rule was broken, never quote what was sent.
"""

import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qs

MAX_MESSAGE_BYTES = 1024
MAX_SEQ = 2**63 - 1  # bigint, like the `seq` column
# [0-9], not \d: in a str pattern \d matches every Unicode decimal digit.
_SEQ_TEXT = re.compile(r"[0-9]{1,19}")
_JSON_INT = re.compile(r"-?[0-9]+")


class InvalidClientMessage(ValueError):
    """A frame that breaks the protocol; the message says which rule, not what was sent."""


class MessageTooLarge(InvalidClientMessage):
    """A frame over MAX_MESSAGE_BYTES."""


@dataclass(frozen=True)
class Resume:
    """Send the events after seq `since` (None: the client has seen nothing yet)."""

    since: int | None


@dataclass(frozen=True)
class Ack:
    """The client has received everything sent up to stream position `seq`
    (dashboard.flow_control: what it no longer holds against the socket's window)."""

    seq: int


ClientMessage = Resume | Ack


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
        data = json.loads(frame, parse_constant=_reject_constant, parse_int=_ascii_int)
    except (ValueError, RecursionError):
        raise InvalidClientMessage("a message must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidClientMessage("a message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidClientMessage('a message needs a string "type"')
    if kind == "resume":
        return Resume(since=_resume_since(data))
    if kind == "ack":
        return Ack(seq=_acked_seq(data))
    return None


def _acked_seq(data: dict[str, Any]) -> int:
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise InvalidClientMessage('"ack" needs "seq": an integer from 0 to 2**63-1')
    return seq


def _resume_since(data: dict[str, Any]) -> int | None:
    if "since" not in data:
        raise InvalidClientMessage('"resume" needs "since": a seq or null')
    since = data["since"]
    if since is None:
        return None
    # bool is an int in Python; a JSON true is not a seq, nor is 3.0.
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_SEQ:
        raise InvalidClientMessage('"since" must be null or an integer from 0 to 2**63-1')
    return since


def since_from_query(query_string: bytes) -> int | None:
    """The seq in a handshake's `?since=N`; None when there is no `since`.

    Raises InvalidClientMessage for anything but one value of 1 to 19 ASCII digits up to
    MAX_SEQ (an empty or repeated `since` included): a client that asks to resume
    from somewhere we cannot read is told, not silently sent something else.
    """
    # latin-1 maps every byte to a character, so no query string fails to decode.
    fields = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    values = fields.get("since")
    if values is None:
        return None
    if len(values) != 1:
        raise InvalidClientMessage('"since" may be given once')
    return seq_from_text(values[0])


def seq_from_text(text: str) -> int:
    """A seq written as ASCII digits; InvalidClientMessage for anything else."""
    if not _SEQ_TEXT.fullmatch(text) or int(text) > MAX_SEQ:
        raise InvalidClientMessage('"since" must be an integer from 0 to 2**63-1 in ASCII digits')
    return int(text)


def _ascii_int(text: str) -> int:
    # json's C scanner reads only ASCII digits, its pure-Python fallback reads any \d:
    # held here so the rule does not depend on which one runs (a frame's 1 kB bounds int()).
    if not _JSON_INT.fullmatch(text):
        raise ValueError("a number must be ASCII digits")
    return int(text)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _too_large() -> str:
    return f"a message may be at most {MAX_MESSAGE_BYTES} bytes"
