"""WebSocket consumers: thin adapters between a socket and the process's hub.

Both endpoints resume. A client says where it is with `{"type": "resume", "since": N}`
(the last `seq` it applied; the feed also takes `?since=N`) and receives what it missed.
"""

import asyncio
import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.broadcast import hub
from violations import event_log

# Application close code for "log in first" (4000-4999 are the application's to define;
# 4401 echoes HTTP 401 so it reads at a glance in a browser's console).
CLOSE_UNAUTHENTICATED = 4401
# How long a dashboard socket waits for the page to say where it is before it is sent a
# full refresh; the page says it as soon as the socket opens.
RESUME_WAIT = 1.0


async def refuse_anonymous(consumer: AsyncWebsocketConsumer) -> bool:
    """Close the socket of a visitor who is not logged in; True if it was closed."""
    user = consumer.scope.get("user")
    if user is not None and user.is_authenticated:
        return False
    # Accept first so the client sees our close code rather than a bare HTTP 403.
    await consumer.accept()
    await consumer.close(code=CLOSE_UNAUTHENTICATED)
    return True


head_seq = database_sync_to_async(event_log.head_seq)


def resume_position(text: str | None) -> tuple[bool, int | None]:
    """(is a resume message, since) for what a client sent; anything else is ignored."""
    try:
        message = json.loads(text or "")
    except ValueError:
        return False, None
    if not isinstance(message, dict) or message.get("type") != "resume":
        return False, None
    since = message.get("since")
    if (
        isinstance(since, bool)
        or not (since is None or isinstance(since, int))
        or (since is not None and not 0 <= since < 2**63)
    ):
        return False, None
    return True, since


class FollowingConsumer(AsyncWebsocketConsumer):
    """A socket whose sending is done by one hub task, started once it knows where to begin."""

    follow_task: asyncio.Task | None = None

    def follow(self, since: int | None) -> None:
        raise NotImplementedError

    async def start_following(self, since: int | None) -> None:
        if self.follow_task is not None:
            self.follow_task.cancel()
        self.follow_task = self.follow(since)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Only a resume message means anything; everything else is ignored, never echoed."""
        is_resume, since = resume_position(text_data)
        if is_resume:
            await self.start_following(since)

    async def disconnect(self, code: int) -> None:
        if self.follow_task is not None:
            self.follow_task.cancel()


class DashboardConsumer(FollowingConsumer):
    """`/ws/dashboard/`: HTML fragments for the htmx ws extension to swap out-of-band.

    The page sends the position it shows as soon as the socket opens, and gets only what it
    missed; a client that says nothing within RESUME_WAIT gets a full refresh.
    """

    async def connect(self) -> None:
        if await refuse_anonymous(self):
            return
        await self.accept()
        loop = asyncio.get_running_loop()
        self._refresh_timer = loop.call_later(RESUME_WAIT, self._refresh_unless_resumed)

    def _refresh_unless_resumed(self) -> None:
        if self.follow_task is None:
            self.follow_task = self.follow(None)

    async def disconnect(self, code: int) -> None:
        timer = getattr(self, "_refresh_timer", None)
        if timer is not None:
            timer.cancel()
        await super().disconnect(code)

    def follow(self, since: int | None) -> asyncio.Task:
        return hub.follow_dashboard(self, since)

    async def send_fragment(self, html: str) -> None:
        await self.send(text_data=html)


class ViolationFeedConsumer(FollowingConsumer):
    """`/ws/violations/`: every change as JSON `{"seq", "table", "op", "id", "data", "at"}`.

    `data` holds the row as committed (null after a DELETE), in the shape the public
    recipe's front end reads (`msg.table`, `msg.data`). Live from the moment of connecting,
    or from `?since=N` / a resume message. `{"type": "resync", "seq": N}` says the log no
    longer holds what was asked for: reload state, then carry on from N.
    """

    async def connect(self) -> None:
        if await refuse_anonymous(self):
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        since_text = (query.get("since") or [""])[0]
        since = int(since_text) if since_text.isdigit() and len(since_text) < 19 else None
        if since is None:
            # "From the moment of connecting": fixed before the handshake completes, so a
            # change committed right after it is delivered even while the stream starts.
            since = hub.stream.head if hub.stream.ready.is_set() else await head_seq()
        await self.accept()
        await self.start_following(since)

    def follow(self, since: int | None) -> asyncio.Task:
        return hub.follow_feed(self, since)

    async def send_event_text(self, text: str) -> None:
        await self.send(text_data=text)
