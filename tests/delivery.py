"""Helpers for counting delivery: a resuming feed client, a paced row producer, and
pgbench for commit rates a Python thread cannot reach.

Each fault test compares what the database committed with what a client received:
every event exactly once, in `seq` order.
"""

import json
import math
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from devstack.postgres import pgbench_binary

INSERT = (
    "INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
    "VALUES (%s, current_date, localtime(0), %s) RETURNING id"
)


# How often a test client acknowledges what it received (dashboard.flow_control).
ACK_INTERVAL = 0.1
POSITION = re.compile(r'id="stream-position"[^>]*data-seq="(\d+)"')


class AckingDashboard:
    """A `/ws/dashboard/` socket read on a thread that acknowledges each frame's position,
    as the page does, so the server's window never pauses it however long a test waits
    before reading. `recv(timeout)` returns the frames in order; `send` sends."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._frames: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        acked_at, held, acked = 0.0, None, None
        try:
            while True:
                try:
                    frame = self.socket.recv(timeout=ACK_INTERVAL)
                except TimeoutError:
                    frame = None
                if frame is not None:
                    self._frames.put(frame)
                    position = POSITION.search(frame)
                    held = int(position[1]) if position else held
                # Ten acks a second at most, and the last one always: a window the client
                # leaves full would pause the socket for good.
                if held != acked and time.monotonic() - acked_at >= ACK_INTERVAL:
                    acked_at, acked = time.monotonic(), held
                    self.socket.send(json.dumps({"type": "ack", "seq": held}))
        except BaseException as exc:  # the socket closed: the next recv raises it
            self._frames.put(exc)

    def send(self, text: str) -> None:
        self.socket.send(text)

    def recv(self, timeout: float | None = None) -> str:
        try:
            item = self._frames.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no frame within {timeout} s") from None
        if isinstance(item, BaseException):
            self._frames.put(item)
            raise item
        return item


class ResumingFeed:
    """A `/ws/violations/` client that, when its socket drops, reconnects with
    `?since=<last seq it received>`, as a well-behaved programmatic client does."""

    def __init__(self, ws_url: str, origin: str, cookie: str, since: int | None = None) -> None:
        self.ws_url, self.origin, self.cookie = ws_url, origin, cookie
        self.events: list[dict] = []
        self.last_seq = since  # None: live from the moment of connecting
        self.reconnects = 0
        self._acked_at, self._acked_seq = 0.0, since
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
                message = json.loads(self.socket.recv(timeout=min(remaining, ACK_INTERVAL)))
            except TimeoutError:
                self._acknowledge()  # the last events, once the interval allows
                continue
            except (ConnectionClosed, OSError):
                self._reconnect(deadline)
                continue
            if message.get("type") == "heartbeat":
                self._acknowledge(force=True)
                continue  # proof of life, not an event
            if message.get("type") == "resync":
                raise AssertionError(f"told to resync: {message}")
            self.events.append(message)
            self.last_seq = message["seq"]
            self._acknowledge()
        return self.events

    def receive_for(self, seconds: float) -> list[dict]:
        """Receive (and acknowledge) whatever arrives for `seconds`, as a live client does."""
        until = time.monotonic() + seconds
        with suppress(AssertionError):
            self.receive_until(lambda events: time.monotonic() >= until, timeout=seconds)
        return self.events

    def _acknowledge(self, *, force: bool = False) -> None:
        """Tell the server what it may stop holding against this socket's window, ten
        times a second at most (its allowance for acks)."""
        now = time.monotonic()
        if self.last_seq is None or (self.last_seq == self._acked_seq and not force):
            return
        if now - self._acked_at < ACK_INTERVAL:
            return
        self._acked_at, self._acked_seq = now, self.last_seq
        with suppress(ConnectionClosed, OSError):  # the next recv reconnects
            self.socket.send(json.dumps({"type": "ack", "seq": self.last_seq}))

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

    def __init__(
        self, conninfo: str, table: str, *, count: int, rate: float, row_bytes: int = 0
    ) -> None:
        """`row_bytes`: pad each row's image path to about this many characters."""
        self.conninfo, self.table, self.count, self.rate = conninfo, table, count, rate
        self.row_bytes = row_bytes
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
                    image = f"/media/burst-{n}.jpg".rjust(self.row_bytes, "x")
                    (row_id,) = conn.execute(sql, [n % 12, image]).fetchone()
                    self.ids.append(row_id)
        except BaseException as exc:
            self.error = exc

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> list[int]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"producer still running after {timeout} s"
        assert self.error is None, f"producer failed: {self.error!r}"
        return self.ids


# One autocommit INSERT per transaction: every pgbench transaction is one single-row commit.
PGBENCH_SCRIPT = """\\set cam random(0, 11)
INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image)
VALUES (:cam, current_date, localtime(0), '{image}');
"""


@dataclass
class PgbenchRun:
    """What one pgbench run committed, over how long, and everything it printed."""

    transactions: int  # committed, as pgbench counted them
    seconds: float  # pgbench's measured duration (connecting excluded)
    output: str  # its progress lines (-P) and summary, for failure messages


def pgbench_inserts(
    conninfo: str,
    table: str,
    *,
    image: str,
    rate: float,
    seconds: int,
    clients: int,
    workdir: Path,
) -> PgbenchRun:
    """Single-row commits into `table` from pgbench: `clients` connections on one schedule
    of `rate` transactions per second (pgbench's --rate: Poisson arrivals) for `seconds`,
    with synchronous_commit off (see below). Every row's violation_image is `image`, by
    which the caller finds exactly these rows."""
    script = workdir / "pgbench-inserts.sql"
    script.write_text(PGBENCH_SCRIPT.format(table=table, image=image))
    argv = [
        pgbench_binary(),
        "--no-vacuum",
        f"--file={script}",
        f"--rate={rate}",
        f"--time={seconds}",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--progress={max(1, seconds // 6)}",
        conninfo,
    ]
    # The cameras' commits skip the wait for their WAL flush. A transaction that NOTIFYs
    # holds a cluster-wide lock from before its commit until after that flush, so
    # notifying commits cannot share a flush: on this machine's disk they top out at about
    # 800/s with the pipeline attached (flushes of ~0.8 ms each, one at a time), whatever
    # the pipeline does. What is under test is the pipeline at 2,000 committed rows a
    # second; each row is still its own transaction and its own NOTIFY, and the listener's
    # numbering, which the no-loss guarantee rests on, still commits synchronously.
    environment = os.environ | {
        "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c synchronous_commit=off".strip()
    }
    result = subprocess.run(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=seconds + 60,
        env=environment,
    )
    output = result.stdout
    assert result.returncode == 0, f"pgbench failed ({result.returncode}):\n{output}"
    processed = re.search(r"^number of transactions actually processed: (\d+)", output, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.M)
    # "without initial connection time" since PostgreSQL 14, "excluding connections
    # establishing" before: transactions over the time spent running them.
    tps = re.search(r"^tps = ([\d.]+) \((?:without|excluding)", output, re.M)
    assert processed, f"no transaction count in pgbench's output:\n{output}"
    assert tps, f"no tps in pgbench's output:\n{output}"
    assert failed is None or failed[1] == "0", f"pgbench transactions failed:\n{output}"
    transactions = int(processed[1])
    return PgbenchRun(transactions, transactions / float(tps[1]), output)


def poisson_floor(rate: float, seconds: float, sigmas: float = 4) -> float:
    """The lowest commit rate consistent with a --rate schedule kept in full. The number of
    transactions pgbench schedules in `seconds` is Poisson with mean rate × seconds, so
    it falls more than `sigmas` standard deviations (√mean) short by chance alone with
    probability 3e-5 when `sigmas` is 4. A server that cannot keep up falls short for good."""
    mean = rate * seconds
    return (mean - sigmas * math.sqrt(mean)) / seconds


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
