"""`python -m bench.clients`: many WebSocket clients in one process, driven by the runner.

The first line on stdin is the orders, a JSON object (see `Orders`). The process opens
`count` sockets, then speaks JSON lines on stdout:

    {"opening": n}                               every second while opening: n done so far
    {"opened": n, "failed": k, "error": "..."}   once every socket is open or gave up
    {"received": n}                              at most every 0.2 s while events arrive
    {"complete": true}                           once every socket has `expect` events of `tag`
    {"stopped": true}                            after "stop" (or EOF) on stdin, results written

Each socket records the events of `tag` it receives (by the marker in the row, see
`bench.markers`) with the time it received them, `time.monotonic_ns()` when the frame came
out of the socket. Results go to the `results` file as JSON, one entry per socket.
"""

import asyncio
import contextlib
import json
import random
import re
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.markers import find_markers

OPEN_ATTEMPTS = 3
PROGRESS_INTERVAL_S = 0.2
# Our server holds at most 512 KiB per socket that its client has not acknowledged
# (dashboard.flow_control): the clients ack the stream position their frames carry a
# jittered second after a frame arrives, so a thousand clients' acks never land in step
# with the next fan-out, and at once after ACK_BYTES, so a burst never waits on the timer
# (the baseline's frames carry no position: it is sent no acks).
ACK_DELAY_S = 1.0
ACK_BYTES = 128 * 1024
FEED_POSITION = re.compile(rb'"seq":(\d+)')
PAGE_POSITION = re.compile(rb'id="(?:stream-position|heartbeat)"[^>]*data-seq="(\d+)"')


@dataclass
class Orders:
    url: str
    origin: str
    headers: dict[str, str]
    count: int
    tag: str
    expect: int  # events per socket that make it complete; 0: never complete by itself
    results: str
    # Handshakes in flight at once, per process: more only queues them inside the server
    # (ours checks each login on one database thread), where Daphne drops any not accepted
    # within its 5 s connect timeout.
    open_concurrency: int = 5


@dataclass
class SocketLog:
    frames: int = 0
    tagged_frames: int = 0
    seqs: array = field(default_factory=lambda: array("q"))
    # Receive time minus send time (ns); for rows without a send time (sent_ns == 0,
    # e.g. written by pgbench) this is the receive time itself.
    latencies_ns: array = field(default_factory=lambda: array("q"))
    distinct: set[int] = field(default_factory=set)
    closed_early: bool = False


def frame_position(frame: bytes) -> int | None:
    """The stream position a frame of ours leaves its client at: a feed event's or
    heartbeat's `seq`, a dashboard frame's `#stream-position` or `#heartbeat`."""
    match = FEED_POSITION.search(frame, 0, 80) if frame.startswith(b"{") else None
    match = match or PAGE_POSITION.search(frame)
    return int(match[1]) if match else None


class Fleet:
    def __init__(self, orders: Orders) -> None:
        self.orders = orders
        self.sockets: list[ClientConnection] = []
        self.logs: list[SocketLog] = []
        self.received = 0
        self.complete_sockets = 0
        self.complete = asyncio.Event()
        self.failed = 0
        self.errors: list[str] = []

    async def open_all(self) -> None:
        limit = asyncio.Semaphore(self.orders.open_concurrency)

        async def open_one() -> None:
            async with limit:
                for attempt in range(OPEN_ATTEMPTS):
                    try:
                        socket = await connect(
                            self.orders.url,
                            origin=self.orders.origin,
                            additional_headers=self.orders.headers,
                            compression=None,  # as Daphne offers none; the raw loop neither
                            ping_interval=None,  # idle clients stay idle; servers may ping
                            max_queue=None,  # a browser buffers what it has not read yet
                            open_timeout=60,
                        )
                    except Exception as exc:  # refused, reset, timed out, rejected: retried
                        if attempt == OPEN_ATTEMPTS - 1:
                            self.failed += 1
                            if len(self.errors) < 3:
                                self.errors.append(repr(exc))
                            return
                        await asyncio.sleep(0.5 * (attempt + 1))
                    else:
                        self._track(socket)
                        return

        await asyncio.gather(*(open_one() for _ in range(self.orders.count)))
        if self.orders.expect and not self.sockets:
            self.complete.set()

    def _track(self, socket: ClientConnection) -> None:
        log = SocketLog()
        self.sockets.append(socket)
        self.logs.append(log)
        asyncio.get_running_loop().create_task(self._receive(socket, log))

    async def _receive(self, socket: ClientConnection, log: SocketLog) -> None:
        tag, expect = self.orders.tag, self.orders.expect
        loop = asyncio.get_running_loop()
        unacked: list[int] = []  # the latest position not yet acknowledged, if any
        unacked_bytes = 0
        timer: asyncio.TimerHandle | None = None
        sending: set[asyncio.Task] = set()

        def acknowledge() -> None:
            nonlocal unacked_bytes, timer
            if timer is not None:
                timer.cancel()
            timer, unacked_bytes = None, 0
            if unacked:
                task = loop.create_task(socket.send(f'{{"type":"ack","seq":{unacked.pop()}}}'))
                sending.add(task)
                task.add_done_callback(sending.discard)

        try:
            while True:
                frame = await socket.recv(decode=False)
                now = time.monotonic_ns()
                log.frames += 1
                position = frame_position(frame)
                if position is not None:
                    unacked[:] = [position]
                    unacked_bytes += len(frame)
                    if unacked_bytes >= ACK_BYTES:
                        acknowledge()
                    elif timer is None:
                        jitter = 0.5 + random.random()  # noqa: S311 (spreading, not secrecy)
                        timer = loop.call_later(ACK_DELAY_S * jitter, acknowledge)
                tagged = False
                for frame_tag, seq, sent_ns in find_markers(frame):
                    if frame_tag != tag:
                        continue
                    tagged = True
                    log.seqs.append(seq)
                    log.latencies_ns.append(now - sent_ns)
                    self.received += 1
                    if expect and len(log.distinct) < expect:
                        log.distinct.add(seq)
                        if len(log.distinct) == expect:
                            self.complete_sockets += 1
                            if self.complete_sockets == len(self.sockets):
                                self.complete.set()
                log.tagged_frames += tagged
        except ConnectionClosed:
            log.closed_early = True

    def results(self) -> dict[str, Any]:
        return {
            "opened": len(self.sockets),
            "failed": self.failed,
            "sockets": [
                {
                    "frames": log.frames,
                    "tagged_frames": log.tagged_frames,
                    "seqs": log.seqs.tolist(),
                    "latencies_ns": log.latencies_ns.tolist(),
                    "closed_early": log.closed_early,
                }
                for log in self.logs
            ],
        }

    async def close_all(self) -> None:
        async def close(socket: ClientConnection) -> None:
            await socket.close()

        await asyncio.wait_for(
            asyncio.gather(*(close(s) for s in self.sockets), return_exceptions=True), 30
        )


def say(message: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(1)  # the runner is gone: nobody to report to


def write_results(path: str, results: dict[str, Any]) -> None:
    # Blocking on purpose: the sockets are no longer read, nothing else is waiting.
    Path(path).write_text(json.dumps(results))


async def report_opening(fleet: Fleet) -> None:
    while True:
        await asyncio.sleep(1)
        say({"opening": len(fleet.sockets) + fleet.failed})


async def report_progress(fleet: Fleet) -> None:
    said_complete = False
    last = -1
    while True:
        if fleet.received != last:
            last = fleet.received
            say({"received": last})
        if fleet.complete.is_set() and not said_complete:
            said_complete = True
            say({"complete": True})
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def main() -> None:
    # One socket is one file descriptor: thousands need more than the usual soft limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    orders = Orders(**json.loads(await reader.readline()))

    fleet = Fleet(orders)
    opening = asyncio.create_task(report_opening(fleet))
    await fleet.open_all()
    opening.cancel()
    say({"opened": len(fleet.sockets), "failed": fleet.failed, "error": "; ".join(fleet.errors)})
    progress = asyncio.create_task(report_progress(fleet))

    await reader.readline()  # "stop", or EOF if the runner went away
    progress.cancel()
    write_results(orders.results, fleet.results())
    say({"stopped": True})
    with contextlib.suppress(TimeoutError):  # exiting closes whatever is left
        await fleet.close_all()


if __name__ == "__main__":
    asyncio.run(main())
