"""`python manage.py simulate_violations`: cameras reporting violations, so the dashboard moves.

Each violation gets a generated snapshot saved under MEDIA_ROOT and is inserted through the
ORM, so the table's trigger announces it like any camera's INSERT.
"""

import argparse
import random
import time

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.utils import timezone

from violations.models import violation_models
from violations.simulation import gaps, next_violation

DEFAULT_RATE = 2.0
DEFAULT_DURATION = 60.0


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number greater than 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be greater than 0")
    return value


class Command(BaseCommand):
    help = (
        "Insert simulated violations from several cameras, with generated snapshots, at "
        f"--rate per second on average, for --duration seconds (default {DEFAULT_DURATION:g}) "
        "or until --count have been inserted, whichever comes first. Ctrl-C stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rate",
            type=positive_float,
            default=DEFAULT_RATE,
            help=f"mean violations per second (default {DEFAULT_RATE:g})",
        )
        parser.add_argument(
            "--duration",
            type=positive_float,
            help=f"seconds to run (default {DEFAULT_DURATION:g} unless --count is given)",
        )
        parser.add_argument("--count", type=positive_int, help="stop after this many")
        parser.add_argument("--seed", type=int, help="repeat a run exactly (same random choices)")

    def handle(self, *args, rate: float, duration, count, seed, **options) -> None:
        if duration is None and count is None:
            duration = DEFAULT_DURATION
        models = violation_models()
        rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
        started = time.monotonic()
        deadline = started + duration if duration is not None else None
        due = started
        inserted = 0
        try:
            for gap in gaps(rng, rate):
                due += gap
                if deadline is not None and due > deadline:
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                self._insert_one(rng, models)
                inserted += 1
                if count is not None and inserted >= count:
                    break
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
        elapsed = time.monotonic() - started
        self.stdout.write(f"Inserted {inserted} simulated violations in {elapsed:.1f} s.")

    def _insert_one(self, rng: random.Random, models: dict) -> None:
        sighting = next_violation(rng, list(models), timezone.localtime())
        name = default_storage.save(sighting.image_name(), ContentFile(sighting.snapshot(rng)))
        model = models[sighting.table]
        row = model.objects.create(
            camera_id=sighting.camera_id,
            violation_date=sighting.when.date(),
            violation_time=sighting.when.time().replace(microsecond=0),
            violation_image=default_storage.url(name),
        )
        self.stdout.write(
            f"{sighting.when:%H:%M:%S}  camera {sighting.camera_id}  "
            f"{model._meta.verbose_name} #{row.pk}  {row.violation_image}"
        )
