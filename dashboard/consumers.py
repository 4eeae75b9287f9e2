"""WebSocket consumers: they subscribe to the listener's events and pass them on."""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from dashboard.broadcast import hub
from violations.events import EVENTS_GROUP

# Application close code for "log in first" (4000-4999 are the application's to define;
# 4401 echoes HTTP 401 so it reads at a glance in a browser's console).
CLOSE_UNAUTHENTICATED = 4401


async def refuse_anonymous(consumer: AsyncWebsocketConsumer) -> bool:
    """Close the socket of a visitor who is not logged in; True if it was closed."""
    user = consumer.scope.get("user")
    if user is not None and user.is_authenticated:
        return False
    # Accept first so the client sees our close code rather than a bare HTTP 403.
    await consumer.accept()
    await consumer.close(code=CLOSE_UNAUTHENTICATED)
    return True


class DashboardConsumer(AsyncWebsocketConsumer):
    """`/ws/dashboard/`: HTML fragments for the htmx ws extension to swap out-of-band.

    A full refresh on every (re)connect, then only the parts each change touches. The
    fragments come from the process's hub, rendered once for all sockets.
    """

    async def connect(self) -> None:
        if await refuse_anonymous(self):
            return
        await self.accept()
        hub.join(self)

    async def disconnect(self, code: int) -> None:
        hub.leave(self)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Nothing the page sends is needed yet: ignored, never echoed."""

    async def send_fragment(self, html: str) -> None:
        await self.send(text_data=html)


class ViolationFeedConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/violations/`: every change as JSON `{"table", "op", "id", "data"}`.

    The programmatic feed: `data` holds the row's fields (null after a DELETE), in the
    shape the public recipe's front end reads (`msg.table`, `msg.data`).
    """

    groups: list[str] = []  # joined in connect(), after the login check

    async def connect(self) -> None:
        if await refuse_anonymous(self):
            return
        await self.channel_layer.group_add(EVENTS_GROUP, self.channel_name)
        self.groups = [EVENTS_GROUP]  # so disconnect() leaves it
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The feed is one-way: whatever a client sends is ignored, never echoed."""

    async def violation_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
