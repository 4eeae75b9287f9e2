"""What each widget shows, read from the real test database and rendered by its partial."""

import datetime

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from dashboard import queries
from violations.events import CUT_MARKER
from violations.models import PpeDetection

PPE = "violation_ppedetections"


def add_rows(cameras: dict[int, int], day: datetime.date | None = None) -> None:
    """`cameras[camera_id]` rows for each camera, dated `day` (today by default)."""
    day = day or timezone.localdate()
    PpeDetection.objects.bulk_create(
        PpeDetection(
            camera_id=camera,
            violation_date=day,
            violation_time=datetime.time(9, 0),
            violation_image=f"cam{camera}.jpg",
        )
        for camera, count in cameras.items()
        for _ in range(count)
    )


def rendered(table: str) -> str:
    return render_to_string("dashboard/_widget.html", {"w": queries.widget(table)})


@pytest.mark.django_db
def test_more_cameras_than_fit_say_how_many_are_left_out():
    add_rows({camera: 10 - camera for camera in range(1, 9)})  # 8 cameras today
    add_rows({42: 3}, day=timezone.localdate() - datetime.timedelta(days=1))  # not today

    widget = queries.widget(PPE)

    assert [c["camera_id"] for c in widget["cameras"]] == [1, 2, 3, 4, 5]
    assert widget["more_cameras"] == 3
    assert 'data-more-cameras="3">+3 more<' in rendered(PPE)


@pytest.mark.django_db
def test_cameras_that_all_fit_say_nothing_more():
    add_rows(dict.fromkeys(range(1, queries.TOP_CAMERAS + 1), 1))

    assert queries.widget(PPE)["more_cameras"] == 0
    assert "more" not in rendered(PPE).split("Cameras today")[1]


@pytest.mark.django_db
def test_a_huge_image_path_is_shown_cut_and_never_as_a_thumbnail():
    PpeDetection.objects.create(
        camera_id=1,
        violation_date=timezone.localdate(),
        violation_time=datetime.time(9, 0),
        violation_image="/media/" + "x" * 1_000_000,
    )

    (row,) = queries.widget(PPE)["latest"]

    assert row["image"] == ("/media/" + "x" * 1_000_000)[: queries.IMAGE_CHARS] + CUT_MARKER
    assert row["thumbnail"] is None
    assert len(rendered(PPE)) < 10_000


@pytest.mark.parametrize(
    ("head", "shown", "cut"),
    [
        ("", "", False),
        ("/media/a.jpg", "/media/a.jpg", False),
        ("x" * queries.IMAGE_CHARS, "x" * queries.IMAGE_CHARS, False),
        ("x" * (queries.IMAGE_CHARS + 1), "x" * queries.IMAGE_CHARS + CUT_MARKER, True),
    ],
)
def test_shown_image_cuts_only_what_is_longer_than_it_shows(head, shown, cut):
    assert queries.shown_image(head) == (shown, cut)
