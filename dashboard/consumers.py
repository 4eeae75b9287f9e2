"""WebSocket consumers: they subscribe to the listener's events and pass them on."""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from violations.events import EVENTS_GROUP

# Application close code for "log in first" (4000-4999 are the application's to define;
# 4401 echoes HTTP 401 so it reads at a glance in a browser's console).
CLOSE_UNAUTHENTICATED = 4401


class ViolationFeedConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/violations/`: every change as JSON `{"table", "op", "id", "data"}`.

    The programmatic feed: `data` holds the row's fields (null after a DELETE), in the
    shape the public recipe's front end reads (`msg.table`, `msg.data`).
    """

    groups: list[str] = []  # joined in connect(), after the login check

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first so the client sees our close code rather than a bare HTTP 403.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(EVENTS_GROUP, self.channel_name)
        self.groups = [EVENTS_GROUP]  # so disconnect() leaves it
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The feed is one-way: whatever a client sends is ignored, never echoed."""

    async def violation_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
