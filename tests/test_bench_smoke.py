"""`make bench` in miniature: the quick bench runs against real servers and writes its report.

It starts everything the full bench does (our listener with Daphne and with uvicorn, the
baseline's listener and Daphne, the raw loop, fleets of WebSocket client processes,
pgbench) with tiny numbers, so a change that breaks the bench, or a pipeline that loses
events under either web server, fails here rather than in a long run.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.processes import PROJECT_ROOT

pytestmark = pytest.mark.slow

SCENARIO_ROWS = {
    "latency": "| latency, commit → frame received,",
    "fanout": "| fan-out,",
    "overload": "| overload,",
    "ingest": "| ingest:",
    "capacity": "| capacity,",
    "cost": "| cost per delivered frame,",
    "writers": "| writers:",
}


def run_bench(output, *options: str) -> None:
    """`python -m bench --quick` writing `output`, against the suite's servers; fails the
    test with the bench's log if it fails or takes over 100 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output), *options],
        cwd=PROJECT_ROOT,
        env=env,  # DATABASE_URL and REDIS_URL: the suite's servers
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = bench.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the bench stops the servers it started, then exits
        _, stderr = bench.communicate(timeout=30)
        pytest.fail(f"the quick bench took over 100 s:\n{stderr[-4000:]}")
    assert bench.returncode == 0, stderr[-4000:]


def test_the_quick_bench_reports_every_scenario_for_ours_and_the_baseline(tmp_path):
    output = tmp_path / "benchmarks.md"
    run_bench(output)

    report = output.read_text()
    for scenario, row_start in SCENARIO_ROWS.items():
        rows = [line for line in report.splitlines() if line.startswith(row_start)]
        assert len(rows) == 1, f"no {scenario} row in the report"
        assert "failed:" not in rows[0], rows[0]
        assert "not measured" not in rows[0], rows[0]
    assert "![ours and the baseline" in report
    assert "| ours (Daphne, the default) | ours (uvicorn) | baseline |" in report
    uvicorn_lines = [line for line in report.splitlines() if line.startswith("- ")]
    for scenario in ("latency", "fanout", "overload", "capacity", "cost"):
        assert any(line.startswith(f"- {scenario}: bar met? ") for line in uvicorn_lines)
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    results = json.loads((tmp_path / "benchmarks.json").read_text())["results"]
    assert set(results) == set(SCENARIO_ROWS)
    for target in ("ours", "ours-uvicorn"):
        for scenario in ("latency", "fanout", "overload", "cost"):
            (ours,) = results[scenario][target]
            assert ours["lost"] == 0, f"{target} lost events in {scenario}: {ours}"
            assert ours["duplicates"] == 0, f"{target} duplicated events in {scenario}: {ours}"
        (capacity,) = results["capacity"][target]
        assert capacity["failed_to_open"] == 0, target
        assert capacity["one_event_delivered"] == capacity["connections"], target
    assert "ours-uvicorn" not in results["ingest"]  # the listener's scenario: measured once
    ours, recipe = results["writers"]["ours"][0], results["writers"]["baseline"][0]
    assert ours["statement_trigger_calls"] == 1  # one statement, one trigger call
    assert recipe["statement_trigger_calls"] == ours["statement_rows"]
    assert ours["commits_per_s"] > 0
    assert recipe["commits_per_s"] > 0


def bench_worktrees() -> set[str]:
    """The git worktrees `--before` makes (`<workdir>/before-<commit>`) that exist now."""
    listing = subprocess.run(
        ["git", "worktree", "list", "--porcelain"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    paths = (line.removeprefix("worktree ") for line in listing.stdout.splitlines())
    return {path for path in paths if "/before-" in path}


def test_the_bench_sets_an_earlier_commits_web_side_beside_ours(tmp_path):
    output = tmp_path / "benchmarks.md"
    worktrees = bench_worktrees()
    run_bench(output, "--before", "HEAD", "--only", "fanout")

    report = output.read_text()
    assert "| ours (Daphne, the default) | ours before (`" in report
    assert any(line.startswith("- fanout: last client p99 ") for line in report.splitlines())
    (earlier,) = json.loads((tmp_path / "benchmarks.json").read_text())["results"]["fanout"][
        "ours-before"
    ]
    assert earlier["lost"] == 0, earlier
    assert earlier["duplicates"] == 0, earlier
    assert bench_worktrees() == worktrees  # its worktree is removed
