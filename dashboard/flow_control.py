"""How much one socket may have in flight: a window of unacknowledged bytes.

ASGI has no "bytes buffered" call, and Daphne never makes `send()` wait: Twisted keeps
whatever a client does not read until the keepalive gives up (a dozen stalled sockets
grew one process by 100 MB in 20 s). So the bound is built where it holds under every
server: each socket may have at most `limit` bytes sent beyond what its client last
acknowledged (`{"type": "ack", "seq": N}`, or a resume, which says the same). A socket
whose window is full waits; one that stays full for `timeout` seconds is closed (4408)
and resumes from where it was when it reconnects.

Hand-written because it is the project's own protocol; the state is plain and the waiting
is one future per socket.
"""

import asyncio

# What one socket may have sent and not had acknowledged. A wall screen acks every quarter
# second; a busy dashboard's frames add up to about 300 kB a second.
WINDOW_BYTES = 512 * 1024
# A socket whose window stays full this long is closed: its client has stopped reading.
ACK_TIMEOUT = 30.0


class AckTimeout(TimeoutError):
    """The client acknowledged nothing for ACK_TIMEOUT with its window full."""


class Window:
    """Bytes sent per stream position, released when the client acknowledges that position."""

    # One per socket, thousands per process: no instance dict, and a list rather than a
    # deque (an empty deque holds a 600-byte block; the list is released a run at a time).
    __slots__ = ("_room", "_sent", "in_flight", "limit", "timeout")

    def __init__(self, limit: int = WINDOW_BYTES, timeout: float = ACK_TIMEOUT) -> None:
        self.limit = limit
        self.timeout = timeout
        self.in_flight = 0
        self._sent: list[tuple[int, int]] = []  # (position after the frame, bytes), in order
        self._room: asyncio.Future[None] | None = None

    def has_room(self) -> bool:
        """Another frame may go out: less than `limit` unacknowledged (one frame may take
        it over, so a frame larger than the window still goes out once the rest is acked)."""
        return self.in_flight < self.limit

    def sent(self, position: int, size: int) -> None:
        """A frame of `size` bytes went out; the client is at `position` once it has it."""
        self._sent.append((position, size))
        self.in_flight += size

    def acknowledged(self, position: int) -> None:
        """The client has everything up to `position` (frames at it included)."""
        sent = self._sent
        done = 0
        while done < len(sent) and sent[done][0] <= position:
            self.in_flight -= sent[done][1]
            done += 1
        if done:
            del sent[:done]
        if self.has_room() and self._room is not None and not self._room.done():
            self._room.set_result(None)

    def reset(self) -> None:
        """Forget what is in flight: the client resumed, saying where it is."""
        self._sent.clear()
        self.in_flight = 0
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def wait_for_room(self) -> None:
        """Return once another frame may go out; AckTimeout after `timeout` seconds."""
        if self.has_room():
            return
        self._room = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.timeout):
                await self._room
        except TimeoutError:
            raise AckTimeout(
                f"{self.in_flight} bytes unacknowledged for {self.timeout:g} s"
            ) from None
        finally:
            self._room = None
