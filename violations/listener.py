"""The listener: LISTEN on PostgreSQL, read the rows each hint names, publish events.

Thin IO around violations.events: it owns two connections (one held in LISTEN, one for
reading rows, because psycopg locks a connection while it waits for notifications), the
reconnect loop and the health check. It knows nothing of screens; it publishes.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from violations.events import (
    ChangeHint,
    Event,
    InvalidHint,
    confirmed_events,
    ids_by_table,
    parse_hint,
)
from violations.notify import validate_channel_name

logger = logging.getLogger(__name__)

Publish = Callable[[list[Event]], Awaitable[None]]

# How many queued notifications one read of the tables serves at most.
MAX_BATCH = 1000


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter (so many listeners don't retry in step)."""

    initial: float = 0.25
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class State(Enum):
    STARTING = "starting"
    LISTENING = "listening"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class Listener:
    """Forward every confirmed change on `channel` to `publish`, reconnecting forever.

    `models` maps table name to model: the only tables read, and the only ones announced.
    """

    def __init__(
        self,
        *,
        listen_conninfo: str,
        query_conninfo: str,
        channel: str,
        models: Mapping[str, Any],
        publish: Publish,
        health_interval: float = 10.0,
        health_timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.listen_conninfo = listen_conninfo
        self.query_conninfo = query_conninfo
        self.channel = validate_channel_name(channel)
        self.models = dict(models)
        self.publish = publish
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.backoff = backoff or Backoff()
        self.state = State.STARTING
        self._row_queries = {table: _row_query(model) for table, model in self.models.items()}

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set; every error short of that leads to a reconnect."""
        while not stop.is_set():
            try:
                await _until_stopped(self._listen_once(), stop)
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

    async def _listen_once(self) -> None:
        async with (
            await _connect(self.listen_conninfo) as listen_conn,
            await _connect(self.query_conninfo) as query_conn,
        ):
            await listen_conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backoff.reset()
            self._set_state(State.LISTENING, f"listening on channel {self.channel}")
            payloads: asyncio.Queue[str] = asyncio.Queue()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._receive(listen_conn, payloads))
                tasks.create_task(self._forward(query_conn, payloads))

    async def _receive(self, conn: psycopg.AsyncConnection, payloads: asyncio.Queue[str]) -> None:
        """Queue every payload; between waits, prove the connection is alive."""
        while True:
            async for notification in conn.notifies(timeout=self.health_interval):
                payloads.put_nowait(notification.payload)
            await self._check_health(conn)

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

    async def _forward(self, conn: psycopg.AsyncConnection, payloads: asyncio.Queue[str]) -> None:
        while True:
            batch = [await payloads.get()]
            while len(batch) < MAX_BATCH and not payloads.empty():
                batch.append(payloads.get_nowait())
            hints = self._parse(batch)
            if not hints:
                continue
            rows = await self._read_rows(conn, hints)
            events, rejected = confirmed_events(hints, rows)
            for hint in rejected:
                logger.warning(
                    "ignored %s of %s id %s: the table does not confirm it",
                    hint.op,
                    hint.table,
                    hint.id,
                )
            if events:
                await self._publish(events)

    def _parse(self, payloads: list[str]) -> list[ChangeHint]:
        hints = []
        for payload in payloads:
            try:
                hints.append(parse_hint(payload, self.models))
            except InvalidHint as exc:
                logger.warning("ignored notification %.120r: %s", payload, exc)
        return hints

    async def _read_rows(
        self, conn: psycopg.AsyncConnection, hints: list[ChangeHint]
    ) -> dict[str, dict[int, dict[str, Any]]]:
        rows: dict[str, dict[int, dict[str, Any]]] = {}
        async with conn.cursor(row_factory=dict_row) as cursor:
            for table, ids in ids_by_table(hints).items():
                await cursor.execute(self._row_queries[table], [ids])
                rows[table] = {row["id"]: row async for row in cursor}
        return rows

    async def _publish(self, events: list[Event]) -> None:
        """Publish, retrying while the channel layer is down: events wait, in order."""
        failures = 0
        while True:
            try:
                await self.publish(events)
            except Exception as exc:  # any channel-layer error: Redis down, timeouts
                if failures == 0:
                    logger.error("cannot publish events, retrying: %s", _describe(exc))
                failures += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
            else:
                if failures:
                    logger.info("publishing again after %d failed attempts", failures)
                return

    def _set_state(self, state: State, message: str) -> None:
        if state is self.state:
            return
        self.state = state
        level = logging.WARNING if state is State.DISCONNECTED else logging.INFO
        logger.log(level, message)


# Django OPTIONS keys that are libpq connection parameters (others, such as
# isolation_level or pool, are Django's own and mean nothing to libpq).
_LIBPQ_OPTIONS = {
    "host",
    "port",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "options",
    "passfile",
    "service",
    "target_session_attrs",
    "connect_timeout",
}


def conninfo(database: dict[str, Any]) -> str:
    """A libpq connection string for one of Django's DATABASES entries."""
    params = {
        "dbname": database.get("NAME"),
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
    }
    options = database.get("OPTIONS", {})
    params.update({key: value for key, value in options.items() if key in _LIBPQ_OPTIONS})
    return make_conninfo(**{key: str(v) for key, v in params.items() if v not in (None, "")})


def _row_query(model: Any) -> sql.Composed:
    """SELECT of every concrete column, aliased to the field name, for a list of ids."""
    meta = model._meta
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.Identifier(f.column), sql.Identifier(f.name))
        for f in meta.concrete_fields
    )
    return sql.SQL("SELECT {columns} FROM {table} WHERE {pk} = ANY(%s)").format(
        columns=columns,
        table=sql.Identifier(meta.db_table),
        pk=sql.Identifier(meta.pk.column),
    )


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
