"""The listener: deliver the event log, in order, exactly once, to the channel layer.

Thin IO around violations.events. It holds two connections: one in LISTEN (NOTIFY only
says "the log has news"; psycopg locks a connection while it waits for notifications) and
one that holds the active-listener advisory lock and numbers pending events. Numbering
(`seq`) commits before publishing, so a crash between the two loses nothing: web processes
notice the gap and read the missing events from the log.

Several listeners may run (rolling deploys, high availability): the one holding the lock
is active, the others wait on standby and take over within `standby_interval` of its
connection closing. It knows nothing of screens; it publishes.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from violations.backoff import Backoff
from violations.contract import EVENT_LOG_TABLE, HEAD_TABLE, Event, validate_identifier
from violations.events import InvalidNotification, event_from_log_row, parse_notification

logger = logging.getLogger(__name__)

Publish = Callable[[list[Event]], Awaitable[None]]

# How many pending events one statement numbers at most.
MAX_BATCH = 1000

# Numbers the oldest pending events after the head, in one statement (so in one
# transaction, under the lock), and moves the head. Pending rows only become visible once
# their transaction commits, so an event whose id was handed out before a later one's but
# committed after it is simply numbered later: nothing is skipped, whatever order
# transactions commit in. `{order}` is commit order when the server tracks commit
# timestamps, else id order within a batch. The head is read as a scalar, never joined
# (a join misled the planner: docs/decisions.md).
_NUMBER_PENDING = """
WITH pending AS (
    SELECT id{commit_ts} FROM {log} WHERE seq IS NULL
    ORDER BY {order} LIMIT %(limit)s FOR UPDATE
), numbered AS (
    SELECT id, (SELECT seq FROM {head}) + row_number() OVER (ORDER BY {order}) AS seq
    FROM pending
), updated AS (
    UPDATE {log} AS e SET seq = numbered.seq FROM numbered WHERE e.id = numbered.id
    RETURNING e.seq, e.table_name, e.op, e.row_id, e.data, e.created_at
), moved AS (
    UPDATE {head} SET seq = (SELECT max(seq) FROM updated) WHERE EXISTS (SELECT FROM updated)
)
SELECT * FROM updated
"""


# Names stay unqualified here (unlike in the triggers): this connection's search_path is
# the one Django migrated with, never a writer's.
def _number_pending_query(track_commit_timestamp: bool) -> sql.Composed:
    if track_commit_timestamp:
        commit_ts, order = ", pg_xact_commit_timestamp(xmin) AS committed_at", "committed_at, id"
    else:
        commit_ts, order = "", "id"
    return sql.SQL(_NUMBER_PENDING).format(
        log=sql.Identifier(EVENT_LOG_TABLE),
        head=sql.Identifier(HEAD_TABLE),
        commit_ts=sql.SQL(commit_ts),
        order=sql.SQL(order),
    )


class State(Enum):
    STARTING = "starting"
    STANDBY = "standby"
    LISTENING = "listening"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass
class WarningSummary:
    """Log the first of a run of similar warnings at once, then one count per `interval`.

    A flood of garbage NOTIFYs must not become a flood of log lines.
    """

    message: str
    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _suppressed: int = 0
    _last_logged: float = float("-inf")

    def warn(self, detail: str) -> None:
        now = self.clock()
        if now - self._last_logged >= self.interval:
            more = f" (and {self._suppressed} more since)" if self._suppressed else ""
            logger.warning("%s: %s%s", self.message, detail, more)
            self._last_logged, self._suppressed = now, 0
        else:
            self._suppressed += 1


class Listener:
    """Deliver every committed event of the log to `publish`, reconnecting forever."""

    def __init__(
        self,
        *,
        listen_conninfo: str,
        query_conninfo: str,
        channel: str,
        lock_key: int,
        publish: Publish,
        health_interval: float = 10.0,
        health_timeout: float = 5.0,
        standby_interval: float = 0.5,
        publish_timeout: float = 5.0,
        backoff: Backoff | None = None,
        health_file: Path | None = None,
    ) -> None:
        self.listen_conninfo = listen_conninfo
        self.query_conninfo = query_conninfo
        self.channel = validate_identifier(channel, "the NOTIFY channel")
        self.lock_key = lock_key
        self.publish = publish
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.standby_interval = standby_interval
        self.publish_timeout = publish_timeout
        self.backoff = backoff or Backoff()
        # Touched whenever the listener proves itself (a health query answered, a standby
        # poll made): a container healthcheck reads its age (violations.listener_health).
        self.health_file = health_file
        self.state = State.STARTING
        self._invalid = WarningSummary("ignored notification")
        self._publish_failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; every error short of that leads to a reconnect."""
        while not stop.is_set():
            try:
                await _until_stopped(self._serve_once(), stop)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._set_state(State.DISCONNECTED, f"not connected ({_describe(exc)}); retrying")
            except Exception:
                # Not a connection problem, so a bug: say so loudly, but keep serving.
                logger.exception("listener failed unexpectedly; restarting it")
                self.state = State.DISCONNECTED
            if not stop.is_set():
                delay = self.backoff.next_delay()
                logger.debug("reconnecting in %.2f s", delay)
                await _sleep_unless_stopped(delay, stop)
        self._set_state(State.STOPPED, "stopped")
        if self.health_file is not None:
            self.health_file.unlink(missing_ok=True)

    async def _serve_once(self) -> None:
        async with await _connect(self.query_conninfo) as query_conn:
            await self._become_active(query_conn)
            async with await _connect(self.listen_conninfo) as listen_conn:
                # LISTEN before the first read of the log: a change committed in between
                # is then either read now or announced later, never neither.
                await listen_conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                numbering = _number_pending_query(await _tracks_commit_order(query_conn))
                self.backoff.reset()
                self._set_state(State.LISTENING, f"listening on channel {self.channel}")
                self._alive()
                news = asyncio.Event()
                news.set()  # catch up on whatever committed while no listener was active
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._receive(listen_conn, news))
                    tasks.create_task(self._deliver(query_conn, numbering, news))

    async def _become_active(self, conn: psycopg.AsyncConnection) -> None:
        """Wait until this listener holds the lock; only the holder numbers events."""
        while True:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", [self.lock_key])
            row = await cursor.fetchone()
            if row and row[0]:
                return
            self._set_state(State.STANDBY, "standby: another listener is active; waiting")
            self.backoff.reset()
            self._alive()
            await asyncio.sleep(self.standby_interval)

    async def _receive(self, conn: psycopg.AsyncConnection, news: asyncio.Event) -> None:
        """Turn notifications into `news`; between waits, prove the connection is alive."""
        while True:
            async for notification in conn.notifies(timeout=self.health_interval):
                try:
                    parse_notification(notification.payload)
                except InvalidNotification as exc:
                    self._invalid.warn(f"{notification.payload!r:.120}: {exc}")
                else:
                    news.set()
            await self._check_health(conn)
            self._alive()
            # A quiet period is also when to look at the log anyway: cheap, and a safety
            # net for anything a notification could not say.
            news.set()

    async def _check_health(self, conn: psycopg.AsyncConnection) -> None:
        """A connection whose peer vanished without a FIN raises nothing while we wait:
        only a round trip with a deadline notices it."""
        query = asyncio.ensure_future(conn.execute("SELECT 1"))
        done, _ = await asyncio.wait({query}, timeout=self.health_timeout)
        if not done:
            # Drop the socket before cancelling: psycopg would otherwise spend up to 10 s
            # asking a server that cannot hear us to cancel the query.
            conn.pgconn.finish()
            query.cancel()
            await asyncio.gather(query, return_exceptions=True)
            raise TimeoutError(f"health query unanswered after {self.health_timeout} s")
        query.result()

    async def _deliver(
        self, conn: psycopg.AsyncConnection, numbering: sql.Composed, news: asyncio.Event
    ) -> None:
        while True:
            await news.wait()
            news.clear()
            while True:
                events = await self._number_pending(conn, numbering)
                if events:
                    await self._publish(events)
                if len(events) < MAX_BATCH:
                    break

    async def _number_pending(
        self, conn: psycopg.AsyncConnection, numbering: sql.Composed
    ) -> list[Event]:
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(numbering, {"limit": MAX_BATCH})
            rows = await cursor.fetchall()
        return sorted((event_from_log_row(row) for row in rows), key=lambda event: event.seq)

    async def _publish(self, events: list[Event]) -> None:
        """Publish once, briefly. The events are already in the log with their seq, so if
        the channel layer is down, web processes read them from the log instead."""
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publish(events)
        except Exception as exc:  # any channel-layer error: Redis down, timeouts
            if not self._publish_failing:
                logger.error(
                    "cannot publish events (%s); web processes will read them from the log",
                    _describe(exc),
                )
            self._publish_failing = True
        else:
            if self._publish_failing:
                logger.info("publishing events again")
            self._publish_failing = False

    def _alive(self) -> None:
        if self.health_file is not None:
            self.health_file.touch()

    def _set_state(self, state: State, message: str) -> None:
        if state is self.state:
            return
        self.state = state
        level = logging.WARNING if state is State.DISCONNECTED else logging.INFO
        logger.log(level, message)


async def _tracks_commit_order(conn: psycopg.AsyncConnection) -> bool:
    cursor = await conn.execute("SELECT current_setting('track_commit_timestamp')::bool")
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _connect(conninfo: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        connect_timeout=10,
        application_name="listen_notify",
        # Kernel keepalives notice a dead peer even when no health query is in flight.
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set, whichever comes first."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work_task, stop_task):
            task.cancel()
        await asyncio.gather(work_task, stop_task, return_exceptions=True)
    if work_task.done() and not work_task.cancelled() and work_task.exception():
        raise _unwrap(work_task.exception())


async def _sleep_unless_stopped(delay: float, stop: asyncio.Event) -> None:
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        pass


def _unwrap(exc: BaseException) -> BaseException:
    """The first real error inside a TaskGroup's ExceptionGroup."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
