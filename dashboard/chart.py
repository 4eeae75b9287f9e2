"""Events per minute as a small server-rendered SVG bar chart (pure functions)."""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 80
MINUTES = 60


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    minute: datetime.datetime


def minute_buckets(
    per_minute: Mapping[datetime.datetime, int], now: datetime.datetime, minutes: int = MINUTES
) -> list[tuple[datetime.datetime, int]]:
    """Counts for each of the last `minutes` minutes, oldest first, ending at `now`'s minute.

    `per_minute` maps the start of a minute to its count (as the database groups them);
    minutes it leaves out count zero, minutes outside the window are ignored.
    """
    end = now.replace(second=0, microsecond=0)
    starts = [end - datetime.timedelta(minutes=n) for n in range(minutes - 1, -1, -1)]
    return [(start, per_minute.get(start, 0)) for start in starts]


def bars(buckets: list[tuple[datetime.datetime, int]]) -> list[Bar]:
    """Bar geometry in a WIDTH x HEIGHT box; an empty minute still gets a 1-unit sliver."""
    peak = max((count for _, count in buckets), default=0) or 1
    slot = WIDTH / max(len(buckets), 1)
    result = []
    for index, (minute, count) in enumerate(buckets):
        height = max(1.0, (HEIGHT - 4) * count / peak)
        result.append(
            Bar(
                x=round(index * slot + 1, 2),
                y=round(HEIGHT - height, 2),
                width=round(slot - 2, 2),
                height=round(height, 2),
                count=count,
                minute=minute,
            )
        )
    return result
