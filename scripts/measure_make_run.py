"""Measure `make run` on the fresh-machine path: start-up, memory, latency, shutdown.

Starts `make run` twice on a temporary DEVSTACK_DIR with DATABASE_URL and REDIS_URL unset
(the first run creates the database, the second reuses it), and reports for each: seconds
until the banner, resident memory per process, psql-INSERT-to-WebSocket latency through
the whole pipeline, and seconds from Ctrl-C until every process is gone. It also times
redis-server alone, which is what running the listener inside the web process with the
in-memory layer would save.

    .venv/bin/python scripts/measure_make_run.py [--inserts 50]
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import psycopg
from websockets.sync.client import connect

from devstack.ports import free_port, wait_until
from devstack.redis import LocalRedis
from tests.test_make_run import MakeRun, gone, log_in

INSERT = (
    "INSERT INTO violation_ppedetections (camera_id, violation_date, violation_time, "
    "violation_image) VALUES (5, CURRENT_DATE, LOCALTIME(0), 'cam5/x.jpg')"
)


def rss_mb(process: psutil.Process, *, with_children: bool = False) -> float:
    """Resident memory of a process (and its children: PostgreSQL's backends), in MB."""
    total = process.memory_info().rss
    for child in process.children(recursive=True) if with_children else []:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend that just ended
            total += child.memory_info().rss
    return total / 2**20


def label(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    for name in ("listen_notify", "daphne", "redis-server", "devstack.run"):
        if name in command:
            return name
    return "postgres" if "postgres" in command else command[:40]


def measure_one(env: dict[str, str], log: Path, password: str | None, inserts: int) -> dict:
    started = time.monotonic()
    run = MakeRun(env, log)
    try:
        run.wait_for_banner()
        result = {"banner_s": time.monotonic() - started}
        password = password or run.value(r"Log in as \S+, password: (\S+)")
        processes = run.processes()
        result["rss_mb"] = {
            label(p): rss_mb(p, with_children=label(p) == "postgres") for p in processes
        }
        cookie = log_in(run.url, "demo", password)
        url = run.insert_command.split()[1].strip("'")
        ws_url = run.url.replace("http://", "ws://") + "ws/violations/"
        latencies = []
        with (
            connect(
                ws_url, origin=run.url.rstrip("/"), additional_headers={"Cookie": cookie}
            ) as ws,
            psycopg.connect(url, autocommit=True) as db,
        ):
            for _ in range(inserts):
                sent = time.perf_counter()
                db.execute(INSERT)
                while json.loads(ws.recv(timeout=10)).get("type") == "heartbeat":
                    pass  # proof of life, not the insert's event
                latencies.append((time.perf_counter() - sent) * 1000)
        result["latency_ms"] = latencies
        stopping = time.monotonic()
        run.ctrl_c()
        wait_until(lambda: gone(processes), timeout=60, what="every process to exit")
        result["stop_s"] = time.monotonic() - stopping
        return result | {"password": password}
    finally:
        if run.process.poll() is None:
            run.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=50)
    args = parser.parse_args()

    local = Path(tempfile.mkdtemp(prefix="devstack-measure-"))
    logs = Path(tempfile.mkdtemp(prefix="make-run-logs-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env |= {
        "DEVSTACK_DIR": str(local),
        "PORT": str(free_port()),
        "DJANGO_MEDIA_ROOT": str(local / "media"),
    }
    try:
        first = measure_one(env, logs / "first.log", None, args.inserts)
        second = measure_one(env, logs / "second.log", first["password"], args.inserts)
    finally:
        shutil.rmtree(local, ignore_errors=True)

    for name, result in (("first run (new database)", first), ("second run", second)):
        latencies = sorted(result["latency_ms"])
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(f"{name}:")
        print(
            f"  banner after {result['banner_s']:.1f} s; "
            f"stopped {result['stop_s']:.1f} s after Ctrl-C"
        )
        print(
            "  resident memory: "
            + ", ".join(f"{k} {v:.0f} MB" for k, v in result["rss_mb"].items())
        )
        print(
            f"  INSERT -> /ws/violations/ over {len(latencies)} inserts: "
            f"p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
            f"max {latencies[-1]:.1f} ms"
        )

    timings = []
    for _ in range(5):
        started = time.monotonic()
        redis = LocalRedis()
        timings.append(time.monotonic() - started)
        memory = psutil.Process(redis.process.pid).memory_info().rss / 2**20
        redis.stop()
    print(
        f"redis-server alone: ready in {statistics.median(timings) * 1000:.0f} ms (median of 5), "
        f"{memory:.0f} MB resident"
    )
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    )


if __name__ == "__main__":
    main()
