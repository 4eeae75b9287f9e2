"""The marker that carries an event's identity and send time inside the row itself.

Every row the bench writes has `violation_image = "/bench/<tag>-<seq>-<sent_ns>.jpg"`: the
run's tag, the event's number and `time.monotonic_ns()` taken just before the INSERT (an
autocommit INSERT, so it includes the commit) was sent. A client finds it in whatever frame
carries the row, so the bench needs nothing of a feed's shape beyond "the row's fields are
in it", and counts events even if a server one day merges several into one frame.
CLOCK_MONOTONIC is one clock for every process of a Linux machine.
"""

import re
import secrets
from collections.abc import Iterator

# JSON may escape "/" as "\/"; both spellings are accepted.
MARKER = re.compile(rb"\\?/bench\\?/([a-z0-9]+)-(\d+)-(\d+)\.jpg")


def new_tag() -> str:
    """A short tag naming one scenario run, so stragglers of another run never count."""
    return secrets.token_hex(4)


def marker(tag: str, seq: int, sent_ns: int) -> str:
    return f"/bench/{tag}-{seq}-{sent_ns}.jpg"


def find_markers(frame: bytes) -> Iterator[tuple[str, int, int]]:
    """(tag, seq, sent_ns) of every marked row in a frame, in order."""
    for match in MARKER.finditer(frame):
        yield match[1].decode(), int(match[2]), int(match[3])
