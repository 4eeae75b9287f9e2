"""bench: the pure parts of the benchmark (markers, percentiles, delivery counts, /proc)."""

import math

import pytest

from bench import procstat, report, scenarios, stats
from bench.clients import frame_position
from bench.markers import find_markers, marker


def test_a_marker_is_found_in_any_frame_that_carries_the_row():
    row = marker("ab12", 7, 123456789)
    ours = f'{{"op": "INSERT", "data": {{"violation_image": "{row}"}}}}'
    escaped = ours.replace("/", "\\/")  # JSON may escape slashes

    assert list(find_markers(ours.encode())) == [("ab12", 7, 123456789)]
    assert list(find_markers(escaped.encode())) == [("ab12", 7, 123456789)]


def test_every_marker_of_a_merged_frame_counts():
    frame = f'[{{"i": "{marker("t1", 1, 5)}"}}, {{"i": "{marker("t1", 2, 6)}"}}]'.encode()
    assert [seq for _, seq, _ in find_markers(frame)] == [1, 2]


def test_a_row_without_a_marker_is_not_an_event():
    assert list(find_markers(b'{"violation_image": "/media/x.jpg"}')) == []


def test_percentiles_interpolate():
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == pytest.approx(50.5)
    assert stats.percentile(values, 99) == pytest.approx(99.01)
    assert stats.percentile([3.0], 99) == 3.0
    assert math.isnan(stats.percentile([], 50))


def test_median_ignores_runs_without_the_figure():
    assert stats.median([1.0, math.nan, 3.0, None]) == 2.0
    assert math.isnan(stats.median([]))


def test_delivery_counts_lost_and_duplicated_events_per_socket():
    counted = stats.delivery([[0, 1, 2], [0, 2, 2], []], range(3))

    assert counted.expected == 9
    assert counted.delivered == 5
    assert counted.lost == 4
    assert counted.duplicates == 1
    assert not counted.exact


def test_events_of_other_runs_are_neither_delivered_nor_duplicates():
    counted = stats.delivery([[0, 1, 99]], range(2))
    assert (counted.delivered, counted.lost, counted.duplicates) == (2, 0, 0)


def test_the_last_client_decides_and_an_event_someone_missed_has_no_latency():
    sockets = [[(0, 1.0), (1, 5.0)], [(0, 3.0)], [(0, 2.0), (1, 1.0), (1, 9.0)]]
    assert stats.last_client_latencies(sockets, range(2)) == [3.0]


def test_cpu_ticks_are_read_after_a_command_name_with_spaces_and_parentheses():
    stat = "4242 (daphne (x) y) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 3 0 100 0 0"
    assert procstat.parse_cpu_ticks(stat) == 175


def test_resident_memory_is_read_from_status():
    status = "Name:\tdaphne\nVmPeak:\t  999 kB\nVmRSS:\t  91276 kB\nThreads:\t3\n"
    assert procstat.parse_rss_kib(status) == 91276
    with pytest.raises(ValueError, match="VmRSS"):
        procstat.parse_rss_kib("Name:\tzombie\n")


def test_this_process_can_be_measured():
    import os

    assert procstat.cpu_seconds(os.getpid()) > 0
    assert procstat.rss_kib(os.getpid()) > 1000


def test_the_report_takes_medians_of_the_runs_that_did_not_fail_but_the_worst_loss():
    runs = [
        {"p99_ms": 4.0, "lost": 0},
        {"error": "TimeoutError"},
        {"p99_ms": 8.0, "lost": 2},
        {"p99_ms": 5.0, "lost": 0},
    ]
    assert report.medians(runs) == {"p99_ms": 5.0, "lost": 2}


def test_a_missed_bar_says_by_how_much():
    row = next(r for r in report.ROWS if r.key == "latency")
    ok, why = row.met({"p50_ms": 1.5, "p99_ms": 25.0, "lost": 0, "duplicates": 0}, {})
    assert not ok
    assert why == "p99 25.0 ms = 2.5× the bar"


def test_the_cost_bar_is_a_ratio_to_the_raw_loop_of_the_same_run():
    row = next(r for r in report.ROWS if r.key == "cost")
    others = {"raw": {"us_per_frame": 20.0}}
    assert row.met({"us_per_frame": 90.0}, others) == (True, "")
    assert row.met({"us_per_frame": 150.0}, others) == (False, "7.5× raw = 1.5× the bar")


def test_hand_written_notes_survive_a_new_report(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# old table\n{report.NOTES_MARKER}\n## Analysis\nkept\n")
    assert report.existing_notes(path) == "\n## Analysis\nkept\n"
    assert report.existing_notes(tmp_path / "missing.md") == ""


def test_the_run_order_rotates_so_each_target_runs_once_in_each_place():
    targets = ("ours", "ours-uvicorn", "baseline")
    orders = [scenarios.run_order(targets, repeat) for repeat in range(3)]
    for place in range(3):
        assert sorted(order[place] for order in orders) == sorted(targets)
    # Two targets alternate, as they always did.
    assert [scenarios.run_order(("a", "b"), r) for r in range(3)] == [
        ("a", "b"),
        ("b", "a"),
        ("a", "b"),
    ]


def latency_run(p99_ms: float) -> dict:
    return {"p50_ms": 1.0, "p99_ms": p99_ms, "lost": 0, "duplicates": 0, "expected": 60}


def render(results: dict, **meta: str) -> str:
    """The report of `results` from a quick run; `meta` adds to or replaces its defaults."""
    return report.render(
        results,
        sizes=scenarios.QUICK,
        meta={"finished": "now", "commit": "abc", "duration": "1 min"}
        | {"load_before": "0", "load_after": "0"}
        | meta,
        machine={},
        plot_name="benchmarks.png",
        notes="",
        quick=True,
        calibration={},
    )


def render_latency(by_target: dict) -> str:
    return render({"latency": by_target})


def test_the_report_sets_uvicorn_beside_daphne_and_judges_the_default():
    text = render_latency(
        {
            "ours": [latency_run(20.0)],
            "ours-uvicorn": [latency_run(8.0)],
            "baseline": [latency_run(5.0)],
        }
    )
    header = next(line for line in text.splitlines() if line.startswith("| scenario | bar |"))
    assert header.split(" | ")[2:5] == ["ours (Daphne, the default)", "ours (uvicorn)", "baseline"]
    row = next(line for line in text.splitlines() if line.startswith("| latency,"))
    cells = row.strip("|").split(" | ")
    assert "p99 20.0 ms" in cells[2]
    assert "p99 8.00 ms" in cells[3]
    assert cells[5].strip() == "**no**: p99 20.0 ms = 2.0× the bar"  # Daphne's verdict
    assert "- latency: bar met? yes · p99 8.00 ms vs 20.0 ms with Daphne (0.40×)" in text


def test_a_run_from_before_uvicorn_renders_without_it():
    text = render_latency({"ours": [latency_run(20.0)], "baseline": [latency_run(5.0)]})
    assert "uvicorn" not in text
    row = next(line for line in text.splitlines() if line.startswith("| latency,"))
    assert len(row.strip("|").split(" | ")) == 5


def writers_run(commits_per_s: float) -> dict:
    return {
        "commits_per_s": commits_per_s,
        "statement_rows": 500,
        "statement_s": 0.1,
        "statement_trigger_s": 0.01,
        "statement_trigger_calls": 1,
    }


def test_the_report_sets_an_earlier_commit_beside_ours_and_gives_after_over_before():
    text = render(
        {
            "latency": {
                "ours": [latency_run(8.0)],
                "ours-before": [latency_run(20.0)],
                "baseline": [latency_run(5.0)],
            },
            # The database side's scenario: the earlier commit is not run in it.
            "writers": {"ours": [writers_run(900.0)], "baseline": [writers_run(1000.0)]},
        },
        commit="new1234",
        before="old5678",
    )
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| scenario | bar |"))
    assert header.split(" | ")[2:5] == [
        "ours (Daphne, the default)",
        "ours before (`old5678`, Daphne)",
        "baseline",
    ]
    latency = next(line for line in lines if line.startswith("| latency,")).strip("|").split(" | ")
    assert "p99 8.00 ms" in latency[2]
    assert "p99 20.0 ms" in latency[3]
    assert latency[5].strip() == "yes"  # the verdict is still the current commit's
    writers = next(line for line in lines if line.startswith("| writers:")).split(" | ")
    assert writers[3] == report.NOT_BEFORE
    assert "Before and after: `old5678` → `new1234`, both with Daphne (after / before):" in text
    assert (
        "- latency: p99 8.00 ms vs 20.0 ms (0.40×) · bar met? after: yes; "
        "before: **no**: p99 20.0 ms = 2.0× the bar"
    ) in lines
    assert f"- writers: {report.NOT_BEFORE}" in lines
    assert "| scenario | figure | ours | ours before | baseline |" in lines  # the spread


def test_only_the_web_scenarios_take_another_web_process_of_ours():
    assert set(scenarios.WEB_SCENARIOS) < set(scenarios.SCENARIOS)
    assert "ingest" not in scenarios.WEB_SCENARIOS
    assert "writers" not in scenarios.WEB_SCENARIOS


@pytest.mark.parametrize(
    ("frame", "position"),
    [
        (b'{"seq":42,"table":"t","op":"INSERT","id":1,"data":{},"at":"x"}', 42),
        (b'{"type":"heartbeat","seq":7,"at":"x"}', 7),
        (b'<div id="stream-position" hidden data-seq="9" hx-swap-oob="true"></div>', 9),
        (b'<div id="heartbeat" hidden data-seq="11" data-server-time="x"></div>', 11),
        (b'{"table":"violation_humandetections","data":{"id":1}}', None),  # the baseline's
    ],
)
def test_bench_clients_ack_the_position_our_frames_carry(frame, position):
    assert frame_position(frame) == position


def test_the_writers_bar_compares_ours_with_the_recipes_trigger():
    row = next(r for r in report.ROWS if r.key == "writers")
    recipe = {"commits_per_s": 1000.0, "statement_s": 0.5}
    others = {"baseline": recipe}
    assert row.met({"commits_per_s": 900.0, "statement_s": 0.5}, others) == (True, "")
    assert row.met({"commits_per_s": 590.0, "statement_s": 1.2}, others) == (
        False,
        "commits/s 0.59× the recipe's; statement 2.40× the recipe's time",
    )
