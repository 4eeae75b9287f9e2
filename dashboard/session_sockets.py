"""Which of this process's sockets belong to which login session, so a logout closes them.

Logging out on any web process announces the session on one channel-layer group that
every process joins once (dashboard.subscriptions); each process closes its own sockets of
that session. Sessions are named by a keyed digest, never by their key: anyone who can
read Redis sees the layer's messages, and a session key is a login.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.utils.crypto import salted_hmac

from dashboard.subscriptions import keep_subscribed
from violations.contract import LOGOUT_MESSAGE_TYPE, LOGOUTS_GROUP

logger = logging.getLogger(__name__)

# A hung channel layer must not hang a logout or a connect forever.
LAYER_TIMEOUT = 5.0


class SessionSocket(Protocol):
    def session_ended(self) -> Awaitable[None]: ...


def session_tag(session_key: str) -> str:
    """The name a session goes by on the channel layer."""
    digest = salted_hmac("dashboard.session_sockets", session_key, algorithm="sha256")
    return digest.hexdigest()


def logout_message(session_key: str) -> dict[str, str]:
    return {"type": LOGOUT_MESSAGE_TYPE, "session": session_tag(session_key)}


class SessionSockets:
    def __init__(self) -> None:
        self._sockets: defaultdict[str, set[SessionSocket]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    async def add(self, session_key: str, socket: SessionSocket) -> None:
        """Close `socket` when this session logs out, from now on.

        Returns once this process hears logouts; raises TimeoutError if the channel layer
        cannot be reached within LAYER_TIMEOUT (the socket should not stay open unguarded).
        """
        self._sockets[session_tag(session_key)].add(socket)
        self._start()
        try:
            async with asyncio.timeout(LAYER_TIMEOUT):
                await self._subscribed.wait()
        except BaseException:
            # The socket fails to open, and nothing will call discard() for it.
            self.discard(session_key, socket)
            raise

    def discard(self, session_key: str, socket: SessionSocket) -> None:
        tag = session_tag(session_key)
        sockets = self._sockets.get(tag)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[tag]

    def _start(self) -> None:
        # Restarted if it ended: after a crash, or with the event loop it ran in (tests).
        if self._task is None or self._task.done():
            self._subscribed = asyncio.Event()
            self._task = asyncio.create_task(self._receive(), name="session-sockets")

    async def _receive(self) -> None:
        await keep_subscribed(LOGOUTS_GROUP, self._close_sockets_of, self._subscribed)

    async def _close_sockets_of(self, message: dict[str, Any]) -> None:
        if message.get("type") != LOGOUT_MESSAGE_TYPE:
            return
        for socket in list(self._sockets.pop(message.get("session", ""), ())):
            try:
                await socket.session_ended()
            except Exception:
                logger.exception("could not close a socket of a session that logged out")


async def announce_logout(session_key: str) -> None:
    """Tell every web process that this session logged out (raises if the layer fails)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async with asyncio.timeout(LAYER_TIMEOUT):
        await layer.group_send(LOGOUTS_GROUP, logout_message(session_key))


session_sockets = SessionSockets()
