"""docs/benchmarks.md and its plot, from the figures of every run.

Each cell is the median over the repeated runs. Everything below `NOTES_MARKER` in an
existing report (the hand-written analysis) is kept when the report is written anew.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats
from bench.scenarios import WEB_SCENARIOS, WRITERS_CLIENTS, Sizes
from bench.stack import BEFORE, GRANIAN  # only in a run with --before, --granian

Results = dict[str, dict[str, list[dict[str, Any]]]]
NOTES_MARKER = "<!-- Everything below this line is kept when `make bench` rewrites the file. -->"

Medians = dict[str, float]


# Counts of things that must never happen: the worst run's, never a median that hides it.
WORST_OF_RUNS = {
    "lost",
    "duplicates",
    "closed_early",
    "failed_to_open",
    "burst_lost",
    "sustained_lost",
}


TRIGGERS = {"ours": "our trigger", "baseline": "the baseline's `row_to_json` trigger"}

# Every target a run may hold, in the report's order. Runs written before uvicorn was
# measured have no "ours-uvicorn": its column and lines are left out for them.
UVICORN = "ours-uvicorn"
TARGET_LABELS = {
    "ours": "ours",
    BEFORE: "ours before",
    UVICORN: "ours (uvicorn)",
    GRANIAN: "ours (granian)",
    "baseline": "baseline",
    "raw": "raw loop",
}


def highest_commit_rate(results: Results, calibration: dict[str, dict[str, Any]]) -> float:
    """ "The highest notifying-commit rate PostgreSQL reaches here": the best of every pgbench
    run of the bench, with either trigger, with nothing listening (calibration) or beside
    a running pipeline (ingest). On a shared machine any single run may be slowed down."""
    rates = [t["tps"] for c in calibration.values() for t in c.get("tries", [])]
    rates += [rate for c in calibration.values() for rate in c.get("runs", [])]
    rates += [
        run["sustained_commit_rate"]
        for runs in results.get("ingest", {}).values()
        for run in runs
        if "error" not in run
    ]
    return max(rates, default=math.nan)


def derive_all(results: Results, calibration: dict[str, dict[str, Any]]) -> Results:
    """Figures computed from the measured ones (in one place, so old JSON files get them)."""
    highest = highest_commit_rate(results, calibration)
    derived = {scenario: dict(by) for scenario, by in results.items()}
    if "ingest" in results:
        derived["ingest"] = {
            target: [
                run
                if "error" in run
                else run | {"highest_commit_rate": highest, "ratio": run["drain_rate"] / highest}
                for run in runs
            ]
            for target, runs in results["ingest"].items()
        }
    return derived


def medians(runs: list[dict[str, Any]]) -> Medians:
    """Median of every numeric figure over the runs that did not fail (the worst run's
    count for losses, see WORST_OF_RUNS)."""
    good = [run for run in runs if "error" not in run]
    keys = {k for run in good for k, v in run.items() if isinstance(v, int | float)}
    return {
        k: (max if k in WORST_OF_RUNS else stats.median)(run[k] for run in good if k in run)
        for k in sorted(keys)
    }


def spread(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [run[key] for run in runs if "error" not in run and key in run]
    values = [v for v in values if not math.isnan(v)]
    return (min(values), max(values)) if values else (math.nan, math.nan)


def ms(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def times(value: float, bar: float) -> str:
    return f"{value / bar:.1f}× the bar"


def losses(m: Medians) -> str:
    lost, dup = m.get("lost", 0), m.get("duplicates", 0)
    text = ""
    if lost or dup:
        text += f" · **{lost:,.0f} lost, {dup:,.0f} duplicated** of {m.get('expected', 0):,.0f}"
    return text + closed(m)


def closed(m: Medians) -> str:
    """Sockets the server closed mid-run (e.g. a consumer that crashed)."""
    count = m.get("closed_early", 0)
    return f" · **{count:,.0f} sockets closed by the server**" if count else ""


def exact(m: Medians) -> bool:
    return m.get("lost", 0) == 0 and m.get("duplicates", 0) == 0


@dataclass
class Row:
    key: str
    title: Callable[[Sizes], str]
    bar: str
    cell: Callable[[Medians, dict[str, Medians]], str]
    met: Callable[[Medians, dict[str, Medians]], tuple[bool, str]]


def _latency_met(m: Medians, _: dict[str, Medians]) -> tuple[bool, str]:
    misses = []
    if m["p50_ms"] > 3:
        misses.append(f"p50 {ms(m['p50_ms'])} = {times(m['p50_ms'], 3)}")
    if m["p99_ms"] > 10:
        misses.append(f"p99 {ms(m['p99_ms'])} = {times(m['p99_ms'], 10)}")
    if not exact(m):
        misses.append("events lost")
    return not misses, "; ".join(misses)


def _fanout_met(m: Medians, _: dict[str, Medians]) -> tuple[bool, str]:
    misses = []
    if m["last_p99_ms"] > 100:
        misses.append(f"p99 {ms(m['last_p99_ms'])} = {times(m['last_p99_ms'], 100)}")
    if not exact(m):
        misses.append("events lost")
    return not misses, "; ".join(misses)


def _overload_met(m: Medians, _: dict[str, Medians]) -> tuple[bool, str]:
    misses = []
    if not exact(m):
        misses.append(f"{m['lost']:,.0f} lost, {m['duplicates']:,.0f} duplicated")
    if m["p99_ms"] > 250:
        misses.append(f"p99 {ms(m['p99_ms'])} = {times(m['p99_ms'], 250)}")
    return not misses, "; ".join(misses)


def _ingest_met(m: Medians, _: dict[str, Medians]) -> tuple[bool, str]:
    misses = []
    if m["ratio"] < 1:
        misses.append(f"drains {m['ratio']:.2f}× the commit rate")
    if m["burst_lost"] or m["sustained_lost"]:
        misses.append("events lost")
    return not misses, "; ".join(misses)


def _capacity_met(m: Medians, _: dict[str, Medians]) -> tuple[bool, str]:
    misses = []
    if m["kb_per_connection"] > 30:
        misses.append(
            f"{m['kb_per_connection']:.1f} kB = {times(m['kb_per_connection'], 30)} per socket"
        )
    if m["failed_to_open"]:
        misses.append(f"{m['failed_to_open']:,.0f} sockets failed to open")
    return not misses, "; ".join(misses)


def _cost_ratio(m: Medians, others: dict[str, Medians]) -> float:
    raw = others.get("raw", {}).get("us_per_frame", math.nan)
    # The raw loop may use less than one clock tick (10 ms) in a tiny run: no ratio then.
    return m["us_per_frame"] / raw if raw else math.nan


def _cost_met(m: Medians, others: dict[str, Medians]) -> tuple[bool, str]:
    ratio = _cost_ratio(m, others)
    if ratio <= 5:
        return True, ""
    return False, f"{ratio:.1f}× raw = {ratio / 5:.1f}× the bar"


def _cost_cell(m: Medians, others: dict[str, Medians]) -> str:
    raw = others.get("raw", {}).get("us_per_frame", math.nan)
    parts = ", ".join(
        f"{role} {m[f'{role}_us_per_frame']:.0f}"
        for role in ("daphne", "uvicorn", "granian", "listener")
        if f"{role}_us_per_frame" in m
    )
    ratio = _cost_ratio(m, others)
    times_raw = "n/a" if math.isnan(ratio) else f"{ratio:.1f}×"
    return (
        f"{m['us_per_frame']:.0f} µs/frame ({parts}) = **{times_raw}** "
        f"the raw loop's {raw:.1f} µs/frame{losses(m)}"
    )


def _writers_ratios(m: Medians, others: dict[str, Medians]) -> tuple[float, float]:
    """Ours against the recipe's trigger: commits/s (higher is better) and the statement's
    time (lower is better), each a ratio of the medians of alternating runs."""
    recipe = others.get("baseline", {})
    commits = m["commits_per_s"] / recipe.get("commits_per_s", math.nan)
    statement = m["statement_s"] / recipe.get("statement_s", math.nan)
    return commits, statement


def _writers_met(m: Medians, others: dict[str, Medians]) -> tuple[bool, str]:
    commits, statement = _writers_ratios(m, others)
    misses = []
    if not commits >= 0.85:
        misses.append(f"commits/s {commits:.2f}× the recipe's")
    if not statement <= 1.0:
        misses.append(f"statement {statement:.2f}× the recipe's time")
    return not misses, "; ".join(misses)


def _writers_cell(m: Medians, others: dict[str, Medians]) -> str:
    text = (
        f"{m['commits_per_s']:,.0f} commits/s · {m['statement_rows']:,.0f} rows in "
        f"{ms(m['statement_s'] * 1000)} (triggers {ms(m['statement_trigger_s'] * 1000)}, "
        f"{m['statement_trigger_calls']:,.0f} calls)"
    )
    if "baseline" in others and m != others["baseline"]:  # not the recipe's own cell
        commits, statement = _writers_ratios(m, others)
        text = f"**{commits:.2f}×** commits/s, **{statement:.2f}×** time: " + text
    return text


ROWS = [
    Row(
        "latency",
        lambda s: (
            f"latency, commit → frame received, {s.latency.clients} clients, "
            f"{s.latency.rate:g} events/s ({s.latency.events:,} events)"
        ),
        "p50 ≤ 3 ms, p99 ≤ 10 ms",
        lambda m, _: f"p50 {ms(m['p50_ms'])} · p99 {ms(m['p99_ms'])}{losses(m)}",
        _latency_met,
    ),
    Row(
        "fanout",
        lambda s: (
            f"fan-out, {s.fanout.clients:,} clients, {s.fanout.rate:g} event/s "
            f"({s.fanout.events} events)"
        ),
        "last client has it: p99 ≤ 100 ms",
        lambda m, _: (
            f"last client p99 {ms(m['last_p99_ms'])} (p50 {ms(m['last_p50_ms'])}){losses(m)}"
        ),
        _fanout_met,
    ),
    Row(
        "overload",
        lambda s: (
            f"overload, {s.overload.clients} clients × {s.overload.rate:g} events/s "
            f"({s.overload.events:,} events)"
        ),
        "nothing lost, counts exact, p99 ≤ 250 ms",
        lambda m, _: (
            f"{m['lost']:,.0f} lost, {m['duplicates']:,.0f} duplicated of "
            f"{m['expected']:,.0f} · p99 {ms(m['p99_ms'])} · all in {ms(m['drain_ms'])} "
            f"after the last write{closed(m)}"
        ),
        _overload_met,
    ),
    Row(
        "ingest",
        lambda s: (
            f"ingest: {s.burst_rows:,} rows in one commit, drained to a socket, vs the "
            "notifying-commit rate pgbench reaches"
        ),
        "listener keeps up with the highest notifying-commit rate (ratio ≥ 1)",
        lambda m, _: (
            f"**{m['ratio']:.2f}×** ({m['drain_rate']:,.0f} events/s vs "
            f"{m['highest_commit_rate']:,.0f} commits/s) · under pgbench: "
            f"{m['sustained_lost']:,.0f} of {m['sustained_rows']:,.0f} lost, "
            f"{ms(m['sustained_lag_ms'])} behind at the end"
            + (f" · burst: **{m['burst_lost']:,.0f} lost**" if m["burst_lost"] else "")
        ),
        _ingest_met,
    ),
    Row(
        "capacity",
        lambda s: f"capacity, {s.capacity:,} idle WebSocket connections on one web process",
        "≤ 30 kB marginal memory each",
        lambda m, _: (
            f"{m['kb_per_connection']:.1f} kB per connection ({m['connections']:,.0f} open"
            + (f", **{m['failed_to_open']:,.0f} failed**" if m["failed_to_open"] else "")
            + f") · one event to all: last in {ms(m['one_event_last_ms'])}"
            + (
                f", **{m['connections'] - m['one_event_delivered']:,.0f} never got it**"
                if m["one_event_delivered"] < m["connections"]
                else ""
            )
            + closed(m)
        ),
        _capacity_met,
    ),
    Row(
        "cost",
        lambda s: (
            f"cost per delivered frame, {s.cost.clients} clients × {s.cost.rate:g} events/s "
            "(listener + web process CPU)"
        ),
        "≤ 5× a raw `websockets` broadcast loop",
        _cost_cell,
        _cost_met,
    ),
    Row(
        "writers",
        lambda s: (
            f"writers: {WRITERS_CLIENTS} pgbench clients' single-row commits/s, and one "
            f"{s.writers_rows:,}-row `INSERT … SELECT`, ours vs the recipe's trigger "
            "(baseline column), alternating runs"
        ),
        "commits/s ≥ 0.85× the recipe's, the statement ≤ 1.0× its time",
        _writers_cell,
        _writers_met,
    ),
]


def cell(row: Row, runs: list[dict[str, Any]], others: dict[str, Medians]) -> str:
    errors = [run["error"] for run in runs if "error" in run]
    if len(errors) == len(runs):
        return f"failed: {errors[0]}"
    text = row.cell(medians(runs), others)
    if errors:
        text += f" ({len(errors)} of {len(runs)} runs failed: {errors[0]})"
    return text


def met(row: Row, runs: list[dict[str, Any]], others: dict[str, Medians]) -> str:
    if not any("error" not in run for run in runs):
        return "not measured"
    ok, why = row.met(medians(runs), others)
    return "yes" if ok else f"**no**: {why}"


def measured_uvicorn(results: Results) -> bool:
    return any(UVICORN in by_target for by_target in results.values())


def measured_before(results: Results) -> bool:
    return any(BEFORE in by_target for by_target in results.values())


def comparison_table(
    results: Results, sizes: Sizes, with_uvicorn: bool, before: str | None = None
) -> list[str]:
    """Ours with Daphne (the default, whose verdict the last column gives), the earlier
    commit `before` with Daphne and ours with uvicorn when measured, and the baseline,
    side by side."""
    columns = ["ours (Daphne, the default)"]
    columns += [f"ours before (`{before}`, Daphne)"] if before else []
    columns += ["ours (uvicorn)"] if with_uvicorn else []
    columns += ["baseline", "met? (ours with Daphne)"]
    lines = [
        "| scenario | bar | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in ROWS:
        if row.key not in results:
            continue
        by_target = results[row.key]
        others = {t: medians(runs) for t, runs in by_target.items()}
        cells = [cell(row, by_target["ours"], others)]
        if before:
            cells.append(before_cell(row, by_target, others))
        if with_uvicorn:
            cells.append(uvicorn_cell(row, by_target, others))
        baseline = cell(row, by_target["baseline"], others)
        if row.key == "cost" and "baseline" in others and "us_per_frame" in others["baseline"]:
            baseline = _cost_cell(others["baseline"], others)
        cells += [baseline, met(row, by_target["ours"], others)]
        lines.append(f"| {row.title(sizes)} | {row.bar} | " + " | ".join(cells) + " |")
    return lines


def uvicorn_cell(row: Row, by_target: dict[str, list], others: dict[str, Medians]) -> str:
    if UVICORN in by_target:
        return cell(row, by_target[UVICORN], others)
    if row.key == "ingest":
        return "the same listener as ours"
    if row.key == "writers":
        return "the same trigger as ours"
    return "not measured"


# Ingest and writers measure the triggers and the listener: the current ones, whose schema
# an earlier commit's listener would not run against.
NOT_BEFORE = "not measured: the database side and listener are the current ones"


def before_cell(row: Row, by_target: dict[str, list], others: dict[str, Medians]) -> str:
    if BEFORE in by_target:
        return cell(row, by_target[BEFORE], others)
    return NOT_BEFORE if row.key not in WEB_SCENARIOS else "not measured"


# Per scenario, the figure its bar is mostly about, to set uvicorn beside Daphne.
HEADLINES: dict[str, tuple[str, str, Callable[[float], str]]] = {
    "latency": ("p99", "p99_ms", ms),
    "fanout": ("last client p99", "last_p99_ms", ms),
    "overload": ("p99", "p99_ms", ms),
    "capacity": ("memory per socket", "kb_per_connection", lambda v: f"{v:.1f} kB"),
    "cost": ("CPU per frame", "us_per_frame", lambda v: f"{v:.0f} µs"),
}


def versus(
    others: dict[str, Medians], scenario: str, target: str, reference: str, label: str = ""
) -> str:
    """`target`'s headline figure, `reference`'s (`label` names it) and their ratio ("" if
    one is missing)."""
    name, key, show = HEADLINES[scenario]
    value = others.get(target, {}).get(key, math.nan)
    base = others.get(reference, {}).get(key, math.nan)
    if math.isnan(value) or math.isnan(base):
        return ""
    ratio = f" ({value / base:.2f}×)" if base else ""
    return f"{name} {show(value)} vs {show(base)}{label}{ratio}"


def uvicorn_lines(results: Results) -> list[str]:
    """What ours reaches with uvicorn as the web process, scenario by scenario."""
    lines = ["With uvicorn as the web process (`WEB_SERVER=uvicorn`), against the same bars:", ""]
    for row in ROWS:
        by_target = results.get(row.key, {})
        if row.key not in HEADLINES or UVICORN not in by_target:
            continue
        others = {t: medians(runs) for t, runs in by_target.items()}
        line = f"- {row.key}: bar met? {met(row, by_target[UVICORN], others)}"
        if figures := versus(others, row.key, UVICORN, "ours", " with Daphne"):
            line += f" · {figures}"
        lines.append(line)
    return lines


def before_lines(results: Results, before: str, commit: str) -> list[str]:
    """After (`commit`) against before (`before`), both under Daphne, scenario by scenario:
    the ratio is after / before."""
    lines = [f"Before and after: `{before}` → `{commit}`, both with Daphne (after / before):", ""]
    for row in ROWS:
        by_target = results.get(row.key, {})
        if row.key not in WEB_SCENARIOS:
            if row.key in results:
                lines.append(f"- {row.key}: {NOT_BEFORE}")
            continue
        if BEFORE not in by_target:
            continue
        others = {t: medians(runs) for t, runs in by_target.items()}
        figures = versus(others, row.key, "ours", BEFORE) or "n/a"
        lines.append(
            f"- {row.key}: {figures} · bar met? after: {met(row, by_target['ours'], others)}; "
            f"before: {met(row, by_target[BEFORE], others)}"
        )
    return lines


def render(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    *,
    sizes: Sizes,
    meta: dict[str, str],
    machine: dict[str, str],
    plot_name: str,
    notes: str,
    quick: bool,
    calibration: dict[str, dict[str, Any]],
) -> str:
    results = derive_all(results, calibration)
    lines = ["# Benchmarks", ""]
    if quick:
        lines += [
            "**Quick run** (`--quick`): tiny sizes that check the bench works; these numbers "
            "say nothing about performance.",
            "",
        ]
    lines += [
        f"Written by `make bench` on {meta['finished']} at commit `{meta['commit']}`, "
        f"in {meta['duration']}. Each figure is the median of {sizes.repeats} runs "
        f"({min(sizes.repeats, sizes.capacity_repeats)} for capacity), except counts of "
        "lost or duplicated events and closed sockets, which are the worst run's; the "
        "targets ran one after the other within each repeat, in rotating order, against "
        "the same PostgreSQL and Redis. Load average (1, 5, 15 min) "
        f"before: {meta['load_before']}, after: {meta['load_after']}.",
        "",
    ]
    with_uvicorn = measured_uvicorn(results)
    before = meta.get("before", "before") if measured_before(results) else None
    lines += comparison_table(results, sizes, with_uvicorn, before)
    if before:
        lines += ["", *before_lines(results, before, meta["commit"])]
    if with_uvicorn:
        lines += ["", *uvicorn_lines(results)]
    lines += ["", f"![ours and the baseline, scenario by scenario]({plot_name})", ""]
    lines += [
        "Ingest compares with the highest notifying-commit rate pgbench reached in this "
        f"run, {highest_commit_rate(results, calibration):,.0f}/s. With nothing listening "
        "(median of the best client count): "
        + "; ".join(
            f"{TRIGGERS.get(name, name)} {figures['tps']:,.0f}/s with {figures['clients']} clients"
            for name, figures in calibration.items()
        )
        + "; beside the running pipelines: `sustained_commit_rate` below.",
        "",
    ]
    if not calibration:
        lines = lines[:-2]
    lines += machine_section(machine) + method_section(with_uvicorn, before)
    lines += runs_section(results)
    lines += ["", NOTES_MARKER, notes.strip("\n"), ""]
    return "\n".join(lines)


def machine_section(machine: dict[str, str]) -> list[str]:
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        "",
    ]


def method_section(with_uvicorn: bool = True, before: str | None = None) -> list[str]:
    uvicorn = [
        "- **Ours (uvicorn)**: the same listener and application, served by uvicorn as "
        "`WEB_SERVER=uvicorn` starts it (`config/web_server.py`), with a login of its own. "
        "The one listener feeds both web processes: its CPU counts in the cost of each, "
        "as its share of a frame; ingest, the listener's scenario, is not repeated. Both "
        "web processes stay subscribed to the events throughout, so each target runs "
        "beside an idle sibling that still receives every event (as with several web "
        "processes in production)."
    ]
    earlier = [
        f"- **Ours before** (`python -m bench --before {before}`): commit `{before}`'s "
        "`config.asgi:application` under Daphne, from a git worktree of that commit, with "
        "the same database, Redis and channel-layer prefix and a login of its own: the "
        "current listener feeds it, so it measures that commit's web side (the same "
        "scenarios as uvicorn) against the current database side. Ingest and writers, "
        "which measure the triggers and the listener, are not repeated for it."
    ]
    return [
        "## How it is measured",
        "",
        "- **Ours**: `manage.py listen_notify` and Daphne serving `config.asgi:application` "
        "(production settings over plain http), clients on `/ws/violations/` with the "
        "session cookie of a user who logged in at `/accounts/login/`.",
        *(earlier if before else []),
        *(uvicorn if with_uvicorn else []),
        "- **Baseline**: the public recipe's design (`bench/baseline/`): a trigger "
        "NOTIFYing `row_to_json(NEW)`, a listener `group_send`ing each payload to one group, "
        "an `AsyncWebsocketConsumer` per client doing `json.dumps` and `send` per event, "
        "channels-redis's core `RedisChannelLayer` with its defaults, its own Daphne. No "
        "login check (that only makes it cheaper).",
        "- **Raw loop** (`bench/raw_broadcast.py`): one process, LISTEN and "
        "`websockets.broadcast()` of each payload: the floor for the cost ratio.",
        "- Every row carries `time.monotonic_ns()` taken just before its autocommit INSERT is "
        "sent; a client subtracts it from the time it read the frame (one clock, one "
        "machine). Latency therefore includes the INSERT and COMMIT themselves.",
        "- Clients are `websockets` asyncio clients, many per process, in 1–4 processes "
        "beside the servers: everything shares the same cores, as the issue asks.",
        "- Rows are written on a fixed schedule (a late write does not delay the next), "
        "spread over the three tables.",
        "- Fan-out: for each event, the latency of the last socket to receive it.",
        "- Ingest: pgbench with the best of several client counts, INSERTing into a "
        "table whose trigger NOTIFYs, nothing listening: PostgreSQL's notifying-commit rate. "
        "Then a burst of rows committed at once, and the rate at which they reach a "
        "socket: the ratio of the two. Then pgbench at full speed with the pipeline running "
        "on the same cores: rows lost and how far behind the socket is when pgbench stops.",
        "- Capacity: a fresh web process, a few warm-up sockets, then the rest; VmRSS "
        "(/proc/<pid>/status) after minus before, per added socket (kB = 1,000 bytes).",
        "- Cost: utime + stime (/proc/<pid>/stat) of the listener and the web process "
        "(the raw loop: its one process), from before the first write until they are idle "
        "again, divided by the frames the clients received. PostgreSQL and Redis are "
        "not counted.",
        f"- Writers: pgbench, {WRITERS_CLIENTS} clients, single-row autocommit INSERTs, "
        "into one of our tables with our listener running, and into a table of the same "
        "shape whose trigger is the recipe's `pg_notify(row_to_json(NEW))`, with a session "
        "LISTENing; then one `INSERT … SELECT` into each, timed to its commit (EXPLAIN "
        "ANALYZE, which also gives the triggers' time). The two alternate run by run on the "
        "same server; the ratios are of the medians. WAL bytes are the server's insert "
        "position before and after (cluster-wide, so an upper bound on a shared server).",
        "",
    ]


def runs_section(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    keys = {
        "latency": ["p50_ms", "p99_ms", "lost"],
        "fanout": ["last_p50_ms", "last_p99_ms", "lost"],
        "overload": ["p99_ms", "drain_ms", "lost", "duplicates"],
        "ingest": [
            "ratio",
            "drain_rate",
            "commit_rate",
            "sustained_commit_rate",
            "sustained_lost",
            "sustained_lag_ms",
        ],
        "capacity": ["kb_per_connection", "connections", "one_event_last_ms"],
        "cost": ["us_per_frame", "frames", "lost"],
        "writers": [
            "commits_per_s",
            "wal_bytes_per_commit",
            "other_commits_per_commit",
            "pipeline_cpu_ms_per_commit",
            "statement_s",
            "statement_trigger_s",
            "statement_wal_bytes",
        ],
    }
    targets = [t for t in TARGET_LABELS if any(t in by_target for by_target in results.values())]
    lines = [
        "## Spread over the runs",
        "",
        "Min–max of each run's figure (the tables above show medians); every run's figures "
        "are in the JSON file beside this one.",
        "",
        "| scenario | figure | " + " | ".join(TARGET_LABELS[t] for t in targets) + " |",
        "|---|---|" + "---|" * len(targets),
    ]
    for scenario, figures in keys.items():
        if scenario not in results:
            continue
        for key in figures:
            cells = []
            for target in targets:
                runs = results[scenario].get(target)
                if not runs:
                    cells.append("")
                    continue
                low, high = spread(runs, key)
                cells.append("n/a" if math.isnan(low) else f"{low:,.4g} – {high:,.4g}")
            lines.append(f"| {scenario} | {key} | " + " | ".join(cells) + " |")
    return lines


def existing_notes(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        if NOTES_MARKER in text:
            return text.split(NOTES_MARKER, 1)[1]
    return ""


def plot(
    results: Results,
    path: Path,
    sizes: Sizes,
    calibration: dict[str, dict[str, Any]],
    before: str | None = None,
) -> None:
    """One panel per scenario: ours (with Daphne, the earlier commit `before` and uvicorn
    when measured), the baseline (and the raw loop), the bar as a line."""
    results = derive_all(results, calibration)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("latency", "p99_ms", "latency p99 (ms)", 10, True),
        ("fanout", "last_p99_ms", "fan-out: last client p99 (ms)", 100, True),
        ("overload", "p99_ms", "overload p99 (ms)", 250, True),
        ("ingest", "ratio", "ingest: drain rate / commit rate", 1, False),
        ("capacity", "kb_per_connection", "memory per idle socket (kB)", 30, False),
        ("cost", "us_per_frame", "server CPU per frame (µs)", None, True),
        ("writers", "commits_per_s", "writers: single-row commits/s", None, False),
        ("writers", "statement_s", "writers: one bulk INSERT (s)", None, False),
    ]
    colours = {"ours": "#1b7837", BEFORE: "#762a83", UVICORN: "#7fbf7b", GRANIAN: "#a6dba0"}
    colours |= {"baseline": "#b2182b", "raw": "#7f7f7f"}
    ticks = {"ours": "ours", UVICORN: "ours\n(uvicorn)", GRANIAN: "ours\n(granian)"}
    ticks[BEFORE] = f"ours before\n({before or 'earlier'})"
    ticks |= {"baseline": "baseline", "raw": "raw"}
    figure, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    for axis, (scenario, key, title, bar, log) in zip(axes.flat, panels, strict=True):
        axis.set_title(title, fontsize=10)
        runs = results.get(scenario, {})
        names = [t for t in TARGET_LABELS if t in runs]
        values = [medians(runs[t]).get(key, math.nan) for t in names]
        low_high = [spread(runs[t], key) for t in names]
        errors = [
            [
                0 if math.isnan(v) else max(0, v - lo)
                for v, (lo, _) in zip(values, low_high, strict=True)
            ],
            [
                0 if math.isnan(v) else max(0, hi - v)
                for v, (_, hi) in zip(values, low_high, strict=True)
            ],
        ]
        axis.bar(
            [ticks[n] for n in names],
            [0 if math.isnan(v) else v for v in values],
            yerr=errors,
            color=[colours[n] for n in names],
            capsize=4,
        )
        for index, (name, value) in enumerate(zip(names, values, strict=True)):
            if math.isnan(value):
                continue
            label = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            lost = medians(runs[name]).get("lost", 0) + medians(runs[name]).get("burst_lost", 0)
            lost += medians(runs[name]).get("sustained_lost", 0)
            if lost:
                label += f"\n{lost:,.0f} lost"
            axis.annotate(
                label,
                (index, value),
                ha="left",
                va="bottom",
                fontsize=9,
                xytext=(4, 2),
                textcoords="offset points",
            )
        if scenario == "cost" and "raw" in runs:
            bar = 5 * medians(runs["raw"]).get(key, math.nan)
        if bar and not math.isnan(bar):
            axis.axhline(bar, color="black", linestyle="--", linewidth=1, label="bar")
            axis.legend(fontsize=8, loc="best")
        if log and all(v > 0 for v in values if not math.isnan(v)):
            axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
    servers = " (with Daphne, with uvicorn)" if measured_uvicorn(results) else ""
    earlier = f" and at {before or 'an earlier commit'}" if measured_before(results) else ""
    figure.suptitle(
        f"Ours{servers}{earlier} vs the public recipe's design (median of "
        f"{sizes.repeats} runs; whiskers: min–max; dashed: the bar)",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
