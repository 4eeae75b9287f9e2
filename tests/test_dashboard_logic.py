"""The dashboard's plain logic: what a batch of events re-renders, the chart, the hub."""

import asyncio
import datetime

from channels.layers import channel_layers, get_channel_layer

from dashboard import chart, fragments
from dashboard.broadcast import DashboardHub
from tests.browser import without_event_loop
from violations.events import EVENTS_GROUP, channel_layer_message

TABLES = ["violation_humandetections", "violation_lotodetections", "violation_ppedetections"]


def event(table: str, op: str = "INSERT", row_id: int = 1) -> dict:
    return {"table": table, "op": op, "id": row_id, "data": None}


def test_only_the_widgets_a_batch_touches_are_re_rendered_in_page_order():
    events = [event(TABLES[2]), event(TABLES[0], "DELETE"), event(TABLES[2], "UPDATE")]
    assert fragments.tables_to_refresh(events, TABLES) == [TABLES[0], TABLES[2]]
    assert fragments.tables_to_refresh([event("auth_user")], TABLES) == []


def test_only_inserts_sound_an_alert_once_per_type():
    events = [event(TABLES[1]), event(TABLES[1]), event(TABLES[0], "UPDATE")]
    assert fragments.inserted_tables(events) == [TABLES[1]]


NOW = datetime.datetime(2026, 11, 21, 12, 30, 45, tzinfo=datetime.UTC)


def minute(minutes_ago: int) -> datetime.datetime:
    return NOW.replace(second=0) - datetime.timedelta(minutes=minutes_ago)


def test_minute_buckets_cover_the_last_hour_oldest_first():
    per_minute = {minute(0): 2, minute(59): 1, minute(60): 5}  # minute(60): outside the hour
    buckets = chart.minute_buckets(per_minute, NOW)
    assert len(buckets) == 60
    assert buckets[0] == (datetime.datetime(2026, 11, 21, 11, 31, tzinfo=datetime.UTC), 1)
    assert buckets[-1] == (datetime.datetime(2026, 11, 21, 12, 30, tzinfo=datetime.UTC), 2)
    assert sum(count for _, count in buckets) == 3


def test_bars_scale_to_the_busiest_minute_and_stay_in_the_box():
    buckets = chart.minute_buckets({minute(0): 2, minute(1): 1}, NOW)
    bars = chart.bars(buckets)
    assert bars[-1].height == chart.HEIGHT - 4
    assert bars[-2].height == (chart.HEIGHT - 4) / 2
    assert all(bar.height == 1.0 for bar in bars[:-2])  # an empty minute is a sliver
    assert all(bar.y >= 0 and bar.y + bar.height <= chart.HEIGHT for bar in bars)
    assert bars[-1].x + bars[-1].width <= chart.WIDTH


class RecordingSocket:
    def __init__(self, arrived: asyncio.Event) -> None:
        self.received: list[str] = []
        self.arrived = arrived

    async def send_fragment(self, html: str) -> None:
        self.received.append(html)
        self.arrived.set()


def run_in_a_fresh_loop(scenario):
    """asyncio.run(scenario()) with a channel layer of its own.

    Channels caches one layer per process, bound to the event loop that first used it;
    Daphne has one loop for its life, but each asyncio.run here is a new one.
    """

    async def with_fresh_layer():
        channel_layers.backends.clear()
        try:
            return await scenario()
        finally:
            await get_channel_layer().flush()
            channel_layers.backends.clear()

    with without_event_loop():  # Playwright's parked loop, if a browser test ran first
        return asyncio.run(with_fresh_layer())


async def until(condition, arrived: asyncio.Event) -> None:
    """Wait (under the caller's deadline) until `condition()` holds after a delivery."""
    while not condition():
        arrived.clear()
        await arrived.wait()


def test_the_hub_renders_once_per_event_for_any_number_of_sockets(monkeypatch):
    """Through the real Redis channel layer; only the renderer is counted, not mocked away."""
    renders: list[list[dict]] = []

    def render_update(events):
        renders.append(events)
        return f"update {len(renders)}"

    monkeypatch.setattr(fragments, "render_update", render_update)
    monkeypatch.setattr(fragments, "render_refresh", lambda: "refresh")

    async def scenario() -> list[RecordingSocket]:
        hub = DashboardHub()
        arrived = asyncio.Event()
        sockets = [RecordingSocket(arrived) for _ in range(5)]
        for socket in sockets:
            hub.join(socket)
        try:
            async with asyncio.timeout(5):
                await until(lambda: all(s.received == ["refresh"] for s in sockets), arrived)
                await hub.subscribed.wait()
                await get_channel_layer().group_send(
                    EVENTS_GROUP, channel_layer_message(event(TABLES[0]))
                )
                await until(lambda: all(len(s.received) == 2 for s in sockets), arrived)
        finally:
            await hub.stop()
        return sockets

    sockets = run_in_a_fresh_loop(scenario)

    assert len(renders) == 1
    assert [s.received for s in sockets] == [["refresh", "update 1"]] * 5


class BrokenSocket:
    async def send_fragment(self, html: str) -> None:
        raise ConnectionError("the client went away")


def test_a_socket_that_cannot_take_a_fragment_is_dropped(monkeypatch, settings):
    # About the hub's sending, not about Redis: Channels' in-process layer is enough, and it
    # keeps this test clear of channels_redis's pub/sub receive(), whose clean-up on
    # cancel hangs in a second event loop of one process (Daphne only ever has one).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    monkeypatch.setattr(fragments, "render_refresh", lambda: "refresh")

    async def scenario() -> tuple[DashboardHub, RecordingSocket]:
        hub = DashboardHub()
        arrived = asyncio.Event()
        good, broken = RecordingSocket(arrived), BrokenSocket()
        hub.join(broken)
        hub.join(good)
        try:
            async with asyncio.timeout(5):
                await until(lambda: good.received == ["refresh"], arrived)
        finally:
            await hub.stop()
        return hub, good

    hub, good = run_in_a_fresh_loop(scenario)

    assert hub.sockets == {good}
