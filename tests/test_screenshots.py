"""`make screenshots`: the dashboard as a safety officer sees it, at wall-screen and phone size.

Not part of `make test` (marker `screenshots`); writes docs/screenshot-desktop.png and
docs/screenshot-phone.png from believable data written while the page is open.
"""

import datetime
import random

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import screenshot
from tests.processes import PROJECT_ROOT
from tests.test_dashboard_browser import open_dashboard
from violations.models import HumanDetection, LotoDetection, PpeDetection

pytestmark = [
    pytest.mark.screenshots,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("listener"),
]

DOCS = PROJECT_ROOT / "docs"


def seed_an_hour_of_violations(rng: random.Random) -> None:
    now = timezone.now()
    for minutes_ago in range(60, 0, -1):
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            model = rng.choice([HumanDetection, HumanDetection, LotoDetection, PpeDetection])
            moment = now - datetime.timedelta(minutes=minutes_ago, seconds=rng.randint(0, 59))
            local = timezone.localtime(moment)
            model.objects.create(
                camera_id=rng.choice([1, 2, 2, 3, 4, 7, 12]),
                violation_date=local.date(),
                violation_time=local.time().replace(microsecond=0),
                violation_image=f"cam{rng.randint(1, 12)}/{local:%H%M%S}.jpg",
                created_at=moment,
            )


def test_dashboard_screenshots(page, daphne, session_cookie):
    seed_an_hour_of_violations(random.Random(7))
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_dashboard(page, daphne, session_cookie)

    # One more arrives live, the way it would on the wall screen.
    row = PpeDetection.objects.create(
        camera_id=3,
        violation_date=timezone.localdate(),
        violation_time=timezone.localtime().time().replace(microsecond=0),
        violation_image="cam3/live.jpg",
    )
    expect(page.locator("#feed [data-row-id]").first).to_have_attribute("data-row-id", str(row.id))
    page.screenshot(path=DOCS / "screenshot-desktop.png")  # what fits on the wall screen

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, DOCS / "screenshot-phone.png")
