"""Fan-out: every socket follows the process's event stream at its own pace.

Each socket has one small task that waits for the stream to move past the last position
it sent, then sends what covers the difference: for a dashboard, one fragment rendered
for that range (shared through a cache, so sockets in step cost one render between them,
and a socket that fell behind gets one merged update: counts are absolute and the feed
shows the newest rows); for the JSON feed, each missed event. A slow socket only delays
itself, and it never holds more than one pending range, whatever the event rate.

Hand-written because this per-process fan-out and resume is the project's own idea.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Protocol

from channels.db import database_sync_to_async

from dashboard import fragments
from dashboard.stream import LOG_PAGE, EventStream
from violations import event_log
from violations.events import encode_event

logger = logging.getLogger(__name__)

# A dashboard that missed more events than this gets a full refresh instead of an update.
RESUME_LIMIT = 1000
# A dashboard gets at most one frame per tick of this many seconds; what arrives meanwhile
# merges into the next (counts are absolute, the feed shows the newest rows). A burst then
# costs a wall screen ten swaps and sounds a second, not one per row, and the server one
# render per tick. Ticks are on one clock for every socket, so sockets in step still wake
# together and share one render. An event after a quiet spell goes out at once.
DASHBOARD_TICK = 0.1


class FragmentSocket(Protocol):
    async def send_fragment(self, html: str) -> None: ...


class EventSocket(Protocol):
    async def send_event_text(self, text: str) -> None: ...


class Plan(Enum):
    REFRESH = "refresh"  # every part, from scratch
    UPDATE = "update"  # the parts the missed events touched
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


def resync_message(head: int) -> str:
    """Told to a feed client whose `since` the log cannot serve (pruned, or not ours)."""
    return encode_event({"type": "resync", "seq": head})


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
    """The process's event stream and the sockets following it."""

    def __init__(
        self, stream: EventStream | None = None, *, dashboard_tick: float = DASHBOARD_TICK
    ) -> None:
        self.stream = stream or EventStream()
        self.renders = RenderCache()
        self.dashboard_tick = dashboard_tick

    def follow_dashboard(self, socket: FragmentSocket, since: int | None) -> asyncio.Task:
        self.stream.start()
        return asyncio.create_task(self._follow_dashboard(socket, since))

    def follow_feed(self, socket: EventSocket, since: int | None) -> asyncio.Task:
        self.stream.start()
        return asyncio.create_task(self._follow_feed(socket, since))

    async def stop(self) -> None:
        await self.stream.stop()

    async def _follow_dashboard(self, socket: FragmentSocket, since: int | None) -> None:
        stream = self.stream
        loop = asyncio.get_running_loop()
        await stream.ready.wait()
        position, seen_status = since, -1
        next_tick = 0.0  # when this socket may be sent its next frame
        while True:
            if position is not None:
                await stream.wait_for_change(position, seen_status)
                if loop.time() < next_tick:
                    await asyncio.sleep(next_tick - loop.time())
            head, version, status = stream.head, stream.status_version, stream.status
            plan = catch_up_plan(position, head)
            events = None
            if plan is Plan.UPDATE:
                events = await stream.events_between(position, head)
                if events is None:
                    plan = Plan.REFRESH
            if plan is Plan.REFRESH:
                key, render = (plan, head, version), partial(fragments.render_refresh, head, status)
            elif plan is Plan.UPDATE:
                key = (plan, position, head, version)
                render = partial(fragments.render_update, [e for e, _ in events], head, status)
            else:
                key, render = (plan, head, version), partial(fragments.render_status, head, status)
            try:
                html = await self.renders.get(key, render)
            except Exception:
                # Nothing is skipped: the same range is tried again (the database may be
                # restarting), merged with whatever arrives meanwhile.
                logger.exception("dashboard render failed; retrying")
                await asyncio.sleep(1)
                continue
            await socket.send_fragment(html)
            position, seen_status = head, version
            next_tick = (loop.time() // self.dashboard_tick + 1) * self.dashboard_tick

    async def _follow_feed(self, socket: EventSocket, since: int | None) -> None:
        """Send every event after `since` (None: from now).

        A `since` beyond the log's head is from another log: resync. One the stream has not
        reached yet is waited for, not refused: this process may be a moment behind the log
        (it polls it every second), and a live client must not be told to resync for that.
        """
        stream = self.stream
        await stream.ready.wait()
        position = since
        # The stream never runs ahead of the log, so only a `since` beyond the stream
        # needs the log's head (one query per connect saved on the common path).
        if position is None or position > stream.head:
            log_head = await database_sync_to_async(event_log.head_seq)()
            position = log_head if since is None else since
            if position > log_head:
                await socket.send_event_text(resync_message(log_head))
                position = log_head
        while True:
            if stream.head <= position:
                await stream.wait_for_change(position, stream.status_version)
            upto = min(stream.head, position + LOG_PAGE)
            if upto <= position:
                continue
            events = await stream.events_between(position, upto)
            if events is None:
                await socket.send_event_text(resync_message(stream.head))
                position = stream.head
                continue
            for _, text in events:
                await socket.send_event_text(text)
            position = upto


hub = Hub()
