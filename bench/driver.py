"""The runner's side of a scenario: writing rows at a rate, and commanding client fleets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from websockets.asyncio.client import connect

from bench import procstat
from bench.clients import Orders, frame_position
from bench.markers import find_markers, marker, new_tag
from bench.stack import PROJECT_ROOT, Target

OPEN_IDLE_TIMEOUT_S = 30

INSERT = (
    "INSERT INTO {} (camera_id, violation_date, violation_time, violation_image) "
    "VALUES (%s, current_date, localtime, %s)"
)


class Writer:
    """Inserts marked rows into a target's tables, one autocommit INSERT per event."""

    def __init__(self, conn: psycopg.AsyncConnection, tables: list[str]) -> None:
        self.conn = conn
        self.inserts = [sql.SQL(INSERT).format(sql.Identifier(t)) for t in tables]

    @classmethod
    async def connect(cls, database_url: str, tables: list[str]) -> Writer:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        return cls(conn, tables)

    async def insert(self, tag: str, seq: int) -> int:
        """Write event `seq` of run `tag`; the send time it carries (monotonic ns)."""
        sent_ns = time.monotonic_ns()
        await self.conn.execute(
            self.inserts[seq % len(self.inserts)], (seq % 50 + 1, marker(tag, seq, sent_ns))
        )
        return sent_ns

    async def paced(self, tag: str, count: int, rate: float) -> list[int]:
        """`count` events at `rate` per second on a fixed schedule (a late insert does not
        push the later ones back); the send time of each."""
        start = time.monotonic()
        sent = []
        for seq in range(count):
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(await self.insert(tag, seq))
        return sent

    async def close(self) -> None:
        await self.conn.close()


@dataclass
class FleetResults:
    opened: int
    failed: int
    sockets: list[dict[str, Any]]

    def seqs(self) -> list[list[int]]:
        return [s["seqs"] for s in self.sockets]

    def events(self, *, still_open: bool = False) -> list[list[tuple[int, float]]]:
        """Per socket (only those the server did not close, if `still_open`), (seq, latency
        in ms) of every event received."""
        return [
            [(seq, ns / 1e6) for seq, ns in zip(s["seqs"], s["latencies_ns"], strict=True)]
            for s in self.sockets
            if not (still_open and s["closed_early"])
        ]

    def latencies_ms(self) -> list[float]:
        return [ns / 1e6 for s in self.sockets for ns in s["latencies_ns"]]

    def tagged_frames(self) -> int:
        return sum(s["tagged_frames"] for s in self.sockets)

    def closed_early(self) -> int:
        return sum(s["closed_early"] for s in self.sockets)


class Fleet:
    """Client processes (`bench.clients`) holding `count` sockets to one target between them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[asyncio.subprocess.Process] = []
        self.received: list[int] = []
        self.opening: list[int] = []
        self.complete: list[bool] = []
        self.result_paths: list[Path] = []
        self.last_progress = time.monotonic()
        self._readers: list[asyncio.Task] = []
        self._stopped: list[asyncio.Event] = []
        self.all_open = False

    @staticmethod
    def processes_for(count: int) -> int:
        # Two cores: more processes than that only adds switching, except that thousands of
        # sockets open faster (and stay under the per-process fd limit) when spread out.
        if count <= 20:
            return 1
        if count <= 2000:
            return 2
        return 4

    async def open(
        self, target: Target, count: int, tag: str, expect: int, processes: int | None = None
    ) -> Fleet:
        processes = processes or self.processes_for(count)
        shares = [count // processes + (i < count % processes) for i in range(processes)]
        opened = []
        for share in shares:
            path = self.workdir / f"fleet-{tag}-{len(self.processes)}.json"
            orders = Orders(
                url=target.ws_url,
                origin=target.origin,
                headers=target.headers,
                count=share,
                tag=tag,
                expect=expect,
                results=str(path),
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.clients",
                cwd=PROJECT_ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            process.stdin.write((json.dumps(asdict(orders)) + "\n").encode())
            await process.stdin.drain()
            self.processes.append(process)
            self.result_paths.append(path)
            self.received.append(0)
            self.opening.append(0)
            self.complete.append(False)
            self._stopped.append(asyncio.Event())
            ready: asyncio.Future = asyncio.get_running_loop().create_future()
            self._readers.append(asyncio.create_task(self._read(len(self.processes) - 1, ready)))
            opened.append(ready)
        # However long thousands of handshakes take, as long as they progress.
        everyone = asyncio.gather(*opened)
        self.last_progress = time.monotonic()
        while not everyone.done():
            await asyncio.wait([everyone], timeout=1)
            if time.monotonic() - self.last_progress > OPEN_IDLE_TIMEOUT_S:
                everyone.cancel()
                raise TimeoutError(f"no socket opened to {target.name} for {OPEN_IDLE_TIMEOUT_S} s")
        statuses = everyone.result()
        self.all_open = True
        self.opened = sum(s["opened"] for s in statuses)
        self.failed = sum(s["failed"] for s in statuses)
        self.errors = "; ".join(s["error"] for s in statuses if s["error"])
        return self

    async def _read(self, index: int, ready: asyncio.Future) -> None:
        process = self.processes[index]
        async for line in process.stdout:
            message = json.loads(line)
            if "opening" in message:
                if message["opening"] > self.opening[index]:
                    self.opening[index] = message["opening"]
                    self.last_progress = time.monotonic()
            elif "opened" in message:
                if not ready.done():
                    ready.set_result(message)
            elif "received" in message:
                self.received[index] = message["received"]
                self.last_progress = time.monotonic()
            elif "complete" in message:
                self.complete[index] = True
            elif "stopped" in message:
                self._stopped[index].set()
        if not ready.done():
            ready.set_exception(RuntimeError("a client process exited before opening"))
        self._stopped[index].set()

    @property
    def total_received(self) -> int:
        return sum(self.received)

    async def wait(
        self,
        *,
        until: Callable[[], bool] | None = None,
        within: float,
        idle_timeout: float,
    ) -> bool:
        """Until every process is complete (or `until()` holds); False if it gave up first:
        after `within` s, or `idle_timeout` s without a single event arriving."""
        deadline = time.monotonic() + within
        self.last_progress = time.monotonic()
        while True:
            if until() if until else all(self.complete):
                return True
            now = time.monotonic()
            if now > deadline or now - self.last_progress > idle_timeout:
                return False
            await asyncio.sleep(0.05)

    async def stop(self) -> FleetResults:
        """Collect what every process received; a process that does not answer is killed."""
        if self.all_open:
            for process in self.processes:
                process.stdin.write(b"stop\n")
                await process.stdin.drain()
            # One that is stuck is killed below; its results count as missing.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._stopped)), 120)
        sockets, opened, failed = [], 0, 0
        for path in self.result_paths:
            if path.exists():
                data = json.loads(path.read_text())
                path.unlink()
                sockets += data["sockets"]
                opened += data["opened"]
                failed += data["failed"]
        for process in self.processes:
            try:
                # Gave up while opening: nothing worth waiting for.
                await asyncio.wait_for(process.wait(), 60 if self.all_open else 0.1)
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in self._readers:
            reader.cancel()
        return FleetResults(opened, failed, sockets)


async def wait_until_delivering(target: Target, writer: Writer, within: float = 60) -> None:
    """Write probe rows until one reaches a socket: the whole path of `target` works."""
    tag = new_tag()
    deadline = time.monotonic() + within
    async with connect(
        target.ws_url, origin=target.origin, additional_headers=target.headers, open_timeout=30
    ) as socket:
        seq = 0
        while time.monotonic() < deadline:
            await writer.insert(tag, seq)
            seq += 1
            try:
                async with asyncio.timeout(0.5):
                    while True:
                        frame = await socket.recv(decode=False)
                        if any(t == tag for t, _, _ in find_markers(frame)):
                            return
                        # A backlog (the commit-rate runs' rows) would fill the window.
                        position = frame_position(frame)
                        if position is not None:
                            await socket.send(f'{{"type":"ack","seq":{position}}}')
            except TimeoutError:
                continue
    raise TimeoutError(f"{target.name}: no probe row reached a socket within {within} s")


def cpu_total(pids: list[int]) -> float:
    return sum(procstat.cpu_seconds(pid) for pid in pids)


async def settle(pids: list[int], *, quiet_cpu: float = 0.05, window: float = 0.5) -> None:
    """Wait (at most 60 s) until the processes use less than `quiet_cpu` of a core: the
    last run's backlog is gone before the next run starts, and all its work is counted."""
    deadline = time.monotonic() + 60
    before = cpu_total(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(window)
        after = cpu_total(pids)
        if (after - before) / window < quiet_cpu:
            return
        before = after
