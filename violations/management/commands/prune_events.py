"""`python manage.py prune_events --older-than 7d [--every 24h]`: trim the event log."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from violations.event_log import parse_duration, prune


class Command(BaseCommand):
    help = (
        "Delete delivered events older than --older-than from the event log (never one that "
        "is not yet delivered). Schedule it daily, e.g. from cron, or run it with --every."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            default=settings.EVENT_LOG_RETENTION,
            help=(
                "Age of the events to delete: 7d, 12h, 30m, 90s, 2w "
                f"(default {settings.EVENT_LOG_RETENTION}, from EVENT_LOG_RETENTION)."
            ),
        )
        parser.add_argument(
            "--every",
            default=None,
            help=(
                "Keep running and prune again this long after each run (e.g. 24h), until "
                "SIGTERM or SIGINT: a scheduler of its own for docker compose."
            ),
        )

    def handle(self, *args, older_than: str, every: str | None, **options) -> None:
        try:
            age = parse_duration(older_than)
            interval = parse_duration(every) if every else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if interval is None:
            self._prune(age, older_than)
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            try:
                self._prune(age, older_than)
            except Exception as exc:  # the database restarting: try again next time
                self.stderr.write(f"Pruning failed ({exc}); trying again in {every}.")
            stop.wait(interval.total_seconds())

    def _prune(self, age, older_than: str) -> None:
        deleted = prune(age)
        self.stdout.write(f"Deleted {deleted} delivered events older than {older_than}.")
        self.stdout.flush()
