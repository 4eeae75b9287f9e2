"""`manage.py simulate_violations` (`make demo`): believable violations the pipeline announces."""

import datetime
import random
import re
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.conftest import http_get, receive_json
from tests.processes import PROJECT_ROOT, Daphne
from violations import snapshots
from violations.models import ChangeEvent, violation_models
from violations.simulation import CAMERAS, HUMAN, LOTO, PPE, gaps, next_violation

TABLES = [HUMAN, LOTO, PPE]


def simulate(*args: str) -> str:
    out = StringIO()
    call_command("simulate_violations", *args, stdout=out)
    return out.getvalue()


def rows() -> list:
    return [row for model in violation_models().values() for row in model.objects.all()]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its pixel data decompresses to match."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    idat_length = struct.unpack(">I", data[33:37])[0]
    pixels = zlib.decompress(data[41 : 41 + idat_length])
    assert len(pixels) == height * (1 + width * 3)
    return width, height


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
def test_count_inserts_that_many_rows_each_with_its_snapshot_under_media(media_root):
    before = timezone.localdate()
    output = simulate("--count", "5", "--rate", "50", "--seed", "1")
    days = {before, timezone.localdate()}

    inserted = rows()
    assert len(inserted) == 5
    assert "Inserted 5 simulated violations" in output
    for row in inserted:
        assert row.violation_image.startswith("/media/simulated/")
        path = media_root / row.violation_image.removeprefix("/media/")
        assert png_size(path.read_bytes()) == (snapshots.WIDTH, snapshots.HEIGHT)
        assert row.violation_date in days
        assert 1 <= row.camera_id <= len(CAMERAS)


@pytest.mark.django_db
def test_duration_stops_it_on_time(media_root):
    started = time.monotonic()
    output = simulate("--duration", "1.5", "--rate", "4")
    elapsed = time.monotonic() - started

    assert 1.5 <= elapsed < 10  # it ran the whole duration, then stopped
    assert f"Inserted {len(rows())} simulated violations" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "'0': must be a number greater than 0"),
        (["--rate", "-2"], "must be a number greater than 0"),
        (["--rate", "fast"], "'fast' is not a number"),
        (["--rate", "nan"], "must be a number greater than 0"),
        (["--duration", "0"], "must be a number greater than 0"),
        (["--count", "0"], "'0': must be greater than 0"),
        (["--count", "2.5"], "'2.5' is not a whole number"),
    ],
)
def test_bad_arguments_are_refused_clearly_before_anything_is_written(args, message):
    with pytest.raises(CommandError, match=message):
        simulate(*args)


def test_on_the_command_line_a_bad_argument_is_an_error_message_not_a_traceback(stack_env):
    result = subprocess.run(
        [sys.executable, "manage.py", "simulate_violations", "--rate", "0"],
        cwd=PROJECT_ROOT,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "argument --rate: '0': must be a number greater than 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_every_simulated_row_is_logged_by_its_tables_trigger_like_any_insert(media_root):
    simulate("--count", "3", "--rate", "50", "--seed", "7")

    for row in rows():
        logged = ChangeEvent.objects.get(
            table_name=row._meta.db_table, row_id=row.pk, op="INSERT"
        )  # written by the trigger in the same transaction: what the listener announces
        assert logged.data["violation_image"] == row.violation_image
        assert logged.data["camera_id"] == row.camera_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_simulated_violations_reach_the_websocket_like_any_insert(open_feed, media_root):
    feed = open_feed()

    simulate("--count", "3", "--rate", "50", "--seed", "7")

    events = [receive_json(feed, timeout=5) for _ in range(3)]
    assert {event["op"] for event in events} == {"INSERT"}
    assert sorted(e["id"] for e in events) == sorted(row.pk for row in rows())
    assert all(e["data"]["violation_image"].startswith("/media/simulated/") for e in events)


@pytest.mark.django_db(transaction=True)  # the row it inserts is flushed afterwards
def test_with_debug_on_the_snapshots_are_served_from_media(stack_env, logs, tmp_path):
    """As under `make run`: local settings, where Django serves MEDIA_URL itself."""
    env = stack_env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "simulate_violations", "--count", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    image = re.search(r"(/media/simulated/\S+\.png)", result.stdout).group(1)
    web = Daphne(env, logs / "daphne-local-media.log").start()
    try:
        headers, body = http_get(web.http_url + image)
    finally:
        web.stop()
    assert headers["Content-Type"] == "image/png"
    assert png_size(body) == (snapshots.WIDTH, snapshots.HEIGHT)


# --- The plain logic --------------------------------------------------------------------


def test_many_cameras_all_three_types_each_camera_with_its_usual_one():
    rng = random.Random(42)
    now = datetime.datetime(2026, 11, 21, 14, 3, 22)
    sightings = [next_violation(rng, TABLES, now) for _ in range(3000)]

    assert {s.camera_id for s in sightings} == {c.camera_id for c in CAMERAS}
    assert {s.table for s in sightings} == set(TABLES)
    by_camera = {
        camera.camera_id: Counter(s.table for s in sightings if s.camera_id == camera.camera_id)
        for camera in CAMERAS
    }
    for camera in CAMERAS:
        usual = max(camera.odds, key=camera.odds.get)
        assert by_camera[camera.camera_id].most_common(1)[0][0] == usual
    busiest = max(CAMERAS, key=lambda c: c.weight).camera_id
    assert Counter(s.camera_id for s in sightings).most_common(1)[0][0] == busiest


def test_a_forks_fourth_type_is_simulated_too():
    rng = random.Random(1)
    now = datetime.datetime(2026, 11, 21, 14, 3, 22)
    tables = [*TABLES, "violation_forkliftdetections"]
    seen = {next_violation(rng, tables, now).table for _ in range(500)}
    assert "violation_forkliftdetections" in seen
    sighting = next_violation(random.Random(3), ["violation_forkliftdetections"], now)
    assert png_size(sighting.snapshot(rng)) == (snapshots.WIDTH, snapshots.HEIGHT)


def test_arrivals_start_at_once_then_average_the_rate():
    intervals = gaps(random.Random(5), rate=4.0)
    assert next(intervals) == 0.0
    sample = [next(intervals) for _ in range(4000)]
    assert 0.23 < sum(sample) / len(sample) < 0.27
    assert len(set(sample)) == len(sample)  # uneven, like real arrivals
    with pytest.raises(ValueError, match="greater than 0"):
        next(gaps(random.Random(), rate=0))


def test_snapshots_differ_by_type_and_by_camera():
    now = datetime.datetime(2026, 11, 21, 14, 3, 22)
    sightings = {table: next_violation(random.Random(0), [table], now) for table in TABLES}
    drawn = {table: s.snapshot(random.Random(0)) for table, s in sightings.items()}
    assert len(set(drawn.values())) == 3
    for data in drawn.values():
        assert png_size(data) == (snapshots.WIDTH, snapshots.HEIGHT)

    camera_2 = snapshots.Scene("ppe", 2, "14:03:22", 80, (0, 0, 0))
    camera_3 = snapshots.Scene("ppe", 3, "14:03:22", 80, (0, 0, 0))
    assert snapshots.draw(camera_2) != snapshots.draw(camera_3)  # the overlay differs

    assert sightings[PPE].image_name().startswith(f"simulated/{PPE}/cam")
    assert sightings[PPE].image_name().endswith("-20261121-140322.png")
