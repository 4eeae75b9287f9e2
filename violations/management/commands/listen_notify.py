"""`python manage.py listen_notify`: run the listener until SIGTERM or SIGINT."""

import asyncio
import signal
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand

from violations.conninfo import conninfo
from violations.contract import EVENTS_GROUP, NOTIFY_CHANNEL, Event, listener_lock_key
from violations.events import channel_layer_messages
from violations.listener import Listener


class Command(BaseCommand):
    help = (
        f"Deliver changes to the violation tables (NOTIFY {NOTIFY_CHANNEL}) to WebSocket "
        "clients. Several may run: one is active, the others wait on standby."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--health-interval",
            type=float,
            default=10.0,
            help="Seconds between health queries on the LISTEN connection (default 10).",
        )
        parser.add_argument(
            "--health-timeout",
            type=float,
            default=5.0,
            help="Seconds a health query may take before the connection counts as dead.",
        )
        parser.add_argument(
            "--health-file",
            type=Path,
            default=None,
            help=(
                "A file touched whenever the listener proves itself (each health query, each "
                "standby poll); `python -m violations.listener_health FILE` checks its age."
            ),
        )

    def handle(
        self,
        *args,
        health_interval: float,
        health_timeout: float,
        health_file: Path | None,
        **options,
    ) -> None:
        channel_layer = get_channel_layer()

        async def publish(events: list[Event]) -> None:
            for message in channel_layer_messages(events):
                await channel_layer.group_send(EVENTS_GROUP, message)

        listener = Listener(
            listen_conninfo=conninfo(settings.LISTEN_DATABASE),
            query_conninfo=conninfo(settings.DATABASES["default"]),
            channel=NOTIFY_CHANNEL,
            lock_key=listener_lock_key(NOTIFY_CHANNEL),
            publish=publish,
            health_interval=health_interval,
            health_timeout=health_timeout,
            health_file=health_file,
        )
        asyncio.run(_run_until_signalled(listener))


async def _run_until_signalled(listener: Listener) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await listener.run(stop)
