"""The scenarios of issue 6, each run against one target and returning that run's figures.

Every figure comes from what real clients received (`bench.clients`) and what the kernel
says about the server processes (`bench.procstat`); nothing is asked of the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import stats
from bench.baseline.schema import RECIPE_CHANNEL, RECIPE_TABLES
from bench.driver import Fleet, FleetResults, Writer, settle, wait_until_delivering
from bench.markers import new_tag
from bench.stack import Stack, Target
from devstack.postgres import pgbench_binary

Figures = dict[str, Any]


@dataclass(frozen=True)
class FeedLoad:
    clients: int
    rate: float  # events per second
    events: int


@dataclass(frozen=True)
class Sizes:
    repeats: int
    latency: FeedLoad
    fanout: FeedLoad
    overload: FeedLoad
    cost: FeedLoad
    ingest_client_counts: tuple[int, ...]  # pgbench -c values tried when calibrating
    calibrate_seconds: float
    ingest_seconds: float
    burst_rows: int
    capacity: int
    capacity_warm: int
    capacity_repeats: int  # each run opens `capacity` sockets: minutes through a login check
    drain_timeout: float  # after the last write, how long a run may take to deliver it all
    idle_timeout: float  # ...and how long without any delivery before it gives up
    # Writers: pgbench's single-row commits for this long, then one statement of this many
    # rows, per run; more runs than the others, as two triggers differ by tens of percent.
    writers_seconds: float = 10
    writers_rows: int = 50_000
    writers_repeats: int = 5


FULL = Sizes(
    repeats=3,
    latency=FeedLoad(clients=10, rate=100, events=2000),
    fanout=FeedLoad(clients=1000, rate=1, events=30),
    overload=FeedLoad(clients=100, rate=100, events=1000),
    cost=FeedLoad(clients=100, rate=20, events=200),
    ingest_client_counts=(2, 4, 8),
    calibrate_seconds=5,
    ingest_seconds=10,
    burst_rows=5000,
    capacity=10_000,
    capacity_warm=100,
    capacity_repeats=2,
    drain_timeout=120,
    idle_timeout=15,
)

QUICK = Sizes(
    repeats=1,
    latency=FeedLoad(clients=3, rate=50, events=20),
    fanout=FeedLoad(clients=20, rate=10, events=3),
    overload=FeedLoad(clients=5, rate=100, events=50),
    cost=FeedLoad(clients=5, rate=50, events=20),
    ingest_client_counts=(2,),
    calibrate_seconds=1,
    ingest_seconds=1,
    burst_rows=200,
    capacity=40,
    capacity_warm=10,
    capacity_repeats=1,
    drain_timeout=20,
    idle_timeout=3,
    writers_seconds=1,
    writers_rows=500,
    writers_repeats=1,
)


@dataclass
class Bench:
    stack: Stack
    sizes: Sizes
    workdir: Path
    writers: dict[str, Writer]
    calibration: dict[str, Figures]

    def all_server_pids(self) -> list[int]:
        return [pid for t in self.stack.targets.values() for pid in t.server_pids()]


async def run_feed(bench: Bench, target: Target, load: FeedLoad) -> tuple[FleetResults, list[int]]:
    """`load.clients` sockets, `load.events` events at `load.rate`/s; what they received."""
    tag = new_tag()
    fleet = Fleet(bench.workdir)
    try:
        await fleet.open(target, load.clients, tag, expect=load.events)
        sent = await bench.writers[target.name].paced(tag, load.events, load.rate)
        await fleet.wait(within=bench.sizes.drain_timeout, idle_timeout=bench.sizes.idle_timeout)
    finally:
        results = await fleet.stop()
    return results, sent


def delivery_figures(results: FleetResults, load: FeedLoad) -> Figures:
    delivered = stats.delivery(results.seqs(), range(load.events))
    return {
        "sockets": results.opened,
        "failed_to_open": results.failed,
        "closed_early": results.closed_early(),
        "expected": delivered.expected,
        "delivered": delivered.delivered,
        "lost": delivered.lost + load.events * results.failed,
        "duplicates": delivered.duplicates,
    }


def sent_rate(sent: list[int]) -> float:
    return (len(sent) - 1) / ((sent[-1] - sent[0]) / 1e9) if len(sent) > 1 else 0.0


async def latency(bench: Bench, target: Target) -> Figures:
    load = bench.sizes.latency
    results, sent = await run_feed(bench, target, load)
    latencies = results.latencies_ms()
    return delivery_figures(results, load) | {
        "p50_ms": stats.percentile(latencies, 50),
        "p99_ms": stats.percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "sent_per_s": sent_rate(sent),
    }


async def fanout(bench: Bench, target: Target) -> Figures:
    load = bench.sizes.fanout
    results, sent = await run_feed(bench, target, load)
    # A socket the server closed is counted in "lost" and "closed_early"; the others say
    # how long the last client waited.
    last = stats.last_client_latencies(results.events(still_open=True), range(load.events))
    return delivery_figures(results, load) | {
        "last_p50_ms": stats.percentile(last, 50),
        "last_p99_ms": stats.percentile(last, 99),
        "sent_per_s": sent_rate(sent),
    }


async def overload(bench: Bench, target: Target) -> Figures:
    load = bench.sizes.overload
    results, sent = await run_feed(bench, target, load)
    latencies = results.latencies_ms()
    last_receive_ms = max(
        (sent[seq] / 1e6 + ms for events in results.events() for seq, ms in events),
        default=float("nan"),
    )
    return delivery_figures(results, load) | {
        "p50_ms": stats.percentile(latencies, 50),
        "p99_ms": stats.percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        # How long after the last write the last client had everything it got.
        "drain_ms": last_receive_ms - sent[-1] / 1e6,
        "sent_per_s": sent_rate(sent),
    }


# --- ingest ------------------------------------------------------------------------------

PGBENCH_SCRIPT = """\\set cam random(1, 50)
INSERT INTO {table} (camera_id, violation_date, violation_time, violation_image)
VALUES (:cam, current_date, localtime, '/bench/{tag}-0-0.jpg');
"""


async def pgbench(bench: Bench, table: str, clients: int, seconds: float, tag: str) -> Figures:
    """Notifying commits as fast as PostgreSQL takes them: pgbench INSERTs into `table`,
    whose trigger NOTIFYs on every commit."""
    script = bench.workdir / f"pgbench-{tag}.sql"
    script.write_text(PGBENCH_SCRIPT.format(table=f'"{table}"', tag=tag))
    argv = [
        pgbench_binary(),
        "--no-vacuum",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--time={max(1, round(seconds))}",
        f"--file={script}",
        bench.stack.database_url,
    ]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await asyncio.wait_for(process.communicate(), seconds + 60))[0].decode()
    tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    done = re.search(r"actually processed: (\d+)", output)
    if process.returncode != 0 or tps is None or done is None:
        raise RuntimeError(f"pgbench failed ({process.returncode}):\n{output}")
    return {"clients": clients, "tps": float(tps[1]), "transactions": int(done[1])}


async def calibrate_ingest(bench: Bench, table: str) -> Figures:
    """The highest notifying-commit rate PostgreSQL reaches here, with nothing listening:
    the best pgbench client count, then that count run `repeats` times (median)."""
    sizes = bench.sizes
    tries = []
    if len(sizes.ingest_client_counts) > 1:
        tries = [
            await pgbench(bench, table, clients, sizes.calibrate_seconds, "calibrate")
            for clients in sizes.ingest_client_counts
        ]
    best = max(tries, key=lambda t: t["tps"])["clients"] if tries else sizes.ingest_client_counts[0]
    runs = [
        (await pgbench(bench, table, best, sizes.ingest_seconds, "calibrate"))["tps"]
        for _ in range(sizes.repeats)
    ]
    return {"clients": best, "tps": stats.median(runs), "runs": runs, "tries": tries}


async def ingest(bench: Bench, target: Target) -> Figures:
    """Can the pipeline drain notifications faster than PostgreSQL can commit them?

    Burst: `burst_rows` rows committed in one transaction, all announced at the commit;
    the rate at which they reach a socket is the pipeline's drain rate, compared (in the
    report) with the highest commit rate pgbench reached. Sustained: pgbench at full speed
    for `ingest_seconds` with the pipeline running beside it on the same cores; how far
    behind it is at the end, and whether every row arrived."""
    sizes = bench.sizes
    writer = bench.writers[target.name]
    table = sql.Identifier(target.tables[0])

    tag = new_tag()
    fleet = Fleet(bench.workdir)
    try:
        await fleet.open(target, 1, tag, expect=sizes.burst_rows)
        async with writer.conn.transaction():
            await writer.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (camera_id, violation_date, violation_time, violation_image)"
                    " SELECT g %% 50 + 1, current_date, localtime, '/bench/' || %s || '-' || g"
                    " || '-0.jpg' FROM generate_series(0, %s) AS g"
                ).format(table),
                (tag, sizes.burst_rows - 1),
            )
            committed_ns = time.monotonic_ns()  # COMMIT is sent as the block ends
        await fleet.wait(within=sizes.drain_timeout, idle_timeout=sizes.idle_timeout)
    finally:
        burst = await fleet.stop()
    received_ns = [ns for s in burst.sockets for ns in s["latencies_ns"]]  # sent_ns == 0
    burst_seconds = (max(received_ns) - committed_ns) / 1e9 if received_ns else float("nan")
    burst_lost = stats.delivery(burst.seqs(), range(sizes.burst_rows)).lost

    tag = new_tag()
    calibration = bench.calibration[target.name]
    fleet = Fleet(bench.workdir)
    try:
        await fleet.open(target, 1, tag, expect=0)
        load = await pgbench(
            bench, target.tables[0], calibration["clients"], sizes.ingest_seconds, tag
        )
        ended_ns = time.monotonic_ns()
        rows = (
            await (
                await writer.conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE violation_image = %s").format(table),
                    (f"/bench/{tag}-0-0.jpg",),
                )
            ).fetchone()
        )[0]
        await fleet.wait(
            until=lambda: fleet.total_received >= rows,
            within=sizes.drain_timeout,
            idle_timeout=sizes.idle_timeout,
        )
    finally:
        sustained = await fleet.stop()
    sustained_ns = [ns for s in sustained.sockets for ns in s["latencies_ns"]]
    received = len(sustained_ns)
    drain_rate = (sizes.burst_rows - burst_lost) / burst_seconds
    return {
        "commit_rate": calibration["tps"],
        "pgbench_clients": calibration["clients"],
        "burst_rows": sizes.burst_rows,
        "burst_lost": burst_lost,
        "burst_seconds": burst_seconds,
        "drain_rate": drain_rate,
        "sustained_commit_rate": load["tps"],
        "sustained_rows": rows,
        "sustained_lost": rows - received,
        "sustained_lag_ms": max(0.0, (max(sustained_ns, default=ended_ns) - ended_ns) / 1e6),
    }


# --- writers ----------------------------------------------------------------------------

WRITERS_CLIENTS = 4  # pgbench clients, as issue 16 measured


async def writers(bench: Bench, target: Target) -> Figures:
    """What a writer pays for the trigger: pgbench's single-row commits per second with
    `WRITERS_CLIENTS` clients, then the time of one `INSERT … SELECT` of `writers_rows`
    rows, statement and commit (EXPLAIN ANALYZE, which runs it, also gives the triggers'
    share). Ours: a violation table with our listener running; the baseline: a table of
    the same shape with the recipe's `pg_notify(row_to_json(NEW))` trigger and a session
    of the bench's own LISTENing and draining. WAL bytes are cluster-wide (an upper bound
    on a shared server); ours include the listener's numbering, a cost of every write."""
    sizes = bench.sizes
    recipe = target.name != "ours"
    table = RECIPE_TABLES[0] if recipe else target.tables[0]
    async with contextlib.AsyncExitStack() as stack:
        conn = await stack.enter_async_context(
            await psycopg.AsyncConnection.connect(bench.stack.database_url, autocommit=True)
        )
        if recipe:
            listening = await stack.enter_async_context(
                await psycopg.AsyncConnection.connect(bench.stack.database_url, autocommit=True)
            )
            await listening.execute(sql.SQL("LISTEN {}").format(sql.Identifier(RECIPE_CHANNEL)))
            drain = asyncio.create_task(_drain(listening))
            stack.callback(drain.cancel)
        tag = new_tag()
        pipeline = [] if recipe else target.servers  # the drain session costs next to nothing
        cpu_before = sum(server.cpu_seconds() for server in pipeline)
        wal_before, xacts_before = await _wal_lsn(conn), await _commits(conn)
        commits = await pgbench(bench, table, WRITERS_CLIENTS, sizes.writers_seconds, tag)
        done = commits["transactions"]
        wal_per_commit = (await _wal_lsn(conn) - wal_before) / done
        await settle([server.pid for server in pipeline])  # the listener's last batches
        cpu = sum(server.cpu_seconds() for server in pipeline) - cpu_before
        others = await _commits(conn) - xacts_before - done
        statement = await _timed_statement(conn, table, sizes.writers_rows, tag)
    return {
        "commits_per_s": commits["tps"],
        "commits": done,
        "wal_bytes_per_commit": wal_per_commit,
        # Per pgbench commit: other commits in this database (the listener's numbering,
        # the web processes' reads), and the CPU of our listener and web processes.
        "other_commits_per_commit": others / done,
        "pipeline_cpu_ms_per_commit": cpu * 1000 / done,
        **statement,
    }


async def _drain(conn: psycopg.AsyncConnection) -> None:
    async for _ in conn.notifies():
        pass


async def _commits(conn: psycopg.AsyncConnection) -> int:
    """Transactions committed in this database so far (the statistics flush once a second)."""
    await asyncio.sleep(1.1)
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    cursor = await conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    return int((await cursor.fetchone())[0])


async def _wal_lsn(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
    return int((await cursor.fetchone())[0])


async def _timed_statement(
    conn: psycopg.AsyncConnection, table: str, rows: int, tag: str
) -> Figures:
    """One autocommit `INSERT … SELECT` of `rows` rows: seconds to its commit, the
    triggers' share as EXPLAIN ANALYZE reports it, and WAL bytes written."""
    statement = sql.SQL(
        "EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO {} "
        "(camera_id, violation_date, violation_time, violation_image) "
        "SELECT g %% 50 + 1, current_date, localtime, '/bench/' || %s || '-' || g || '-0.jpg' "
        "FROM generate_series(1, %s) AS g"
    ).format(sql.Identifier(table))
    wal_before = await _wal_lsn(conn)
    started = time.perf_counter()
    cursor = await conn.execute(statement, (tag, rows))
    seconds = time.perf_counter() - started
    wal_bytes = await _wal_lsn(conn) - wal_before
    plan = (await cursor.fetchone())[0]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
    triggers = plan.get("Triggers", [])
    return {
        "statement_rows": rows,
        "statement_s": seconds,
        "statement_trigger_s": sum(t.get("Time", 0.0) for t in triggers) / 1000,
        "statement_trigger_calls": sum(t.get("Calls", 0) for t in triggers),
        "statement_wal_bytes": wal_bytes,
    }


# --- capacity ----------------------------------------------------------------------------


async def rss_kib(target: Target, samples: int = 3) -> float:
    """The median of `samples` readings of the web process's VmRSS, 0.2 s apart."""
    readings = [target.web.rss_kib()]
    for _ in range(samples - 1):
        await asyncio.sleep(0.2)
        readings.append(target.web.rss_kib())
    return stats.median(readings)


async def capacity(bench: Bench, target: Target) -> Figures:
    """Idle sockets on one fresh web process: its resident memory per extra socket, then one
    event to all of them."""
    sizes = bench.sizes
    target.restart()
    await wait_until_delivering(target, bench.writers[target.name])
    tag = new_tag()
    warm, rest = Fleet(bench.workdir), Fleet(bench.workdir)
    fleets = [warm, rest]
    try:
        await warm.open(target, sizes.capacity_warm, tag, 1, processes=1)
        await settle([target.web.pid])
        before = await rss_kib(target)
        await rest.open(target, sizes.capacity - sizes.capacity_warm, tag, 1)
        await settle([target.web.pid], quiet_cpu=0.1)
        after = await rss_kib(target)
        added = rest.opened
        await bench.writers[target.name].insert(tag, 0)
        await rest.wait(
            until=lambda: all(warm.complete) and all(rest.complete),
            within=sizes.drain_timeout,
            idle_timeout=sizes.idle_timeout,
        )
    finally:
        results = [await fleet.stop() for fleet in fleets]
    events = [e for r in results for e in r.events()]
    opened = sum(r.opened for r in results)
    last = stats.last_client_latencies(
        [e for r in results for e in r.events(still_open=True)], range(1)
    )
    return {
        "connections": opened,
        "failed_to_open": sizes.capacity - opened,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kb_per_connection": (after - before) * 1.024 / added if added else float("nan"),
        "closed_early": sum(r.closed_early() for r in results),
        "one_event_delivered": stats.delivery(
            [[s for s, _ in e] for e in events], range(1)
        ).delivered,
        "one_event_last_ms": last[0] if last else float("nan"),
    }


# --- cost per delivered frame ----------------------------------------------------------------


async def cost(bench: Bench, target: Target) -> Figures:
    """CPU the server processes spent (utime + stime of every thread, /proc) per frame the
    clients received, over a window that covers all the work the events caused."""
    load = bench.sizes.cost
    tag = new_tag()
    fleet = Fleet(bench.workdir)
    try:
        await fleet.open(target, load.clients, tag, expect=load.events)
        await settle(target.server_pids())
        before = {server.name: server.cpu_seconds() for server in target.servers}
        await bench.writers[target.name].paced(tag, load.events, load.rate)
        await fleet.wait(within=bench.sizes.drain_timeout, idle_timeout=bench.sizes.idle_timeout)
        await settle(target.server_pids())
        spent = {s.name: s.cpu_seconds() - before[s.name] for s in target.servers}
    finally:
        results = await fleet.stop()
    frames = results.tagged_frames()
    figures = delivery_figures(results, load) | {
        "frames": frames,
        "cpu_s": sum(spent.values()),
        "us_per_frame": sum(spent.values()) / frames * 1e6 if frames else float("nan"),
    }
    for name, seconds in spent.items():
        role = name.split("-", 1)[1]  # listener, daphne, uvicorn, broadcast
        figures[f"{role}_us_per_frame"] = seconds / frames * 1e6 if frames else float("nan")
    return figures


# Capacity last: it restarts the web process, and a process that has held and dropped
# 10,000 sockets is not the one the other scenarios should measure (see the notes in
# docs/benchmarks.md: it cost far more CPU per frame afterwards).
SCENARIOS = {
    "latency": latency,
    "fanout": fanout,
    "overload": overload,
    "ingest": ingest,
    "cost": cost,
    "writers": writers,
    "capacity": capacity,
}
# "ours-uvicorn" is our listener and application with uvicorn as the web process; ingest
# is the listener's scenario, the same for both. The raw broadcast loop only serves as the
# floor of the cost ratio.
TARGETS = {
    "latency": ("ours", "ours-uvicorn", "baseline"),
    "fanout": ("ours", "ours-uvicorn", "baseline"),
    "overload": ("ours", "ours-uvicorn", "baseline"),
    "ingest": ("ours", "baseline"),
    "capacity": ("ours", "ours-uvicorn", "baseline"),
    "cost": ("ours", "ours-uvicorn", "baseline", "raw"),
    # Our trigger against the recipe's ("baseline"): the web servers play no part.
    "writers": ("ours", "baseline"),
}
# The web process's scenarios, which another web process of ours (granian, `--before`'s
# commit) joins; ingest and writers measure the database side and the one listener.
WEB_SCENARIOS = ("latency", "fanout", "overload", "capacity", "cost")


def repeats_of(sizes: Sizes, scenario: str) -> int:
    if scenario == "writers":
        return sizes.writers_repeats
    return min(sizes.repeats, sizes.capacity_repeats) if scenario == "capacity" else sizes.repeats


def run_order(targets: tuple[str, ...], repeat: int) -> tuple[str, ...]:
    """The targets in the order run `repeat` (from 0) measures them: rotated by one place
    each repeat, so that over as many repeats as there are targets each one runs once in
    each place (two targets simply alternate)."""
    shift = repeat % len(targets)
    return targets[shift:] + targets[:shift]


async def run_all(
    bench: Bench,
    only: list[str] | None = None,
    log=print,
    extra_targets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every scenario, `repeats` times, targets side by side (their order rotating);
    `extra_targets` (more web processes of ours) join the WEB_SCENARIOS."""
    results: dict[str, dict[str, list[Figures]]] = {}
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        targets = TARGETS[name] + (extra_targets if name in WEB_SCENARIOS else ())
        results[name] = {t: [] for t in targets}
        repeats = repeats_of(bench.sizes, name)
        for repeat in range(repeats):
            for target_name in run_order(targets, repeat):
                target = bench.stack.targets[target_name]
                await settle(bench.all_server_pids())
                started = time.monotonic()
                try:
                    figures = await scenario(bench, target)
                except Exception as exc:  # one failed run is reported, the others still run
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
                figures["seconds"] = time.monotonic() - started
                results[name][target_name].append(figures)
                log(f"[{name}] {target_name} run {repeat + 1}/{repeats}: {figures}")
    return results
