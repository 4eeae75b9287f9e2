"""Measure channels-redis's two Redis channel layers against each other.

Compares ``channels_redis.core.RedisChannelLayer`` (sorted-set queues with capacity and expiry)
with ``channels_redis.pubsub.RedisPubSubChannelLayer`` (Redis PUBLISH/SUBSCRIBE) on:

1. fan-out latency: one ``group_send`` to a group of N consumers (N = 10, 100, 1000), time until
   the last consumer has the message; p50 / p99 over ``--sends`` sends x ``--repeat`` rounds;
2. burst: ``--burst`` group_sends as fast as possible to 10 consumers; messages each consumer
   received, deliveries lost, time until the last delivery. Run twice: sender in the consumers'
   process (it then shares their event loop, which throttles it), and sender in a child process
   (like a separate publisher process in production, free to outrun the consumers);
3. throughput: group_sends per second with 100 consumers in the group (send side only).

Every consumer is a channel from ``layer.new_channel()``, added to one group, with a task looping
on ``layer.receive(channel)``. Apart from the second burst, consumers and the sender share one
process and one event loop, so the numbers include the consumers' CPU cost. Each scenario gets a
fresh layer (its own key prefix) and is cleaned up afterwards; every wait is bounded, so the
script cannot hang.

Run (from the project root, with a Redis server at --redis-url or $REDIS_URL):

    .venv/bin/python scripts/measure_channel_layers.py --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from redis import asyncio as aioredis

FANOUT_SIZES = (10, 100, 1000)
BURST_CONSUMERS = 10
THROUGHPUT_CONSUMERS = 100
GROUP = "bench_layers.group"
RECEIVE_TIMEOUT_S = 5.0  # a fan-out message not fully delivered by then counts as lost
IDLE_TIMEOUT_S = 3.0  # burst/throughput: stop waiting after this long without a delivery
SCENARIO_TIMEOUT_S = 240.0
CLEANUP_TIMEOUT_S = 60.0

Layer = RedisChannelLayer | RedisPubSubChannelLayer
LAYERS: dict[str, type[Layer]] = {
    "RedisChannelLayer": RedisChannelLayer,
    "RedisPubSubChannelLayer": RedisPubSubChannelLayer,
}


class CapacityDrops(logging.Handler):
    """Count the core layer's "N of M channels over capacity" log records (sends refused)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.refused = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "over capacity" in str(record.msg) and record.args:
            self.refused += int(record.args[0])  # type: ignore[index]


CAPACITY_DROPS = CapacityDrops()


@dataclass
class Waiter:
    remaining: int
    done: asyncio.Future[float]


@dataclass
class Consumers:
    """N channels in one group, each with a task looping on ``layer.receive``."""

    layer: Any
    prefix: str
    channels: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    waiters: dict[int, Waiter] = field(default_factory=dict)
    last_delivery: float = 0.0
    last_delivery_wall: float = 0.0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, n: int) -> None:
        self.counts = [0] * n
        for i in range(n):
            channel = await self.layer.new_channel()
            await self.layer.group_add(GROUP, channel)
            self.channels.append(channel)
            self.tasks.append(asyncio.create_task(self._consume(i, channel)))

    async def _consume(self, index: int, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            now = time.perf_counter()
            self.counts[index] += 1
            self.last_delivery = now
            self.last_delivery_wall = time.time()
            self.progress.set()
            waiter = self.waiters.get(message["seq"])
            if waiter is not None:
                waiter.remaining -= 1
                if waiter.remaining == 0 and not waiter.done.done():
                    waiter.done.set_result(now)

    async def send_and_wait(self, seq: int, limit_s: float) -> tuple[float | None, int]:
        """group_send one message; return (seconds until the last consumer had it, missing)."""
        waiter = Waiter(len(self.channels), asyncio.get_running_loop().create_future())
        self.waiters[seq] = waiter
        start = time.perf_counter()
        await self.layer.group_send(GROUP, {"type": "bench.message", "seq": seq})
        try:
            finished = await asyncio.wait_for(waiter.done, limit_s)
        except TimeoutError:
            return None, waiter.remaining
        finally:
            del self.waiters[seq]
        return finished - start, 0

    async def warm_up(self) -> None:
        """Deliver one message to everyone (pub/sub SUBSCRIBEs are confirmed asynchronously)."""
        for attempt in range(5):
            latency, _ = await self.send_and_wait(-1 - attempt, 2.0)
            if latency is not None:
                break
        self.counts = [0] * len(self.channels)

    async def wait_idle(self, expected: int) -> None:
        """Wait until every consumer has ``expected`` messages or deliveries stop."""
        while min(self.counts) < expected:
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), IDLE_TIMEOUT_S)
            except TimeoutError:
                return

    async def close(self) -> None:
        for channel in self.channels:
            await self.layer.group_discard(GROUP, channel)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # Core: waits for receive cleaners, deletes every key under the prefix, closes pools.
        # Pub/sub: unsubscribes and closes its connections.
        await self.layer.flush()


async def with_consumers(
    make_layer: Callable[[], tuple[Any, str]],
    n: int,
    body: Callable[[Consumers], Awaitable[Any]],
) -> Any:
    """Run ``body`` against n fresh consumers; None if it exceeds SCENARIO_TIMEOUT_S."""
    consumers = Consumers(*make_layer())
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            await consumers.start(n)
            await consumers.warm_up()
            return await body(consumers)
    except TimeoutError:
        return None
    finally:
        async with asyncio.timeout(CLEANUP_TIMEOUT_S):
            await consumers.close()


async def fanout(consumers: Consumers, sends: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    lost = 0
    for seq in range(sends):
        latency, missing = await consumers.send_and_wait(seq, RECEIVE_TIMEOUT_S)
        lost += missing
        if latency is not None:
            latencies.append(latency * 1000)
        await asyncio.sleep(0.01)  # let receive loops settle; sends are independent
    return latencies, lost


@dataclass
class Burst:
    counts: list[int]
    send_s: float
    deliver_s: float
    refused: int


async def burst(consumers: Consumers, messages: int) -> Burst:
    CAPACITY_DROPS.refused = 0
    start = time.perf_counter()
    for seq in range(messages):
        await consumers.layer.group_send(GROUP, {"type": "bench.message", "seq": seq})
    sent = time.perf_counter()
    await consumers.wait_idle(messages)
    return Burst(
        list(consumers.counts),
        sent - start,
        max(consumers.last_delivery, sent) - start,
        CAPACITY_DROPS.refused,
    )


async def send_burst(name: str, url: str, prefix: str, messages: int) -> dict[str, float]:
    """Child-process side of the second burst: group_send into the parent's consumers."""
    logging.getLogger("channels_redis.core").addHandler(CAPACITY_DROPS)
    logging.getLogger("channels_redis.core").setLevel(logging.INFO)
    layer: Any = LAYERS[name](hosts=[url], prefix=prefix)
    start = time.time()
    for seq in range(messages):
        await layer.group_send(GROUP, {"type": "bench.message", "seq": seq})
    end = time.time()
    # Not flush(): for the core layer that would delete the parent's queues and group.
    await (layer.close_pools() if isinstance(layer, RedisChannelLayer) else layer.flush())
    return {"start": start, "end": end, "refused": CAPACITY_DROPS.refused}


async def burst_from_child(consumers: Consumers, name: str, url: str, messages: int) -> Burst:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--redis-url",
        url,
        "--send-burst",
        name,
        consumers.prefix,
        str(messages),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    sent = json.loads(out.decode().strip().splitlines()[-1])
    await consumers.wait_idle(messages)
    return Burst(
        list(consumers.counts),
        sent["end"] - sent["start"],
        max(consumers.last_delivery_wall, sent["end"]) - sent["start"],
        int(sent["refused"]),
    )


async def throughput(consumers: Consumers, sends: int) -> tuple[float, float]:
    """Return (group_sends per second, fraction of deliveries that arrived)."""
    start = time.perf_counter()
    for seq in range(sends):
        await consumers.layer.group_send(GROUP, {"type": "bench.message", "seq": seq})
    rate = sends / (time.perf_counter() - start)
    await consumers.wait_idle(sends)
    return rate, sum(consumers.counts) / (sends * len(consumers.counts))


def quantile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Results:
    fanout: dict[int, list[float]] = field(default_factory=dict)
    fanout_lost: dict[int, int] = field(default_factory=dict)
    fanout_failed: dict[int, int] = field(default_factory=dict)
    bursts: list[Burst | None] = field(default_factory=list)
    child_bursts: list[Burst | None] = field(default_factory=list)
    rates: list[tuple[float, float] | None] = field(default_factory=list)


async def measure(name: str, url: str, args: argparse.Namespace, results: Results) -> None:
    cls = LAYERS[name]
    counter = 0

    def make_layer() -> tuple[Any, str]:
        nonlocal counter
        counter += 1
        prefix = f"bench_layers_{os.getpid()}_{counter}_"
        return cls(hosts=[url], prefix=prefix), prefix

    for n in FANOUT_SIZES:
        got = await with_consumers(make_layer, n, lambda c: fanout(c, args.sends))
        if got is None:
            results.fanout_failed[n] = results.fanout_failed.get(n, 0) + 1
            continue
        results.fanout.setdefault(n, []).extend(got[0])
        results.fanout_lost[n] = results.fanout_lost.get(n, 0) + got[1]
    results.bursts.append(
        await with_consumers(make_layer, BURST_CONSUMERS, lambda c: burst(c, args.burst))
    )
    results.child_bursts.append(
        await with_consumers(
            make_layer, BURST_CONSUMERS, lambda c: burst_from_child(c, name, url, args.burst)
        )
    )
    results.rates.append(
        await with_consumers(
            make_layer, THROUGHPUT_CONSUMERS, lambda c: throughput(c, args.throughput_sends)
        )
    )


def fanout_cell(results: Results, n: int) -> str:
    values = results.fanout.get(n, [])
    if not values:
        return "timed out"
    cell = f"{quantile(values, 50):.2f} / {quantile(values, 99):.2f} ms"
    if results.fanout_lost.get(n):
        cell += f" ({results.fanout_lost[n]} deliveries lost)"
    if results.fanout_failed.get(n):
        cell += f" ({results.fanout_failed[n]} rounds timed out)"
    return cell


def burst_cells(bursts: list[Burst | None], messages: int) -> tuple[str, str, str]:
    runs = [b for b in bursts if b is not None]
    if not runs:
        return "timed out", "timed out", "timed out"
    per_consumer = [count for run in runs for count in run.counts]
    received = f"{min(per_consumer):,}-{max(per_consumer):,} of {messages:,}"
    expected = messages * BURST_CONSUMERS
    losses = [expected - sum(run.counts) for run in runs]
    lost = " / ".join(f"{loss:,} ({100 * loss / expected:.1f}%)" for loss in losses)
    refused = [run.refused for run in runs]
    if any(refused):
        lost += " [sends refused at Redis: " + " / ".join(f"{r:,}" for r in refused) + "]"
    times = " / ".join(f"{run.deliver_s:.2f} s (sent in {run.send_s:.2f} s)" for run in runs)
    return received, lost, times


def rate_cell(results: Results) -> str:
    runs = [r for r in results.rates if r is not None]
    if not runs:
        return "timed out"
    rates = [rate for rate, _ in runs]
    delivered = min(fraction for _, fraction in runs)
    return (
        f"{statistics.median(rates):,.0f}/s (range {min(rates):,.0f}-{max(rates):,.0f}; "
        f">= {100 * delivered:.0f}% delivered)"
    )


def machine_line(server_version: str) -> str:
    binary = shutil.which("redis-server")
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        local = out.stdout.strip().split(" sha=")[0]
    else:
        local = "redis-server not on PATH"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"Machine: nproc={cpus}, Python {platform.python_version()} ({sys.platform}), "
        f"channels {version('channels')}, channels-redis {version('channels-redis')}, "
        f"redis-py {version('redis')}; server measured: redis_version={server_version}; "
        f"`redis-server --version`: {local}."
    )


async def server_version(url: str) -> str:
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


def print_table(results: dict[str, Results], args: argparse.Namespace, server: str) -> None:
    core, pubsub = results["RedisChannelLayer"], results["RedisPubSubChannelLayer"]
    rows: list[tuple[str, str, str]] = []
    samples = args.sends * args.repeat
    for n in FANOUT_SIZES:
        label = f"Fan-out latency to last of N={n} consumers, p50 / p99 ({samples} sends)"
        rows.append((label, fanout_cell(core, n), fanout_cell(pubsub, n)))
    what = f"{args.burst:,} group_sends to N={BURST_CONSUMERS}"
    for where, attr in (
        ("sender in-process", "bursts"),
        ("sender in child process", "child_bursts"),
    ):
        core_burst = burst_cells(getattr(core, attr), args.burst)
        pubsub_burst = burst_cells(getattr(pubsub, attr), args.burst)
        for i, label in enumerate(
            (
                "received per consumer (min-max)",
                "deliveries lost, per run",
                "time to last delivery, per run",
            )
        ):
            rows.append((f"Burst ({where}) {what}: {label}", core_burst[i], pubsub_burst[i]))
    rows.append(
        (
            f"group_send throughput, N={THROUGHPUT_CONSUMERS} "
            f"({args.throughput_sends:,} sends, median of {args.repeat} runs)",
            rate_cell(core),
            rate_cell(pubsub),
        )
    )
    print("| Scenario | RedisChannelLayer | RedisPubSubChannelLayer |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(machine_line(server))
    print(
        "Sender and all consumers run in one process and one asyncio event loop (except the "
        "child-process burst); layers use their default settings (core: capacity=100, expiry=60 s)."
    )


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("channels_redis.core").addHandler(CAPACITY_DROPS)
    logging.getLogger("channels_redis.core").setLevel(logging.INFO)
    logging.getLogger("channels_redis.core").propagate = False
    server = await server_version(args.redis_url)
    results = {name: Results() for name in LAYERS}
    async with asyncio.timeout(args.timeout):
        for round_no in range(args.repeat):
            # Alternate the order so neither layer always runs on a "cold" Redis.
            order = list(LAYERS) if round_no % 2 == 0 else list(reversed(LAYERS))
            for name in order:
                print(f"round {round_no + 1}/{args.repeat}: {name}", file=sys.stderr)
                await measure(name, args.redis_url, args, results[name])
    print_table(results, args, server)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis to measure against (default: $REDIS_URL or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every scenario")
    parser.add_argument("--sends", type=int, default=20, help="fan-out sends per N per round")
    parser.add_argument("--burst", type=int, default=2000, help="messages in the burst")
    parser.add_argument(
        "--throughput-sends", type=int, default=1000, help="group_sends in the throughput test"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="hard limit for the whole run, seconds"
    )
    parser.add_argument(
        "--send-burst", nargs=3, metavar=("LAYER", "PREFIX", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.sends < 1 or args.burst < 1 or args.throughput_sends < 1:
        parser.error("counts must be positive")
    return args


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.send_burst:
        LAYER_NAME, PREFIX, COUNT = ARGS.send_burst
        print(json.dumps(asyncio.run(send_burst(LAYER_NAME, ARGS.redis_url, PREFIX, int(COUNT)))))
    else:
        asyncio.run(main(ARGS))
