"""Fan-out: every socket follows the process's event stream at its own pace.

Each socket has one small task that waits for the stream to move past the last position
it sent, then sends what covers the difference: for a dashboard, one fragment rendered
for that range (shared through a cache, so sockets in step cost one render between them,
and a socket that fell behind gets one merged update: counts are absolute and the feed
shows the newest rows); for the JSON feed, each missed event. A slow socket only delays
itself, and it never holds more than one pending range, whatever the event rate.

Two timers per process, not per socket, wake the same tasks: the clock (what "Today" and
the last-hour chart show moves without any event: dashboards are sent one shared render
when it does) and the heartbeat (a socket sent nothing for a while is sent its position
and the server's time, so a client can tell a quiet stream from a dead one). So does the
listener watch, when the listener goes active or inactive.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from dashboard import clock, rendering
from dashboard.clock import ClockChange, ClockReading, clock_change, read_clock
from dashboard.event_stream import EventStream
from dashboard.heartbeat import heartbeat_due, heartbeat_message, tick_seconds
from dashboard.listener_watch import ListenerWatch, with_newest_event
from violations import event_log
from violations.contract import resync_frame
from violations.event_log import ListenerStatus

logger = logging.getLogger(__name__)

# A dashboard that missed more events than this gets a full refresh instead of an update.
RESUME_LIMIT = 1000
# A dashboard gets at most one frame per tick of this many seconds; what arrives meanwhile
# merges into the next (counts are absolute, the feed shows the newest rows). A burst then
# costs a wall screen ten swaps and sounds a second, not one per row, and the server one
# render per tick. Ticks are on one clock for every socket, so sockets in step still wake
# together and share one render. An event after a quiet spell goes out at once.
DASHBOARD_TICK = 0.1
# A feed client catching up is sent the log a page of this many events at a time, each
# page read only once the client has taken the last (dashboard.flow_control): what a
# stalled client costs is a page, not its whole backlog.
FEED_PAGE = 200
# A feed client resuming further back than this is sent `resync` instead of a replay.
FEED_RESUME_LIMIT = 10_000
# The clock task wakes at each minute boundary, and at least this often (seconds), so a
# wall-clock step (NTP, a resumed VM) reaches the screen within it.
CLOCK_CHECK = 1.0


# `position`: the stream position the client is at once it has the frame (what it will
# acknowledge), or None for a heartbeat (dashboard.flow_control does not count those).
class FragmentSocket(Protocol):
    async def send_fragment(self, html: str, position: int | None) -> None: ...


class EventSocket(Protocol):
    async def send_event_text(self, text: str, position: int | None) -> None: ...


class Plan(Enum):
    REFRESH = "refresh"  # every part, from scratch
    UPDATE = "update"  # the parts the missed events touched
    CLOCK = "clock"  # the chart's minute moved (and every widget's "Today", on a new day)
    STATUS = "status"  # nothing missed: only the listener's health and position


def catch_up_plan(position: int | None, head: int, *, limit: int = RESUME_LIMIT) -> Plan:
    """What a dashboard at `position` needs to reach `head`.

    None means the page says nothing about what it holds; a position beyond the head is
    from another database (or a log that was reset): both get a refresh, as does a page
    so far behind that an update would cost more than a refresh.
    """
    if position is None or position > head or head - position > limit:
        return Plan.REFRESH
    if position == head:
        return Plan.STATUS
    return Plan.UPDATE


def dashboard_plan(
    position: int | None, head: int, *, status_changed: bool, moved: ClockChange
) -> Plan | None:
    """What a dashboard at `position` is sent next; None: nothing (a heartbeat, if due).

    Events first (an update re-renders the chart too); with none missed, what the clock
    moved, else the listener's health if it changed.
    """
    plan = catch_up_plan(position, head)
    if plan is not Plan.STATUS:
        return plan
    if moved:
        return Plan.CLOCK
    return Plan.STATUS if status_changed else None


def resync_message(head: int) -> str:
    """Told to a feed client whose `since` the log cannot serve (pruned, or not ours)."""
    return resync_frame(head)


class RenderCache:
    """Rendered fragments by key, so sockets asking for the same range share one render."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._renders: OrderedDict[tuple, asyncio.Future[str]] = OrderedDict()

    async def get(self, key: tuple, render: Callable[[], str]) -> str:
        future = self._renders.get(key)
        if future is None:
            future = asyncio.ensure_future(database_sync_to_async(render)())
            self._renders[key] = future
            while len(self._renders) > self.size:
                self._renders.popitem(last=False)
        try:
            return await asyncio.shield(future)
        except Exception:
            if self._renders.get(key) is future:
                del self._renders[key]  # the next asker renders again
            raise


class Hub:
    """The process's event stream, listener watch, clock and heartbeat, and the sockets
    following them."""

    def __init__(
        self,
        stream: EventStream | None = None,
        *,
        listener: ListenerWatch | None = None,
        dashboard_tick: float = DASHBOARD_TICK,
        heartbeat: float | None = None,
        clock_check: float = CLOCK_CHECK,
    ) -> None:
        self.stream = stream or EventStream()
        self.listener = listener or ListenerWatch()
        self.renders = RenderCache()
        self.dashboard_tick = dashboard_tick
        self.heartbeat = settings.DASHBOARD_HEARTBEAT_SECONDS if heartbeat is None else heartbeat
        self.clock_check = clock_check
        self.tick = 0  # heartbeat ticks so far
        self.reading: ClockReading | None = None  # what the clock shows, once started
        self._timers: list[asyncio.Task] = []
        # This tick's heartbeats by (kind, position), and the server time they carry.
        self._pulse_tick = -1
        self._pulses: dict[tuple[str, int], str] = {}
        self._pulse_at = clock.now()

    def follow_dashboard(self, socket: FragmentSocket, since: int | None) -> asyncio.Task:
        self.start()
        return asyncio.create_task(self._follow_dashboard(socket, since))

    def follow_feed(self, socket: EventSocket, since: int) -> asyncio.Task:
        self.start()
        return asyncio.create_task(self._follow_feed(socket, since))

    async def stop(self) -> None:
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers = []
        await self.listener.stop()
        await self.stream.stop()

    def start(self) -> None:
        """Start (or restart after a crash) the stream, the listener watch and the timers;
        idempotent."""
        self.stream.start()
        self.listener.start(self._listener_read)
        if self._timers and not any(task.done() for task in self._timers):
            return
        for task in self._timers:
            task.cancel()
        self.reading = read_clock(clock.now())
        self._timers = [
            asyncio.create_task(self._beat(), name="hub-heartbeat"),
            asyncio.create_task(self._keep_time(), name="hub-clock"),
        ]

    # --- the two timers ------------------------------------------------------------------
    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(tick_seconds(self.heartbeat))
            self.tick += 1
            self.stream.wake()

    async def _keep_time(self) -> None:
        while True:
            await asyncio.sleep(min(clock.seconds_to_next_minute(clock.now()), self.clock_check))
            reading = read_clock(clock.now())
            if clock_change(self.reading, reading):  # else nothing on screen would change
                self.reading = reading
                self.stream.wake()

    def _listener_read(self, status: ListenerStatus, flipped: bool) -> None:
        self.stream.log_head_seen(status.head)
        if flipped:
            self.stream.wake()

    def _pulse(self, kind: str, position: int, tick: int) -> str:
        """The heartbeat for `kind` of socket at `position`: made once per tick and position."""
        if tick != self._pulse_tick:
            self._pulse_tick, self._pulses, self._pulse_at = tick, {}, clock.now()
        text = self._pulses.get((kind, position))
        if text is None:
            if kind == "dashboard":
                text = rendering.render_heartbeat(position, self._pulse_at)
            else:
                text = heartbeat_message(position, self._pulse_at)
            self._pulses[(kind, position)] = text
        return text

    # --- followers -----------------------------------------------------------------------
    async def _follow_dashboard(self, socket: FragmentSocket, since: int | None) -> None:
        stream = self.stream
        loop = asyncio.get_running_loop()
        await stream.ready.wait()
        # None: what the page's clock-dependent parts show is unknown (a resumed page may
        # have been rendered before midnight), so its first frame re-renders them.
        position, seen_status, seen_reading = since, -1, None
        sent_tick = self.tick
        next_tick = 0.0  # when this socket may be sent its next frame
        while True:
            if position is not None:
                while not (
                    stream.head > position
                    or self.listener.version != seen_status
                    or self.reading != seen_reading
                    or heartbeat_due(sent_tick, self.tick)
                ):
                    await stream.next_change()
                if loop.time() < next_tick:
                    await asyncio.sleep(next_tick - loop.time())
            head, version, status = stream.head, self.listener.version, self.listener.status
            reading, tick = self.reading, self.tick
            moved = clock_change(seen_reading, reading)
            plan = dashboard_plan(
                position, head, status_changed=version != seen_status, moved=moved
            )
            if plan is None:  # only the heartbeat is due
                await socket.send_fragment(self._pulse("dashboard", position, tick), None)
                sent_tick = tick
                continue
            events = None
            if plan is Plan.UPDATE:
                events = await stream.events_between(position, head)
                if events is None:
                    plan = Plan.REFRESH
            # Every render that shows the chart or "Today" is keyed by the clock's reading.
            if plan is Plan.REFRESH:
                key = (plan, head, version, reading)
                render = partial(rendering.render_refresh, head, status)
            elif plan is Plan.UPDATE:
                key = (plan, position, head, version, reading, moved.today)
                missed = [e for e, _ in events]
                render = partial(
                    rendering.render_update,
                    missed,
                    head,
                    with_newest_event(status, missed),
                    every_widget=moved.today,
                )
            elif plan is Plan.CLOCK:
                key = (plan, head, version, reading, moved.today)
                render = partial(rendering.render_clock, head, status, every_widget=moved.today)
            else:
                key, render = (plan, head, version), partial(rendering.render_status, head, status)
            try:
                html = await self.renders.get(key, render)
            except Exception:
                # Nothing is skipped: the same range is tried again (the database may be
                # restarting), merged with whatever arrives meanwhile.
                logger.exception("dashboard render failed; retrying")
                await asyncio.sleep(1)
                continue
            await socket.send_fragment(html, head)
            position, seen_status, seen_reading, sent_tick = head, version, reading, self.tick
            next_tick = (loop.time() // self.dashboard_tick + 1) * self.dashboard_tick

    async def _follow_feed(self, socket: EventSocket, since: int) -> None:
        """Send every event after `since`, and a heartbeat when quiet.

        A `since` beyond the log's head is from another log: resync. One the stream has not
        reached yet is waited for, not refused: this process may be a moment behind the log
        (it polls it every second), and a live client must not be told to resync for that.
        One more than FEED_RESUME_LIMIT behind is told to resync too; a catch-up goes out a
        FEED_PAGE at a time, each event as the socket's window allows (flow_control).
        """
        stream = self.stream
        await stream.ready.wait()
        position = since
        sent_tick = self.tick
        # The stream never runs ahead of the log: only a `since` beyond it needs the log's head.
        if position > stream.head:
            log_head = await database_sync_to_async(event_log.head_seq)()
            if position > log_head:
                await socket.send_event_text(resync_message(log_head), log_head)
                position = log_head
        if stream.head - position > FEED_RESUME_LIMIT:
            # Replaying that much would hold the log's pages for a client that may never
            # read them: it reloads its state instead, as after a pruned log.
            position = stream.head
            await socket.send_event_text(resync_message(position), position)
        while True:
            while stream.head <= position and not heartbeat_due(sent_tick, self.tick):
                await stream.next_change()
            if stream.head <= position:
                tick = self.tick
                await socket.send_event_text(self._pulse("feed", position, tick), None)
                sent_tick = tick
                continue
            upto = min(stream.head, position + FEED_PAGE)
            events = await stream.events_between(position, upto)
            if events is None:
                await socket.send_event_text(resync_message(stream.head), stream.head)
                position, sent_tick = stream.head, self.tick
                continue
            for event, text in events:  # each waits for the window: paced by the client
                await socket.send_event_text(text, event.seq)
            position, sent_tick = upto, self.tick


hub = Hub()
