"""Helpers for counting delivery: a resuming feed client and a paced row producer.

Each fault test compares what the database committed with what a client received:
every event exactly once, in `seq` order.
"""

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress

import psycopg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

INSERT = (
    "INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
    "VALUES (%s, current_date, localtime(0), %s) RETURNING id"
)


class ResumingFeed:
    """A `/ws/violations/` client that, when its socket drops, reconnects with
    `?since=<last seq it received>`, as a well-behaved programmatic client does."""

    def __init__(self, ws_url: str, origin: str, cookie: str, since: int | None = None) -> None:
        self.ws_url, self.origin, self.cookie = ws_url, origin, cookie
        self.events: list[dict] = []
        self.last_seq = since  # None: live from the moment of connecting
        self.reconnects = 0
        self.socket: ClientConnection | None = None
        self._sockets = ExitStack()
        self._connect()

    def _connect(self) -> None:
        self.close()
        self.socket = self._sockets.enter_context(
            connect(
                f"{self.ws_url}/ws/violations/"
                + ("" if self.last_seq is None else f"?since={self.last_seq}"),
                origin=self.origin,
                additional_headers={"Cookie": self.cookie},
                open_timeout=5,
                # The client's own keepalive would close a socket whose server is merely
                # busy under a burst; a dead server shows as a closed connection anyway.
                ping_interval=None,
                # Frames may wait while a test inserts: the client must go on reading (and
                # answering Daphne's pings) rather than stall on a full queue.
                max_queue=None,
            )
        )

    def receive_until(self, done: Callable[[list[dict]], bool], *, timeout: float) -> list[dict]:
        """Receive until `done(events)`; fail with a count if the deadline passes first."""
        deadline = time.monotonic() + timeout
        while not done(self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"after {timeout} s: {len(self.events)} events, last seq {self.last_seq}"
                )
            try:
                message = json.loads(self.socket.recv(timeout=min(remaining, 1)))
            except TimeoutError:
                continue
            except (ConnectionClosed, OSError):
                self._reconnect(deadline)
                continue
            if message.get("type") == "resync":
                raise AssertionError(f"told to resync: {message}")
            self.events.append(message)
            self.last_seq = message["seq"]
        return self.events

    def _reconnect(self, deadline: float) -> None:
        self.reconnects += 1
        delay = 0.05
        while True:
            try:
                self._connect()
                return
            except (OSError, TimeoutError):
                # The server is restarting: try again shortly, until the deadline.
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def close(self) -> None:
        sockets, self._sockets = self._sockets, ExitStack()
        # Already broken, most likely: that is why we are reconnecting.
        with suppress(ConnectionClosed, OSError):
            sockets.close()


class Producer:
    """Insert rows from a thread, one commit each, at about `rate` per second."""

    def __init__(self, conninfo: str, table: str, *, count: int, rate: float) -> None:
        self.conninfo, self.table, self.count, self.rate = conninfo, table, count, rate
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Producer":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            sql = INSERT.format(table=self.table)
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                started = time.monotonic()
                for n in range(self.count):
                    # Paced against the start, so a slow commit is caught up, not added.
                    pause = started + n / self.rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    (row_id,) = conn.execute(sql, [n % 12, f"/media/burst-{n}.jpg"]).fetchone()
                    self.ids.append(row_id)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> list[int]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"producer still running after {timeout} s"
        assert self.error is None, f"producer failed: {self.error!r}"
        return self.ids


def assert_exactly_once_in_order(
    events: list[dict], *, row_ids: list[int], since: int | None = None
) -> None:
    """`events` are seq since+1, since+2, ... (since: before the first received) without a
    gap or repeat, and announce exactly the inserts of `row_ids`, which also shows that
    nothing before the first received event was lost."""
    if since is None:
        since = events[0]["seq"] - 1
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(since + 1, since + 1 + len(events))), "gap, repeat or disorder"
    inserted = [event["id"] for event in events if event["op"] == "INSERT"]
    assert sorted(inserted) == sorted(row_ids)
    assert len(set(inserted)) == len(inserted)
