"""What a socket's frames cost the process, beyond what they say (issue 16): an ack is
handled on the event loop, without a thread, through the real consumer machinery."""

import asyncio
import json

import channels.consumer
from channels.testing import WebsocketCommunicator

from dashboard.consumers import FollowingConsumer
from tests.conftest import as_viewer
from tests.in_process import run_in_process


class _OneFrame(FollowingConsumer):
    """A viewer's socket (no hub) sent one frame at position 1."""

    opened: list["_OneFrame"] = []

    async def connect(self) -> None:
        self.opened.append(self)
        await self.accept()
        await self.start_following(None)

    def follow(self, since):
        return asyncio.ensure_future(self.send_frame("x" * 10, 1))


def test_an_ack_is_handled_without_channels_database_thread_hop(monkeypatch):
    hops = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        hops.append(1)
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)

    async def scenario():
        socket = WebsocketCommunicator(as_viewer(_OneFrame.as_asgi()), "/ws/test/")
        await socket.connect()
        assert await socket.receive_output(timeout=2) == {
            "type": "websocket.send",
            "text": "x" * 10,
        }
        hops_at_connect = len(hops)
        await socket.send_to(text_data=json.dumps({"type": "ack", "seq": 1}))
        await socket.send_to(text_data=json.dumps({"type": "ack", "seq": 1}))
        await socket.receive_nothing(timeout=0.2)  # both acks handled by now
        in_flight = _OneFrame.opened[-1].window.in_flight
        await socket.disconnect()
        return hops_at_connect, in_flight

    hops_at_connect, in_flight = run_in_process(scenario)
    assert hops_at_connect == 1  # the connect went through Channels' dispatch, hop and all
    assert len(hops) == 2  # ...and the disconnect; the two acks did not
    assert in_flight == 0  # the acks did reach the window
