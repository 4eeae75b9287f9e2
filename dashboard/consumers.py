"""WebSocket consumers: thin adapters between a socket and the process's hub.

Both endpoints resume. A client says where it is with `{"type": "resume", "since": N}`
(the last `seq` it applied; the feed also takes `?since=N`) and receives what it missed.

Access, logout, and everything a client sends are handled by the SocketGuard mixin
(dashboard/socket_guard.py) before `connect()` runs; a valid resume message arrives as
`handle_resume(since)`.
"""

import asyncio
import logging
from collections.abc import Callable

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.client_messages import InvalidClientMessage, since_from_query
from dashboard.flow_control import AckTimeout, Window
from dashboard.frames import frame_bytes
from dashboard.hub import hub
from dashboard.socket_guard import SocketGuard
from violations import event_log
from violations.contract import CloseCode

logger = logging.getLogger(__name__)

# How long a dashboard socket waits for the page to say where it is before it is sent a
# full refresh; the page says it as soon as the socket opens.
RESUME_WAIT = 1.0


# The largest frame a socket is sent. Daphne drops a message over its 1 MiB limit without a
# word (Autobahn raises inside Daphne, the application never hears), so a frame near it
# would leave the client silently behind: events are bounded far below this
# (violations.events.MAX_DATA_CHARS), and anything larger closes the socket instead.
MAX_FRAME_BYTES = 256 * 1024

head_seq = database_sync_to_async(event_log.head_seq)


class FrameTooLarge(RuntimeError):
    """A frame over MAX_FRAME_BYTES: sending it would fail silently in the server."""


class FollowingConsumer(SocketGuard, AsyncWebsocketConsumer):
    """A socket whose sending is done by one hub task, started once it knows where to begin.

    What it sends is held against a window (dashboard.flow_control) that the client's acks
    and resumes open again: a client that stops reading stops costing memory.
    """

    follow_task: asyncio.Task | None = None

    async def websocket_connect(self, message: dict) -> None:
        self.window = Window()
        await super().websocket_connect(message)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Channels' AsyncConsumer.__call__ without its per-message task and asyncio.wait:
        with no channel layer (SocketGuard) the server's `receive` is the only source."""
        if self.channel_layer_alias is not None:
            return await super().__call__(scope, receive, send)
        self.scope, self.channel_layer, self.base_send = scope, None, send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict) -> None:
        # A client frame (an ack, mostly) goes straight to its handler, without Channels'
        # close_old_connections thread hop: nothing here touches the database but through
        # database_sync_to_async, which does that itself (docs/decisions.md, issue 16).
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    def follow(self, since: int | None) -> asyncio.Task:
        """Start the hub task that sends this socket everything after `since`."""
        raise NotImplementedError

    async def start_following(self, since: int | None) -> None:
        self._follow_from(await self.start_point(since))

    async def start_point(self, since: int | None) -> int | None:
        """Where the hub task starts for a client that says `since`: `since` itself here."""
        return since

    def _follow_from(self, since: int | None) -> None:
        if self.follow_task is not None:
            self.follow_task.cancel()
        self.follow_task = self.follow(since)
        self.follow_task.add_done_callback(self._close_if_failed)

    def _close_if_failed(self, task: asyncio.Task) -> None:
        """A sending task that died leaves a socket open and silent: close it instead, so
        the client reconnects and resumes. A client that stopped acknowledging is the
        client's doing (a warning); anything else is ours (an error, with the traceback)."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        name = type(self).__name__
        if isinstance(error, AckTimeout):
            code = CloseCode.TOO_SLOW
            logger.warning("closing a %s socket with %d: %s", name, code, error)
        else:
            code = CloseCode.SERVER_ERROR
            logger.error(
                "closing a %s socket with %d: its sending task failed", name, code, exc_info=error
            )
        self._closing_task = asyncio.ensure_future(self.close(code=code))

    async def send_frame(self, text: str, position: int | None) -> None:
        """Send one text frame once the window has room, refusing (FrameTooLarge) one the
        server would drop. `position`: where the client is once it has this frame; None
        for a heartbeat, which the window does not count (it is small and comes at most
        every few seconds, and a client that reads nothing answers no pings either)."""
        size = frame_bytes(text)
        if size > MAX_FRAME_BYTES:
            raise FrameTooLarge(f"a frame of {size} bytes is over {MAX_FRAME_BYTES}")
        if position is not None and not self.window.has_room():
            await self.window.wait_for_room()
        # The server's send itself, not Channels' two layers of `send` above it.
        await self.base_send({"type": "websocket.send", "text": text})
        if position is not None:
            self.window.sent(position, size)

    async def handle_resume(self, since: int | None) -> None:
        """A valid resume message (SocketGuard has parsed and checked it)."""
        self.window.reset()  # it says where the client is: nothing earlier is in flight
        await self.start_following(since)

    def handle_ack(self, seq: int) -> None:
        self.window.acknowledged(seq)

    async def disconnect(self, code: int) -> None:
        if self.follow_task is not None:
            self.follow_task.cancel()


class DashboardConsumer(FollowingConsumer):
    """`/ws/dashboard/`: HTML fragments for the htmx ws extension to swap out-of-band.

    The page sends the position it shows as soon as the socket opens, and gets only what it
    missed; a client that says nothing within RESUME_WAIT gets a full refresh.
    """

    async def connect(self) -> None:
        await self.accept()
        loop = asyncio.get_running_loop()
        self._refresh_timer = loop.call_later(RESUME_WAIT, self._refresh_unless_resumed)

    def _refresh_unless_resumed(self) -> None:
        if self.follow_task is None:
            self._follow_from(None)

    async def disconnect(self, code: int) -> None:
        timer = getattr(self, "_refresh_timer", None)
        if timer is not None:
            timer.cancel()
        await super().disconnect(code)

    def follow(self, since: int | None) -> asyncio.Task:
        return hub.follow_dashboard(self, since)

    async def send_fragment(self, html: str, position: int | None) -> None:
        await self.send_frame(html, position)


class ViolationFeedConsumer(FollowingConsumer):
    """`/ws/violations/`: every change as JSON `{"seq", "table", "op", "id", "data", "at"}`.

    `data` holds the row as committed (null after a DELETE), in the shape the public
    recipe's front end reads (`msg.table`, `msg.data`). Live from the moment of connecting,
    or from `?since=N` / a resume message. `{"type": "resync", "seq": N}` says the log no
    longer holds what was asked for: reload state, then carry on from N.
    """

    async def connect(self) -> None:
        try:
            since = since_from_query(self.scope.get("query_string", b""))
        except InvalidClientMessage as exc:
            await self.refuse_handshake(CloseCode.BAD_MESSAGE, str(exc))
            return
        start = await self.start_point(since)  # before the handshake completes
        await self.accept()
        self._follow_from(start)

    async def start_point(self, since: int | None) -> int:
        """None is "from now": the log's head, read before the handshake or resume is
        answered, so a change committed right after is delivered even while this process's
        stream is still catching up."""
        return await head_seq() if since is None else since

    def follow(self, since: int) -> asyncio.Task:
        return hub.follow_feed(self, since)

    async def send_event_text(self, text: str, position: int | None) -> None:
        await self.send_frame(text, position)
