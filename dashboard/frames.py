"""Frames as they go on the wire: what a text frame weighs, worked out once per distinct text.

The hub sends the same text object (an event's JSON from the stream, a fragment from the
render cache) to every socket at that position, so its UTF-8 size is measured once for all
of them rather than once per socket: an ASCII text's size is its length, and the last
other text measured is remembered by identity.
"""

_last: tuple[str, int] = ("", 0)


def frame_bytes(text: str) -> int:
    """How many bytes `text` is in UTF-8 (a lone surrogate counts 3 rather than failing here)."""
    global _last
    if text.isascii():
        return len(text)
    if _last[0] is text:
        return _last[1]
    size = len(text.encode("utf-8", "surrogatepass"))
    _last = (text, size)
    return size
