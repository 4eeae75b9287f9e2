"""Sending PostgreSQL notifications from Python, and the rules a channel name must follow."""

import json
from collections.abc import Mapping
from typing import Any

from django.db import connections

from violations.identifiers import SQL_IDENTIFIER

# The one channel every violation trigger notifies and the listener LISTENs on.
NOTIFY_CHANNEL = "violations_channel"

# Channel names reach SQL (LISTEN takes an identifier, not a parameter), so only plain
# lower-case identifiers are allowed: nothing that needs quoting, nothing that can inject.
CHANNEL_NAME_PATTERN = SQL_IDENTIFIER

# PostgreSQL rejects a NOTIFY payload of 8000 bytes or more (in the server encoding).
MAX_PAYLOAD_BYTES = 7999


class NotifyError(ValueError):
    """A channel name or payload PostgreSQL would refuse, reported before it gets there."""


def validate_channel_name(channel: str) -> str:
    """Return `channel` unchanged, or raise NotifyError saying why it is not allowed."""
    if not isinstance(channel, str) or not CHANNEL_NAME_PATTERN.fullmatch(channel):
        raise NotifyError(
            f"Invalid NOTIFY channel name {channel!r}: use 1-63 characters of a-z, 0-9 and _, "
            "not starting with a digit (pattern ^[a-z_][a-z0-9_]{0,62}$)."
        )
    return channel


def encode_payload(payload: str | Mapping[str, Any]) -> str:
    """Turn `payload` into the text NOTIFY will carry, or raise NotifyError if it is too big."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise NotifyError(
            f"NOTIFY payload is {size} bytes; PostgreSQL accepts at most {MAX_PAYLOAD_BYTES}. "
            "Send an id and read the row instead of sending the row."
        )
    return text


def send_notify(
    channel: str, payload: str | Mapping[str, Any] = "", *, using: str = "default"
) -> None:
    """NOTIFY `channel` with `payload` (text, or a mapping sent as JSON).

    Runs on Django's connection, so inside `transaction.atomic()` it is delivered on commit
    and not at all on rollback, like any NOTIFY.
    """
    validate_channel_name(channel)
    text = encode_payload(payload)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, text])
