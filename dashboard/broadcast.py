"""One hub per web process: each event is received once, rendered once, sent to every socket.

Channels' usual pattern joins every consumer to the group and renders in each one: N
renders per event for N screens. Here the hub alone subscribes, renders the fragment once
and writes it to the dashboard sockets of this process. Hand-written because that per-
process fan-out is this project's own idea; the channel layer still carries events
between processes.

Work is serialised: a socket that joins is sent a full refresh rendered after any update
already in progress, so it never receives an older state after a newer one.
"""

import asyncio
import logging
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from dashboard import fragments
from violations.events import EVENTS_GROUP

logger = logging.getLogger(__name__)


class FragmentSocket(Protocol):
    async def send_fragment(self, html: str) -> None: ...


class DashboardHub:
    def __init__(self) -> None:
        self.sockets: set[FragmentSocket] = set()
        self._joining: list[FragmentSocket] = []
        self._events: list[dict[str, Any]] = []
        self._work = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.subscribed = asyncio.Event()  # set while the hub is in the events group

    def join(self, socket: FragmentSocket) -> None:
        self._start()
        self._joining.append(socket)
        self._work.set()

    def leave(self, socket: FragmentSocket) -> None:
        self.sockets.discard(socket)
        if socket in self._joining:
            self._joining.remove(socket)

    def _start(self) -> None:
        if not self._tasks or any(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            self._tasks = [
                asyncio.create_task(self._receive(), name="dashboard-hub-receive"),
                asyncio.create_task(self._render(), name="dashboard-hub-render"),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _receive(self) -> None:
        """Subscribe once for the whole process; resubscribe if the layer fails."""
        layer = get_channel_layer()
        delay = 0.5
        while True:
            channel = None
            try:
                channel = await layer.new_channel()
                await layer.group_add(EVENTS_GROUP, channel)
                self.subscribed.set()
                delay = 0.5
                while True:
                    message = await layer.receive(channel)
                    self._events.append(message["event"])
                    self._work.set()
            except asyncio.CancelledError:
                # Stopping: awaiting the layer here could hang on a half-made subscription;
                # the layer's connections close with it.
                self.subscribed.clear()
                raise
            except Exception:
                self.subscribed.clear()
                logger.exception("dashboard hub lost the channel layer; resubscribing")
                if channel is not None:
                    await _leave_group(layer, channel)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _render(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            # Everything that queued up while the last render ran is handled in one go:
            # a burst costs one render, and every fragment holds absolute state.
            events, self._events = self._events, []
            joining, self._joining = self._joining, []
            try:
                if events and self.sockets:
                    html = await database_sync_to_async(fragments.render_update)(events)
                    await self._send(self.sockets, html)
                if joining:
                    html = await database_sync_to_async(fragments.render_refresh)()
                    self.sockets.update(await self._send(joining, html))
            except Exception:
                # Nothing is dropped: the same work is retried shortly (the database may be
                # restarting), merged with whatever arrives meanwhile.
                logger.exception("dashboard render failed; retrying")
                self._events = events + self._events
                self._joining = joining + self._joining
                await asyncio.sleep(1)
                self._work.set()

    async def _send(self, sockets: Any, html: str) -> list[FragmentSocket]:
        """Send to each of `sockets`; one that fails is dropped. Returns those that took it."""
        delivered = []
        for socket in list(sockets):
            try:
                await socket.send_fragment(html)
            except Exception:
                logger.debug("dropping a socket that failed to take a fragment", exc_info=True)
                self.sockets.discard(socket)
            else:
                delivered.append(socket)
        return delivered


async def _leave_group(layer: Any, channel: str) -> None:
    """Best effort, bounded: the layer may be the thing that failed."""
    try:
        async with asyncio.timeout(2):
            await layer.group_discard(EVENTS_GROUP, channel)
    except Exception:
        logger.debug("group_discard failed", exc_info=True)


hub = DashboardHub()
