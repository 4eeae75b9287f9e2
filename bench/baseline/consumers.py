"""The recipe's consumer: every socket in one group, `json.dumps` and a send per event."""

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "violations"


class ViolationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def violation_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["message"]))
