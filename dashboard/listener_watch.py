"""The listener's health as the dashboard shows it: read from the database every second."""

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async

from violations import event_log
from violations.contract import Event
from violations.event_log import ListenerStatus

logger = logging.getLogger(__name__)

POLL_INTERVAL = 1.0


class ListenerWatch:
    """One task per process reading `event_log.listener_status` every `interval` seconds."""

    def __init__(self, *, interval: float = POLL_INTERVAL) -> None:
        self.interval = interval
        self.status: ListenerStatus | None = None
        self.version = 0  # bumped when the listener goes active or inactive
        self.known = asyncio.Event()  # set once a status was read
        self._task: asyncio.Task | None = None

    def start(self, on_read: Callable[[ListenerStatus, bool], None]) -> None:
        """Start (or restart after a crash) the polling; idempotent. `on_read(status,
        flipped)` is called after every reading."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(on_read), name="listener-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def record(self, status: ListenerStatus) -> bool:
        """Keep `status`; True if the listener went active or inactive with it."""
        flipped = self.status is None or status.active != self.status.active
        self.status = status
        self.known.set()
        if flipped:
            self.version += 1
        return flipped

    async def _poll(self, on_read: Callable[[ListenerStatus, bool], None]) -> None:
        while True:
            try:
                status = await database_sync_to_async(event_log.listener_status)()
            except Exception as exc:
                logger.warning("cannot read the listener's status (%s)", exc)
            else:
                on_read(status, self.record(status))
            await asyncio.sleep(self.interval)


def with_newest_event(
    status: ListenerStatus | None, events: Sequence[Event]
) -> ListenerStatus | None:
    """`status` with "last event" no older than the newest of `events`, which the poll may
    not have seen yet."""
    if status is None or not events:
        return status
    newest = datetime.datetime.fromisoformat(events[-1].at)
    if status.last_event_at is not None and newest <= status.last_event_at:
        return status
    return dataclasses.replace(status, last_event_at=newest)
