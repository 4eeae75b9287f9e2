"""`python -m bench` (`make bench`): every scenario for ours (Daphne; uvicorn) and the baseline.

    python -m bench                 # the full bench: docs/benchmarks.md, .png and .json
    python -m bench --quick         # tiny sizes, one run, into build/bench/ (the smoke test's)
    python -m bench --only latency --repeats 1
    python -m bench --before v1.2   # also v1.2's web side, fed by the current listener
    python -m bench --render-only   # the report and plot again, from the last run's JSON

Uses DATABASE_URL / REDIS_URL when set, else starts its own PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import math
import signal
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import procstat, report
from bench.baseline.schema import BASELINE_TABLES
from bench.driver import Writer, wait_until_delivering
from bench.scenarios import (
    FULL,
    QUICK,
    SCENARIOS,
    Bench,
    FeedLoad,
    Sizes,
    calibrate_ingest,
    run_all,
)
from bench.stack import (
    BEFORE,
    GRANIAN,
    OUR_TABLES,
    PROJECT_ROOT,
    Stack,
    Target,
    raise_open_files_limit,
    resolve_before,
)
from devstack.postgres import pgbench_binary

PACKAGES = [
    *("Django", "channels", "channels-redis", "daphne", "Twisted"),
    *("uvicorn", "uvloop", "h11", "websockets", "psycopg"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--repeats", type=int, help="runs per scenario and target")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="these scenarios")
    parser.add_argument(
        "--granian", action="store_true", help="ours under granian too (WEB_SERVER=granian)"
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="REF's web side too (Daphne, from a git worktree of REF), beside ours",
    )
    parser.add_argument("--output", type=Path, help="the Markdown report")
    parser.add_argument("--plot", type=Path, help="the PNG (default: beside the report)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: write the report and plot from the JSON beside the report",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = PROJECT_ROOT / ("build/bench" if args.quick else "docs") / "benchmarks.md"
    args.plot = args.plot or args.output.with_suffix(".png")
    args.json = args.output.with_suffix(".json")
    return args


_started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f} s] {message}", file=sys.stderr, flush=True)


def git_commit() -> str:
    def git(*argv: str) -> str:
        result = subprocess.run(["git", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


async def delivering(target: Target, writer: Writer) -> None:
    """wait_until_delivering, failing with the web process's log (e.g. an earlier commit's
    application that starts but cannot serve against the current schema)."""
    try:
        await wait_until_delivering(target, writer)
    except Exception as exc:  # whatever it is, its log says why
        tail = target.web.log()[-4000:]
        raise RuntimeError(
            f"{target.name}: {exc}\n--- {target.web.name}'s log ---\n{tail}"
        ) from exc


def machine(stack: Stack) -> dict[str, str]:
    info = procstat.machine()
    info |= {
        "PostgreSQL": stack.versions()["postgresql"],
        "Redis": stack.versions()["redis"],
        **{name: version(name) for name in PACKAGES},
        "pgbench": subprocess.run(
            [pgbench_binary(), "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "services": stack.services_note,
    }
    return info


def plain(value: Any) -> Any:
    """JSON without NaN (not JSON): None instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def run(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats, capacity_repeats=args.repeats)
    # SIGTERM cancels the run, so the `finally` below still stops every server it started.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    open_files = raise_open_files_limit()
    if open_files < sizes.capacity + 1000:
        log(f"warning: RLIMIT_NOFILE hard limit {open_files} is low for {sizes.capacity} sockets")
    before = resolve_before(args.before) if args.before else None  # a bad REF fails first
    started = time.monotonic()
    load_before = procstat.load_average()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    stack = Stack(workdir, before)
    writers: dict[str, Writer] = {}
    try:
        log(f"preparing services and the bench database (logs in {stack.logs})")
        stack.prepare()
        bench = Bench(stack, sizes, workdir, writers, {})
        if not args.only or "ingest" in args.only:
            # Before any listener runs: PostgreSQL's own rate, with nothing listening.
            for name, tables in (("ours", OUR_TABLES), ("baseline", BASELINE_TABLES)):
                bench.calibration[name] = await calibrate_ingest(bench, tables[0])
                log(f"notifying-commit rate with the {name} trigger: {bench.calibration[name]}")
        log("starting the servers")
        stack.start_servers(granian=args.granian)
        for name, target in stack.targets.items():
            writers[name] = await Writer.connect(stack.database_url, target.tables)
        # Side by side: each waits mostly for its own web process's first subscription.
        targets = stack.targets.items()
        await asyncio.gather(*(delivering(t, writers[n]) for n, t in targets))
        log("every target delivers")
        extra = ((GRANIAN,) if args.granian else ()) + ((BEFORE,) if before else ())
        results = await run_all(bench, args.only, log=log, extra_targets=extra)
        info = machine(stack)
    finally:
        for writer in writers.values():
            await writer.close()
        stack.close()

    meta = {
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "duration": f"{(time.monotonic() - started) / 60:.1f} min",
        "load_before": load_before,
        "load_after": procstat.load_average(),
        "quick": args.quick,
    }
    if before:
        meta["before"] = before[:7]  # the report's name for the earlier commit
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            plain(
                {
                    "sizes": dataclasses.asdict(sizes),
                    "meta": meta,
                    "machine": info,
                    "calibration": bench.calibration,
                    "results": results,
                }
            ),
            indent=1,
        )
    )
    write_report(args)


def write_report(args: argparse.Namespace) -> None:
    """The Markdown report and the plot, from the JSON of a run."""
    data = json.loads(args.json.read_text())
    sizes = Sizes(
        **{
            k: FeedLoad(**v) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v
            for k, v in data["sizes"].items()
        }
    )
    results = restore_nan(data["results"])
    report.plot(results, args.plot, sizes, data.get("calibration", {}), data["meta"].get("before"))
    args.output.write_text(
        report.render(
            results,
            sizes=sizes,
            meta=data["meta"],
            machine=data["machine"],
            plot_name=args.plot.name
            if args.plot.parent == args.output.parent
            else str(args.plot.resolve()),
            notes=report.existing_notes(args.output),
            quick=data["meta"].get("quick", False),
            calibration=data.get("calibration", {}),
        )
    )
    log(f"wrote {args.output}, {args.plot} and {args.json}")


def restore_nan(value: Any) -> Any:
    """JSON's None back to NaN for figures (errors stay strings)."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: restore_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_nan(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render_only:
        write_report(args)
    else:
        try:
            asyncio.run(run(args))
        except asyncio.CancelledError:
            log("stopped (SIGTERM); every server it started is stopped")
            sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
