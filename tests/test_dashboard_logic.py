"""The dashboard's logic: what a batch of events re-renders, the chart, the hub's fan-out
and catch-up (the hub against a real database and channel layer, the renderer counted)."""

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import connection

from dashboard import chart, rendering
from dashboard.event_stream import EventStream
from dashboard.hub import Hub, Plan, RenderCache, catch_up_plan
from dashboard.listener_watch import ListenerWatch, with_newest_event
from tests.browser import without_event_loop
from violations.contract import EVENTS_GROUP, Event
from violations.event_log import ListenerStatus, head_seq
from violations.events import build_event, channel_layer_messages
from violations.models import ChangeEvent

TABLES = ["violation_humandetections", "violation_lotodetections", "violation_ppedetections"]


def event(table: str, op: str = "INSERT", row_id: int = 1) -> Event:
    return Event(seq=1, table=table, op=op, id=row_id, data=None, at="2026-11-21T12:00:00+00:00")


def test_only_the_widgets_a_batch_touches_are_re_rendered_in_page_order():
    events = [event(TABLES[2]), event(TABLES[0], "DELETE"), event(TABLES[2], "UPDATE")]
    assert rendering.tables_to_refresh(events, TABLES) == [TABLES[0], TABLES[2]]
    assert rendering.tables_to_refresh([event("auth_user")], TABLES) == []


def test_an_update_shows_its_newest_event_as_the_listeners_last_one_until_the_poll_catches_up():
    polled = datetime.datetime(2026, 11, 21, 11, 0, tzinfo=datetime.UTC)
    status = ListenerStatus(active=True, head=1, last_event_at=polled)
    newer = with_newest_event(status, [event(TABLES[0])])
    assert newer.last_event_at == datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)
    assert with_newest_event(newer, [event(TABLES[0])]) is newer
    assert with_newest_event(status, []) is status
    assert with_newest_event(None, [event(TABLES[0])]) is None


def test_the_listener_watch_counts_a_version_only_when_the_listener_goes_active_or_inactive():
    watch = ListenerWatch()
    readings = [(True, 1), (True, 2), (False, 2), (False, 3), (True, 3)]
    flips = [watch.record(ListenerStatus(active, head, None)) for active, head in readings]
    assert flips == [True, False, True, False, True]
    assert watch.version == 3
    assert watch.status == ListenerStatus(True, 3, None)


def test_only_inserts_sound_an_alert_once_per_type():
    events = [event(TABLES[1]), event(TABLES[1]), event(TABLES[0], "UPDATE")]
    assert rendering.inserted_tables(events) == [TABLES[1]]


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


def test_catch_up_plans():
    assert catch_up_plan(None, 10) is Plan.REFRESH  # the page says nothing
    assert catch_up_plan(10, 10) is Plan.STATUS  # nothing missed
    assert catch_up_plan(7, 10) is Plan.UPDATE  # three missed
    assert catch_up_plan(11, 10) is Plan.REFRESH  # from another log
    assert catch_up_plan(0, 5000, limit=1000) is Plan.REFRESH  # too far behind


def test_the_render_cache_renders_a_key_once_for_every_asker_and_retries_failures():
    calls = []

    def render() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return "html"

    async def scenario():
        cache = RenderCache()
        with pytest.raises(RuntimeError):
            await cache.get(("k",), render)
        return await asyncio.gather(*(cache.get(("k",), render) for _ in range(10)))

    with without_event_loop():
        assert asyncio.run(scenario()) == ["html"] * 10
    assert len(calls) == 2


class RecordingSocket:
    def __init__(self, arrived: asyncio.Event) -> None:
        self.received: list[str] = []
        self.arrived = arrived

    async def send_fragment(self, html: str, position: int | None = None) -> None:
        self.received.append(html)
        self.arrived.set()

    async def send_event_text(self, text: str, position: int | None = None) -> None:
        self.received.append(text)
        self.arrived.set()


class StalledSocket:
    """A client that never takes anything: its send never returns."""

    async def send_fragment(self, html: str, position: int | None = None) -> None:
        await asyncio.Event().wait()


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


def logged_event(seq: int, table: str = TABLES[0]) -> dict:
    """An event as the listener publishes it, also written to the log as it would be."""
    at = datetime.datetime.now(tz=datetime.UTC)
    ChangeEvent.objects.create(
        table_name=table, op="INSERT", row_id=seq, data={"id": seq}, seq=seq, created_at=at
    )
    with connection.cursor() as cursor:  # and the head moves, as numbering moves it
        cursor.execute("UPDATE violation_events_head SET seq = GREATEST(seq, %s)", [seq])
    return build_event(
        seq=seq, table=table, op="INSERT", row_id=seq, data={"id": seq}, created_at=at
    )


log_event = database_sync_to_async(logged_event)
current_head = database_sync_to_async(head_seq)


@asynccontextmanager
async def running_hub(
    *, poll_interval: float, dashboard_tick: float = 0.1, **options: float
) -> AsyncIterator[tuple[Hub, list[asyncio.Task]]]:
    """A started hub, under a 10 s deadline; the follower tasks a scenario adds to the list
    are cancelled and the hub stopped afterwards, however the scenario ends. Heartbeats
    only where a test asks for them (`heartbeat=`)."""
    options.setdefault("heartbeat", 3600)
    watch = ListenerWatch(interval=poll_interval)
    hub = Hub(EventStream(), listener=watch, dashboard_tick=dashboard_tick, **options)
    hub.start()
    followers: list[asyncio.Task] = []
    try:
        async with asyncio.timeout(10):
            yield hub, followers
    finally:
        for task in followers:
            task.cancel()
        await hub.stop()


@pytest.fixture
def in_memory_layer(settings):
    # About the hub, not about Redis: Channels' in-process layer is enough, and it keeps
    # these tests clear of channels_redis's pub/sub receive(), whose clean-up on cancel
    # hangs in a second event loop of one process (Daphne only ever has one).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.mark.django_db(transaction=True)
def test_sockets_in_step_share_one_render_and_a_stalled_one_delays_nobody(monkeypatch):
    """Through the real Redis channel layer; only the renderer is counted, not mocked away."""
    renders: list[list[Event]] = []

    def render_update(events, position, listener, every_widget):
        renders.append(events)
        return f"update to {position}"

    monkeypatch.setattr(rendering, "render_update", render_update)
    monkeypatch.setattr(rendering, "render_refresh", lambda position, listener: "refresh")

    async def scenario() -> list[RecordingSocket]:
        arrived = asyncio.Event()
        sockets = [RecordingSocket(arrived) for _ in range(5)]
        async with running_hub(poll_interval=0.2) as (hub, followers):
            await hub.stream.subscribed.wait()
            await hub.listener.known.wait()
            followers.append(hub.follow_dashboard(StalledSocket(), None))
            followers.extend(hub.follow_dashboard(socket, None) for socket in sockets)
            await until(lambda: all(s.received == ["refresh"] for s in sockets), arrived)
            base = await current_head()  # seq never goes back, even across tests
            events = [await log_event(base + n) for n in (1, 2)]
            for message in channel_layer_messages(events):
                await get_channel_layer().group_send(EVENTS_GROUP, message)
            await until(lambda: all(len(s.received) == 2 for s in sockets), arrived)
        return sockets

    sockets = run_in_a_fresh_loop(scenario)

    assert [len(batch) for batch in renders] == [2]
    assert {s.received[1] for s in sockets} == {f"update to {renders[0][-1].seq}"}
    assert [s.received[0] for s in sockets] == ["refresh"] * 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
def test_events_lost_on_the_way_are_read_from_the_log_in_order():
    async def scenario() -> tuple[RecordingSocket, int]:
        arrived = asyncio.Event()
        feed = RecordingSocket(arrived)
        # A long poll: only the jump in seq can reveal the loss.
        async with running_hub(poll_interval=60) as (hub, followers):
            await hub.stream.subscribed.wait()
            await hub.stream.ready.wait()
            base = hub.stream.head
            followers.append(hub.follow_feed(feed, base))
            for n in (1, 2):
                await log_event(base + n)  # in the log, lost on the way
            arrived_event = await log_event(base + 3)
            for message in channel_layer_messages([arrived_event]):
                await get_channel_layer().group_send(EVENTS_GROUP, message)
            await until(lambda: len(feed.received) == 3, arrived)
        return feed, base

    feed, base = run_in_a_fresh_loop(scenario)
    assert [json.loads(text)["seq"] for text in feed.received] == [base + 1, base + 2, base + 3]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
def test_a_loss_at_the_end_of_a_burst_is_noticed_by_the_poll():
    async def scenario() -> tuple[RecordingSocket, int]:
        arrived = asyncio.Event()
        feed = RecordingSocket(arrived)
        async with running_hub(poll_interval=0.2) as (hub, followers):
            await hub.stream.ready.wait()
            base = hub.stream.head
            followers.append(hub.follow_feed(feed, base))
            for n in (1, 2, 3):
                await log_event(base + n)  # in the log, never published
            await until(lambda: len(feed.received) == 3, arrived)
        return feed, base

    feed, base = run_in_a_fresh_loop(scenario)
    assert [json.loads(text)["seq"] for text in feed.received] == [base + 1, base + 2, base + 3]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
def test_a_feed_resuming_from_before_the_pruned_log_is_told_to_resync():
    async def scenario() -> tuple[RecordingSocket, int]:
        base = await current_head()
        for n in (5, 6):  # 1..4 pruned
            await log_event(base + n)
        arrived = asyncio.Event()
        feed = RecordingSocket(arrived)
        async with running_hub(poll_interval=60) as (hub, followers):
            await hub.stream.ready.wait()
            followers.append(hub.follow_feed(feed, base + 2))
            await until(lambda: len(feed.received) == 1, arrived)
            await log_event(base + 7)
            for message in channel_layer_messages([await log_event(base + 8)]):
                await get_channel_layer().group_send(EVENTS_GROUP, message)
            await until(lambda: len(feed.received) == 3, arrived)
        return feed, base

    feed, base = run_in_a_fresh_loop(scenario)
    received = [json.loads(text) for text in feed.received]
    assert received[0] == {"type": "resync", "seq": base + 6}
    assert [e["seq"] for e in received[1:]] == [base + 7, base + 8]


class TimedSocket(RecordingSocket):
    def __init__(self, arrived: asyncio.Event) -> None:
        super().__init__(arrived)
        self.times: list[float] = []

    async def send_fragment(self, html: str, position: int | None = None) -> None:
        self.times.append(asyncio.get_running_loop().time())
        await super().send_fragment(html, position)


async def publish(event: dict) -> None:
    for message in channel_layer_messages([event]):
        await get_channel_layer().group_send(EVENTS_GROUP, message)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
def test_a_burst_reaches_a_dashboard_merged_into_one_frame_per_tick_a_lone_event_at_once(
    monkeypatch,
):
    monkeypatch.setattr(rendering, "render_update", lambda events, head, status, **_: f"to {head}")
    # A resumed page's first frame re-renders what the clock decides (its age is unknown).
    monkeypatch.setattr(rendering, "render_clock", lambda head, status, **_: "status")

    async def scenario() -> tuple[TimedSocket, float]:
        loop = asyncio.get_running_loop()
        screen = TimedSocket(asyncio.Event())
        async with running_hub(poll_interval=60, dashboard_tick=1.0) as (hub, followers):
            await hub.stream.ready.wait()
            await hub.listener.known.wait()
            base = hub.stream.head
            followers.append(hub.follow_dashboard(screen, base))  # a page that is up to date
            await until(lambda: screen.received == ["status"], screen.arrived)
            # A quiet spell: the tick of that first frame is over.
            await asyncio.sleep(screen.times[0] // 1.0 + 1.0 - loop.time())
            await publish(await log_event(base + 1))
            published = loop.time()
            await until(lambda: screen.received[-1] == f"to {base + 1}", screen.arrived)
            lone_delay = screen.times[-1] - published
            del screen.received[0], screen.times[0]
            for n in range(2, 22):  # one row at a time, as twenty cameras would
                await publish(await log_event(base + n))
            await until(lambda: screen.received[-1] == f"to {base + 21}", screen.arrived)
        return screen, lone_delay

    screen, lone_delay = run_in_a_fresh_loop(scenario)
    assert lone_delay < 0.5  # not held back to a tick boundary after a quiet spell
    # Twenty events within a tick or two of the first: at most two more frames, the last
    # holding everything (counts are absolute), never one frame per event.
    assert 2 <= len(screen.received) <= 3, screen.received
    gaps = [later - earlier for earlier, later in zip(screen.times, screen.times[1:], strict=False)]
    assert min(gaps) >= 0.5, gaps
