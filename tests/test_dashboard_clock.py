"""Time moves without events: "Today" at local midnight and the last-hour chart each minute.

The pure parts (what a clock change re-renders, what a dashboard is sent next) on their
own; then the hub against the real test database with the process's clock swapped for one
the test moves (`dashboard.clock.now`), so midnight comes without waiting for it. Counts
are compared with the database, renders are counted, not mocked away.
"""

import asyncio
import datetime
import re
import zoneinfo

import pytest
from channels.db import database_sync_to_async
from playwright.sync_api import expect

from dashboard import clock, rendering
from dashboard.clock import ClockChange, clock_change, read_clock, seconds_to_next_minute
from dashboard.hub import Plan, dashboard_plan
from tests.test_dashboard_browser import insert, open_dashboard
from tests.test_dashboard_logic import (  # noqa: F401 (in_memory_layer: a fixture)
    RecordingSocket,
    in_memory_layer,
    run_in_a_fresh_loop,
    running_hub,
    until,
)
from violations.models import HumanDetection, PpeDetection

ZONE = "Pacific/Auckland"  # UTC+13 in November: its midnight is mid-morning UTC
AUCKLAND = zoneinfo.ZoneInfo(ZONE)


def local(*args: int) -> datetime.datetime:
    """An Auckland wall-clock time, as the aware UTC instant the server's clock returns."""
    return datetime.datetime(*args, tzinfo=AUCKLAND).astimezone(datetime.UTC)


# --- Pure functions -------------------------------------------------------------------------


def test_the_day_is_the_local_one_and_the_minute_its_start():
    reading = read_clock(local(2026, 11, 21, 23, 59, 30), AUCKLAND)
    assert reading.today == datetime.date(2026, 11, 21)
    assert reading.minute == local(2026, 11, 21, 23, 59)
    # 23:59:30 in Auckland is 10:59:30 UTC: in UTC it is still the same day at 00:00:05.
    assert read_clock(local(2026, 11, 22, 0, 0, 5), AUCKLAND).today == datetime.date(2026, 11, 22)
    assert read_clock(local(2026, 11, 22, 0, 0, 5), datetime.UTC).today == datetime.date(
        2026, 11, 21
    )


def test_what_a_clock_change_re_renders():
    before = read_clock(local(2026, 11, 21, 23, 58, 10), AUCKLAND)
    same_minute = read_clock(local(2026, 11, 21, 23, 58, 59), AUCKLAND)
    next_minute = read_clock(local(2026, 11, 21, 23, 59, 0), AUCKLAND)
    next_day = read_clock(local(2026, 11, 22, 0, 0, 1), AUCKLAND)

    assert clock_change(before, same_minute) == ClockChange()
    assert not clock_change(before, same_minute)  # nothing to send
    assert clock_change(before, next_minute) == ClockChange(chart=True)
    assert clock_change(before, next_day) == ClockChange(today=True, chart=True)
    assert clock_change(None, before) == ClockChange(today=True, chart=True)  # unknown page
    assert clock_change(next_day, before) == ClockChange(today=True, chart=True)  # set back


def test_the_clock_task_sleeps_until_the_next_minute():
    assert seconds_to_next_minute(local(2026, 11, 21, 23, 59, 30)) == 30.0
    assert seconds_to_next_minute(local(2026, 11, 21, 23, 59, 0)) == 60.0
    assert seconds_to_next_minute(
        local(2026, 11, 21, 23, 59, 59) + datetime.timedelta(microseconds=750_000)
    ) == pytest.approx(0.25)


def test_what_a_dashboard_is_sent_next():
    quiet, minute, day = ClockChange(), ClockChange(chart=True), ClockChange(True, True)
    plan = dashboard_plan
    assert plan(10, 10, status_changed=False, moved=quiet) is None  # a heartbeat at most
    assert plan(10, 10, status_changed=True, moved=quiet) is Plan.STATUS
    assert plan(10, 10, status_changed=True, moved=minute) is Plan.CLOCK
    assert plan(10, 10, status_changed=False, moved=day) is Plan.CLOCK
    assert plan(8, 10, status_changed=False, moved=day) is Plan.UPDATE  # its chart included
    assert plan(None, 10, status_changed=False, moved=quiet) is Plan.REFRESH


# --- The hub, with a clock the test moves ------------------------------------------------------


class MovableClock:
    """The process's clock, set by the test; counts how often it is read."""

    def __init__(self, at: datetime.datetime) -> None:
        self.at = at
        self.reads = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> datetime.datetime:
        self.reads += 1
        if self._loop is not None:  # read from the loop's thread or a render's
            self._loop.call_soon_threadsafe(self._read.set)
        return self.at

    async def read_times(self, count: int) -> None:
        """Wait until the clock has been read `count` more times."""
        self._loop, self._read = asyncio.get_running_loop(), asyncio.Event()
        target = self.reads + count
        while self.reads < target:
            self._read.clear()
            await self._read.wait()


def count_today_in(html: str, table: str) -> int:
    match = re.search(rf'id="widget-{table}".*?data-count-today="(\d+)"', html, re.S)
    assert match, f"no widget of {table} in the frame"
    return int(match.group(1))


def last_bar_title(html: str) -> str:
    return re.findall(r"<title>([^<]*)</title>", html)[-1]


HUMAN, PPE = HumanDetection._meta.db_table, PpeDetection._meta.db_table


def todays_count(model, day: datetime.date) -> int:
    """The database's truth, as the widget should show it."""
    return model.objects.filter(violation_date=day).count()


@pytest.mark.django_db(transaction=True)
# No listener numbers this test's rows while it runs: their events would reach the hub as
# updates in between the clock's frames (its counts are read from the tables, not events).
@pytest.mark.usefixtures("in_memory_layer", "listener_paused")
def test_midnight_and_each_minute_re_render_once_for_every_screen_and_a_quiet_tick_sends_nothing(
    settings, monkeypatch
):
    settings.TIME_ZONE = ZONE
    day, next_day = datetime.date(2026, 11, 21), datetime.date(2026, 11, 22)
    moving = MovableClock(local(2026, 11, 21, 23, 59, 30))
    monkeypatch.setattr(clock, "now", moving.now)
    for _ in range(2):
        HumanDetection.objects.create(
            camera_id=1, violation_date=day, violation_time="23:00", violation_image="a.jpg"
        )
    for model, n in ((HumanDetection, 3), (PpeDetection, 1)):  # dated by the cameras' clocks
        for _ in range(n):
            model.objects.create(
                camera_id=2,
                violation_date=next_day,
                violation_time="00:00",
                violation_image="b.jpg",
                created_at=local(2026, 11, 22, 0, 0, 1),
            )
    counts = database_sync_to_async(todays_count)

    renders: list[bool] = []
    real_render_clock = rendering.render_clock

    def render_clock(position, listener, *, every_widget):
        renders.append(every_widget)
        return real_render_clock(position, listener, every_widget=every_widget)

    monkeypatch.setattr(rendering, "render_clock", render_clock)

    async def scenario() -> dict:
        arrived = asyncio.Event()
        screens = [RecordingSocket(arrived) for _ in range(4)]
        seen: dict = {}
        async with running_hub(poll_interval=60, clock_check=0.05) as (hub, followers):
            await hub.stream.ready.wait()
            await hub.listener.known.wait()
            head = hub.stream.head
            followers.extend(hub.follow_dashboard(s, head) for s in screens)  # at the head
            await until(lambda: all(len(s.received) == 1 for s in screens), arrived)
            seen["before"] = screens[0].received[0]
            renders_before_midnight = len(renders)

            moving.at = local(2026, 11, 22, 0, 0, 5)  # past local midnight; no event
            await until(lambda: all(len(s.received) == 2 for s in screens), arrived)
            seen["midnight"] = [s.received[1] for s in screens]
            seen["midnight_renders"] = len(renders) - renders_before_midnight
            seen["human_today"] = await counts(HumanDetection, next_day)
            seen["ppe_today"] = await counts(PpeDetection, next_day)

            moving.at = local(2026, 11, 22, 0, 1, 5)  # past a minute
            await until(lambda: all(len(s.received) == 3 for s in screens), arrived)
            seen["minute"] = [s.received[2] for s in screens]

            moving.at = local(2026, 11, 22, 0, 1, 40)  # the same minute: nothing changed
            await moving.read_times(6)  # the clock task has looked at it, three times
            seen["after_quiet_tick"] = [len(s.received) for s in screens]
            seen["renders"] = list(renders)
        return seen

    seen = run_in_a_fresh_loop(scenario)

    assert count_today_in(seen["before"], HUMAN) == 2  # the 21st's, before midnight
    # Midnight: every screen got the new day's counts, read from the database, one render.
    assert {count_today_in(html, HUMAN) for html in seen["midnight"]} == {seen["human_today"]}
    assert {count_today_in(html, PPE) for html in seen["midnight"]} == {seen["ppe_today"]}
    assert seen["human_today"] == 3
    assert len(set(seen["midnight"])) == 1
    assert seen["midnight_renders"] == 1  # once for all four screens
    # A minute: the chart slides (its last bar is the new minute), no widget re-rendered.
    assert len(set(seen["minute"])) == 1
    assert 'id="activity"' in seen["minute"][0]
    assert "widget-" not in seen["minute"][0]
    assert last_bar_title(seen["minute"][0]).startswith("00:01:")
    assert "0 in the last hour" in seen["before"]  # the rows of 00:00 are not yet in it
    assert "4 in the last hour" in seen["minute"][0]
    # A tick that changed nothing sent nothing and rendered nothing.
    assert seen["after_quiet_tick"] == [3, 3, 3, 3]
    assert seen["renders"][-2:] == [True, False]  # midnight: every widget; a minute: the chart


# --- The page, in Chromium ------------------------------------------------------------------

# A browser whose clock is an hour fast, as a wall screen's with no time sync can be.
CLIENT_CLOCK_AN_HOUR_FAST = (
    "(() => { const real = Date.now; Date.now = () => real() + 3600e3; })();"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_the_page_names_its_zone_and_ages_the_last_event_by_the_servers_clock(
    page, daphne, session_cookie, psql, settings
):
    page.add_init_script(CLIENT_CLOCK_AN_HOUR_FAST)
    open_dashboard(page, daphne, session_cookie)
    expect(page.locator("#time-zone")).to_contain_text(f"midnight, {settings.TIME_ZONE} time")

    insert(psql)

    # Seconds, as the server's clock says, not "60 min ago" as the browser's would.
    age = page.locator("#listener-health .last-event time")
    expect(age).to_have_text(re.compile(r"^\d s ago$"))
