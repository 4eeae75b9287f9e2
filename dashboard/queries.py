"""What each part of the dashboard shows, read from the database (sync; the consumer wraps it).

One function per part; the templates in templates/dashboard/ render the result, for the
first page and for every pushed update alike.
"""

import datetime
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Left, TruncMinute
from django.utils import timezone

from dashboard import chart, clock
from violations.events import CUT_MARKER
from violations.models import Violation, violation_models

LATEST_PER_WIDGET = 5
FEED_LENGTH = 12
TOP_CAMERAS = 5
# How much of `violation_image` the page shows (and reads: a row may hold megabytes).
IMAGE_CHARS = 200
# Explicit bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069; "Trojan
# Source"): shown as their code points, so a path cannot display as another
# ("cam2/\u202egpj.exe" as "cam2/exe.jpg"). The template isolates the rest in <bdi>.
_BIDI_CONTROLS = {c: f"[U+{c:04X}]" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


@dataclass(frozen=True)
class Look:
    """How a violation type shows on screen: a label, a text symbol, a sound."""

    label: str
    symbol: str
    sound: str  # a static file path


# Types not listed here (a fork's fourth type) get a look derived from the model.
LOOKS = {
    "violation_humandetections": Look("Human in restricted zone", "H", "sounds/human.wav"),
    "violation_lotodetections": Look("Lock-out/tag-out", "L", "sounds/loto.wav"),
    "violation_ppedetections": Look("PPE missing", "P", "sounds/ppe.wav"),
}
DEFAULT_SOUND = "sounds/human.wav"


def look(table: str) -> Look:
    if table in LOOKS:
        return LOOKS[table]
    model = violation_models()[table]
    name = str(model._meta.verbose_name_plural)
    return Look(name[:1].upper() + name[1:], name[:1].upper(), DEFAULT_SOUND)


def thumbnail_url(path: str) -> str | None:
    """The image URL to show, only for files under MEDIA_URL (nothing off-site)."""
    media = "/" + settings.MEDIA_URL.lstrip("/")
    return path if path.startswith(media) and ".." not in path else None


def shown_image(image_head: str) -> tuple[str, bool]:
    """The image path as the page shows it, and whether it was cut.

    `image_head` is the column's first IMAGE_CHARS + 1 characters: one more than shown
    tells a value that was exactly that long from one that was longer.
    """
    if len(image_head) > IMAGE_CHARS:
        return image_head[:IMAGE_CHARS] + CUT_MARKER, True
    return image_head, False


def visible_bidi_controls(text: str) -> str:
    """`text` with every explicit bidi control replaced by its code point, as text."""
    return text.translate(_BIDI_CONTROLS)


def _row(model: type[Violation], instance: Violation) -> dict[str, Any]:
    image, cut = shown_image(instance.image_head)
    return {
        "table": model._meta.db_table,
        "look": look(model._meta.db_table),
        "id": instance.pk,
        "camera_id": instance.camera_id,
        "date": instance.violation_date,
        "time": instance.violation_time,
        "image": visible_bidi_controls(image),
        # A cut path is no URL to load; the placeholder shows the cut text instead.
        "thumbnail": None if cut else thumbnail_url(image),
        "created_at": instance.created_at,
    }


def _newest(model: type[Violation]):
    return (
        model.objects.defer("violation_image")
        .annotate(image_head=Left("violation_image", IMAGE_CHARS + 1))
        .order_by("-created_at", "-id")
    )


def widget(table: str, today: datetime.date | None = None) -> dict[str, Any]:
    model = violation_models()[table]
    today = today or timezone.localdate(clock.now())
    todays = model.objects.filter(violation_date=today)
    cameras = todays.values("camera_id").annotate(count=Count("id")).order_by("-count", "camera_id")
    shown_cameras = list(cameras[:TOP_CAMERAS])
    more_cameras = 0
    if len(shown_cameras) == TOP_CAMERAS:
        more_cameras = todays.values("camera_id").distinct().count() - TOP_CAMERAS
    return {
        "table": table,
        "look": look(table),
        "count_today": todays.count(),
        "count_total": model.objects.count(),
        "latest": [_row(model, row) for row in _newest(model)[:LATEST_PER_WIDGET]],
        "cameras": shown_cameras,
        "more_cameras": more_cameras,
    }


def feed() -> list[dict[str, Any]]:
    """The newest rows across every violation table, newest first."""
    rows = [
        _row(model, instance)
        for model in violation_models().values()
        for instance in _newest(model)[:FEED_LENGTH]
    ]
    rows.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return rows[:FEED_LENGTH]


def activity(now: datetime.datetime | None = None) -> dict[str, Any]:
    """Events per minute over the last hour, by the time rows were recorded."""
    now = now or clock.now()
    since = now - datetime.timedelta(minutes=chart.MINUTES)
    per_minute: Counter[datetime.datetime] = Counter()
    for model in violation_models().values():
        # Grouped in the database: a busy hour is 60 rows per table, not one per violation.
        rows = (
            model.objects.filter(created_at__gt=since)
            .annotate(minute=TruncMinute("created_at", tzinfo=datetime.UTC))
            .values("minute")
            .annotate(count=Count("id"))
            .values_list("minute", "count")
        )
        per_minute.update(dict(rows))
    buckets = chart.minute_buckets(per_minute, now)
    return {
        "bars": chart.bars(buckets),
        "total": sum(count for _, count in buckets),
        "peak": max(count for _, count in buckets),
        "width": chart.WIDTH,
        "height": chart.HEIGHT,
    }


def all_tables() -> list[str]:
    return list(violation_models())
