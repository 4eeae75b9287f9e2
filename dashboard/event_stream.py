"""One in-order, gap-free event stream per web process, fed by the channel layer and the log.

Events normally arrive through the channel layer, in `seq` order. The layer may lose some
(Redis restarting, a listener killed between numbering and publishing), so the stream
checks: a jump in `seq` is filled from the event log before going on, a repeat is dropped,
and a head read from the log (`log_head_seen`, every second from the hub's listener watch)
is caught up to, so a loss at the very end of a burst is noticed too.
"""

import asyncio
import logging
from collections import deque
from typing import Any

from channels.db import database_sync_to_async

from dashboard.subscriptions import keep_subscribed
from violations import event_log
from violations.contract import EVENTS_GROUP, Event

logger = logging.getLogger(__name__)

# How many recent events each process keeps in memory for resuming clients.
RECENT_EVENTS = 5000
# Largest range read from the log in one query.
LOG_PAGE = 1000


class EventStream:
    """The process's events in `seq` order, the recent ones kept, and waiters woken on each."""

    def __init__(self, *, recent: int = RECENT_EVENTS) -> None:
        self.head = 0  # last seq applied, valid once `ready` is set
        self.ready = asyncio.Event()
        self.subscribed = asyncio.Event()  # set while in the channel-layer group
        self._recent: deque[tuple[Event, str]] = deque(maxlen=recent)
        self._incoming: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._waiters: set[asyncio.Future[None]] = set()
        self._tasks: list[asyncio.Task] = []

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start (or restart after a crash) the stream's tasks; idempotent."""
        if self._tasks and not any(task.done() for task in self._tasks):
            return
        for task in self._tasks:
            task.cancel()
        self.ready.clear()
        self._incoming = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._receive(), name="event-stream-receive"),
            asyncio.create_task(self._sequence(), name="event-stream-sequence"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.ready.clear()
        self.subscribed.clear()

    # --- what subscribers use ----------------------------------------------------------
    async def next_change(self) -> None:
        """Return at the stream's next change (or the next `wake()`); callers re-check."""
        # One future per waiter: the cheapest wake-up (docs/decisions.md, issue 15).
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)

    def wake(self) -> None:
        """Wake every waiter: something they follow besides the stream moved (the hub's
        clock, heartbeat or listener watch)."""
        self._notify()

    def log_head_seen(self, head: int) -> None:
        """The log's head as read from the database: events up to it are applied, read from
        the log if the channel layer lost them."""
        self._incoming.put_nowait(("head", head))

    async def events_between(self, after: int, upto: int) -> list[tuple[Event, str]] | None:
        """Events `after < seq <= upto` with their JSON text, or None if the log no longer
        has them all (pruned, or from another database)."""
        if upto <= after:
            return []
        if self._recent and self._recent[0][0].seq <= after + 1 and upto <= self.head:
            start = after + 1 - self._recent[0][0].seq
            return [self._recent[i] for i in range(start, start + upto - after)]
        events = await database_sync_to_async(event_log.events_after)(
            after, upto=upto, limit=upto - after
        )
        if len(events) != upto - after:
            return None
        return [(event, event.to_json()) for event in events]

    # --- tasks -------------------------------------------------------------------------
    async def _receive(self) -> None:
        """Subscribe once for the whole process; nothing is lost while resubscribing (the
        log's head is still caught up to)."""
        await keep_subscribed(EVENTS_GROUP, self._received, self.subscribed)

    async def _received(self, message: dict[str, Any]) -> None:
        self._incoming.put_nowait(("events", [Event.from_wire(w) for w in message["events"]]))

    async def _sequence(self) -> None:
        """Apply everything in `seq` order, reading from the log whatever did not arrive."""
        while True:
            try:
                self.head = await database_sync_to_async(event_log.head_seq)()
                break
            except Exception as exc:
                logger.warning("cannot read the event log's head (%s); retrying", exc)
                await asyncio.sleep(1)
        self.ready.set()
        self._notify()
        while True:
            kind, payload = await self._incoming.get()
            while True:
                try:
                    if kind == "events":
                        await self._apply_batch(payload)
                    else:
                        await self._read_log(upto=payload)
                    break
                except Exception as exc:  # the database is restarting: retry, lose nothing
                    logger.warning("cannot read the event log (%s); retrying", exc)
                    await asyncio.sleep(1)
            self._notify()

    async def _apply_batch(self, events: list[Event]) -> None:
        for event in sorted(events, key=lambda event: event.seq):
            if event.seq > self.head + 1:  # some were lost on the way: read them
                await self._read_log(upto=event.seq - 1)
            if event.seq == self.head + 1:
                self._append(event)
            # else: already applied (read from the log, or a repeat)

    async def _read_log(self, *, upto: int) -> None:
        while self.head < upto:
            events = await database_sync_to_async(event_log.events_after)(
                self.head, upto=upto, limit=LOG_PAGE
            )
            if not events:
                # `upto` is a committed seq, and seqs commit in order: the rest are gone for
                # good (pruned, or the log was reset). Clients behind it will refresh.
                logger.warning("event log has nothing from %d to %d", self.head + 1, upto)
                self._recent.clear()
                self.head = upto
                return
            for event in events:
                if event.seq == self.head + 1:
                    self._append(event)
                elif event.seq > self.head + 1:
                    # A hole in the log itself (pruned while we were behind): carry on from
                    # here; clients behind it will be told to refresh.
                    logger.warning("event log skips from %d to %d", self.head, event.seq)
                    self._recent.clear()
                    self._append(event)

    def _append(self, event: Event) -> None:
        self._recent.append((event, event.to_json()))
        self.head = event.seq

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
