"""The time the dashboard shows, as pure functions, and the one clock every part reads.

`now()` is the process's clock: "Today", the last-hour chart, the heartbeat's server time
and the hub's clock task all read it, so a test that swaps it (monkeypatch
`dashboard.clock.now`) moves the whole dashboard in time at once.
"""

import datetime
from dataclasses import dataclass

from django.utils import timezone


def now() -> datetime.datetime:
    """The current time (aware, UTC)."""
    return timezone.now()


@dataclass(frozen=True)
class ClockReading:
    """What the clock decides on screen: the day "Today" counts, the chart's last minute."""

    today: datetime.date  # in settings.TIME_ZONE
    minute: datetime.datetime  # the start of the current minute, aware


@dataclass(frozen=True)
class ClockChange:
    """What moved between two readings: the "Today" counts, the chart's window."""

    today: bool = False
    chart: bool = False

    def __bool__(self) -> bool:
        return self.today or self.chart


def read_clock(moment: datetime.datetime, zone: datetime.tzinfo | None = None) -> ClockReading:
    """The reading at `moment` (aware), the day taken in `zone` (default: the current time
    zone, TIME_ZONE unless activated otherwise: the one the widgets count "Today" in)."""
    local = timezone.localtime(moment, zone)
    return ClockReading(today=local.date(), minute=moment.replace(second=0, microsecond=0))


def clock_change(before: ClockReading | None, after: ClockReading) -> ClockChange:
    """What must be re-rendered going from `before` (None: unknown) to `after`."""
    if before is None:
        return ClockChange(today=True, chart=True)
    return ClockChange(today=before.today != after.today, chart=before.minute != after.minute)


def seconds_to_next_minute(moment: datetime.datetime) -> float:
    """How long from `moment` until the next minute starts (never 0: a whole minute then)."""
    into = moment.second + moment.microsecond / 1_000_000
    return 60.0 - into
