"""`python manage.py prune_events --older-than 7d`: trim the event log."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from violations.event_log import parse_duration, prune


class Command(BaseCommand):
    help = (
        "Delete delivered events older than --older-than from the event log (never one that "
        "is not yet delivered). Schedule it daily, e.g. from cron."
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

    def handle(self, *args, older_than: str, **options) -> None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        deleted = prune(age)
        self.stdout.write(f"Deleted {deleted} delivered events older than {older_than}.")
