"""Sending PostgreSQL notifications from Python."""

import json
from collections.abc import Mapping
from typing import Any

from django.db import connections

from violations.contract import validate_identifier

# PostgreSQL rejects a NOTIFY payload of 8000 bytes or more (in the server encoding).
MAX_PAYLOAD_BYTES = 7999


class NotifyError(ValueError):
    """A payload PostgreSQL would refuse, reported before it gets there."""


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

    Raises violations.contract.InvalidIdentifier for a channel that is not a plain
    identifier, NotifyError for a payload PostgreSQL would refuse.

    Runs on Django's connection, so inside `transaction.atomic()` it is delivered on commit
    and not at all on rollback, like any NOTIFY.
    """
    validate_identifier(channel, "NOTIFY channel")
    text = encode_payload(payload)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, text])
