"""Keeping one channel of this process subscribed to a channel-layer group, for good.

Each web process subscribes once per group (events, logouts) and hands what arrives to its
own sockets; a per-socket subscription costs a channel, a group entry and a receive task
each, in memory here and in Redis.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from channels.layers import get_channel_layer

from violations.backoff import Backoff

logger = logging.getLogger(__name__)

# Resubscribing waits like the listener reconnects: jittered, so processes don't stampede.
RESUBSCRIBE_INITIAL = 0.5
RESUBSCRIBE_CAP = 10.0
# Leaving a group is best effort: the layer may be the thing that failed.
LEAVE_TIMEOUT = 2.0


async def keep_subscribed(
    group: str,
    on_message: Callable[[dict[str, Any]], Awaitable[None]],
    subscribed: asyncio.Event,
    *,
    backoff: Backoff | None = None,
) -> NoReturn:
    """Join `group` on a new channel and pass each message to `on_message`, until cancelled.

    `subscribed` is set while the channel is in the group. When the layer fails, the
    channel leaves the group and a new one joins after a backoff.
    """
    layer = get_channel_layer()
    backoff = backoff or Backoff(initial=RESUBSCRIBE_INITIAL, cap=RESUBSCRIBE_CAP)
    while True:
        channel = None
        try:
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            subscribed.set()
            backoff.reset()
            while True:
                await on_message(await layer.receive(channel))
        except asyncio.CancelledError:
            # Stopping: awaiting the layer here could hang on a half-made subscription.
            subscribed.clear()
            raise
        except Exception as exc:
            subscribed.clear()
            logger.warning("lost the channel layer's %r group (%s); resubscribing", group, exc)
            if channel is not None:
                await _leave(layer, group, channel)
            await asyncio.sleep(backoff.next_delay())


async def _leave(layer: Any, group: str, channel: str) -> None:
    try:
        async with asyncio.timeout(LEAVE_TIMEOUT):
            await layer.group_discard(group, channel)
    except Exception:
        logger.debug("group_discard failed", exc_info=True)
