"""The per-socket window: its logic in plain asyncio, then through a real Daphne."""

import asyncio
import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

from dashboard.consumers import FollowingConsumer
from dashboard.flow_control import WINDOW_BYTES, AckTimeout, Window
from tests.browser import without_event_loop
from tests.conftest import as_viewer, receive_json
from violations.contract import CloseCode

PSQL_INSERT = (
    "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
    "violation_image) VALUES (2, current_date, '15:00:00', '/media/x.jpg') RETURNING id;"
)


def run_without_playwrights_loop(scenario) -> None:
    """asyncio.run(scenario()), also after a browser test left Playwright's loop marked."""
    with without_event_loop():
        asyncio.run(scenario())


def test_a_window_has_room_until_its_limit_is_in_flight():
    window = Window(limit=100)
    window.sent(1, 60)
    assert window.has_room()
    window.sent(2, 60)  # one frame may take it over the limit
    assert not window.has_room()
    assert window.in_flight == 120


def test_an_ack_releases_every_frame_up_to_its_position():
    window = Window(limit=100)
    for position in (1, 2, 2, 3):
        window.sent(position, 40)
    window.acknowledged(2)
    assert window.in_flight == 40
    window.acknowledged(1)  # an old ack releases nothing more
    assert window.in_flight == 40
    window.acknowledged(3)
    assert window.in_flight == 0


def test_a_full_window_waits_for_an_ack():
    async def scenario():
        window = Window(limit=10, timeout=5)
        window.sent(1, 10)
        waiting = asyncio.ensure_future(window.wait_for_room())
        await asyncio.sleep(0)
        assert not waiting.done()
        window.acknowledged(1)
        await asyncio.wait_for(waiting, 1)

    run_without_playwrights_loop(scenario)


def test_a_resume_empties_the_window():
    async def scenario():
        window = Window(limit=10, timeout=5)
        window.sent(7, 50)
        waiting = asyncio.ensure_future(window.wait_for_room())
        await asyncio.sleep(0)
        window.reset()
        await asyncio.wait_for(waiting, 1)
        assert window.in_flight == 0

    run_without_playwrights_loop(scenario)


def test_a_window_that_stays_full_times_out():
    async def scenario():
        window = Window(limit=10, timeout=0.05)
        window.sent(1, 10)
        await window.wait_for_room()

    with pytest.raises(AckTimeout, match="10 bytes unacknowledged"):
        run_without_playwrights_loop(scenario)


# --- Through a real server ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_acks_are_not_rate_limited_and_the_feed_carries_on(open_feed, psql):
    feed = open_feed()
    for seq in range(200):  # far past the allowance for other messages (10, then 1/s)
        feed.send(json.dumps({"type": "ack", "seq": seq}))

    row_id = int(psql(PSQL_INSERT))

    assert receive_json(feed, timeout=5)["id"] == row_id


def events_until_quiet(feed, *, quiet: float) -> tuple[list[dict], int]:
    """The events `feed` receives until nothing but heartbeats comes for `quiet` seconds,
    and their size in bytes."""
    received, size = [], 0
    while True:
        try:
            text = feed.recv(timeout=quiet)
        except TimeoutError:
            return received, size
        message = json.loads(text)
        if message.get("type") != "heartbeat":
            received.append(message)
            size += len(text.encode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_client_that_acknowledges_nothing_is_paused_at_its_window(open_feed, psql):
    """Rows of 2 kB past a client that reads but never acks: it gets about a window's worth,
    then nothing more until it acks; then the rest, in order."""
    feed = open_feed()
    rows = 600  # about 1.3 MB of events: more than twice the window
    psql(
        "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
        f"violation_image) SELECT 1, current_date, localtime(0), lpad(n::text, 2000, 'x') "
        f"FROM generate_series(1, {rows}) AS n"
    )
    received, size = events_until_quiet(feed, quiet=3)  # the server stops at the window
    assert WINDOW_BYTES <= size < WINDOW_BYTES + 8 * 1024
    assert len(received) < rows

    feed.send(json.dumps({"type": "ack", "seq": received[-1]["seq"]}))
    while len(received) < rows:
        message = receive_json(feed, timeout=5)
        received.append(message)
        feed.send(json.dumps({"type": "ack", "seq": message["seq"]}))
    seqs = [m["seq"] for m in received]
    assert seqs == list(range(seqs[0], seqs[0] + rows))


class _NeverAcked(FollowingConsumer):
    """A socket (no login, no hub) sending two frames through a tiny window nobody acks."""

    async def connect(self) -> None:
        await self.accept()
        self.window = Window(limit=10, timeout=0.2)
        await self.start_following(None)

    def follow(self, since):
        async def send_two() -> None:
            await self.send_frame("x" * 10, 1)
            await self.send_frame("y" * 10, 2)

        return asyncio.ensure_future(send_two())


def test_a_window_full_too_long_closes_the_socket_with_4408_and_a_warning(caplog):
    async def scenario():
        socket = WebsocketCommunicator(as_viewer(_NeverAcked.as_asgi()), "/ws/test/")
        await socket.connect()
        first = await socket.receive_output(timeout=2)
        closed = await socket.receive_output(timeout=2)
        await socket.disconnect()
        return first, closed

    with caplog.at_level(logging.WARNING, logger="dashboard.consumers"), without_event_loop():
        first, closed = asyncio.run(scenario())
    assert first == {"type": "websocket.send", "text": "x" * 10}
    assert closed == {"type": "websocket.close", "code": CloseCode.TOO_SLOW}
    assert "10 bytes unacknowledged" in caplog.text
