"""What every dashboard socket enforces, whatever it serves: a mixin for Channels consumers.

Every check runs before the consumer's own `connect()`, so a consumer cannot forget one,
and dashboard.routing refuses to route a consumer without this mixin.

- Access: a visitor who is not logged in is closed with 4401, one without
  `dashboard.view_dashboard` with 4403.
- Logout: logging out (the `user_logged_out` signal) closes every socket of that session
  with 4401, on every web process (dashboard.session_sockets). Other sessions of the same
  user stay open: they are still logged in.
- Caps: a session may hold DASHBOARD_SOCKETS_PER_SESSION open sockets, a user
  DASHBOARD_SOCKETS_PER_USER, counted across processes (dashboard.socket_caps); one more
  is closed with 4409.
- Revocation: every few seconds each process checks all its open sockets in one query and
  closes those whose session, user, password or permission no longer holds (4401/4403;
  dashboard.revocation).
- Client messages: every frame is counted against a token bucket (a flood closes the
  socket, 4429), size-checked (4413) and parsed (dashboard.client_messages; a malformed
  one closes with 4400). Unknown types are dropped; "resume" calls `handle_resume()`.
  Nothing a client sends is ever echoed.

Usage: `class MyConsumer(SocketGuard, AsyncWebsocketConsumer)`; its `connect()` runs only
for a viewer who is let in.
"""

import logging
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.sessions.backends import signed_cookies
from django.http import HttpRequest

from dashboard import access
from dashboard.client_messages import (
    Ack,
    InvalidClientMessage,
    MessageTooLarge,
    Resume,
    parse_client_message,
)
from dashboard.rate_limit import TokenBucket
from dashboard.revocation import Grant, access_watch
from dashboard.session_sockets import announce_logout, session_sockets
from dashboard.socket_caps import socket_caps
from violations.contract import CloseCode

logger = logging.getLogger(__name__)


class SocketGuard:
    """Mixin for a Channels WebSocket consumer; list it before the consumer class."""

    # No channel-layer channel per socket: what reaches a socket from other processes
    # (events, logouts) is received once per process and handed to its sockets.
    channel_layer_alias = None

    # A page sends one "resume" per (re)connect; ten at once or one a second is generous.
    message_burst = 10
    messages_per_second = 1.0

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self._allowance = TokenBucket(self.message_burst, self.messages_per_second)
        self._closing = False
        session = self.scope.get("session")
        self._session_key = session.session_key if session is not None else None
        # Registered before the login is checked, so a logout from then on reaches us.
        if self._session_key:
            await session_sockets.add(self._session_key, self)
        if await self._refuse_unless_viewer():
            return
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if getattr(self, "_session_key", None):
            session_sockets.discard(self._session_key, self)
        access_watch.forget(self)
        try:
            await socket_caps.release(self)
        finally:
            await super().websocket_disconnect(message)

    async def _refuse_unless_viewer(self) -> bool:
        """Close the socket of anyone who may not watch the dashboard; True if it was closed."""
        code, grant = await database_sync_to_async(self._refusal)()
        if code is None and grant is not None:
            code = await socket_caps.acquire(self, grant.session_key, grant.user_id)
            if code is None:
                access_watch.watch(self, grant)
                return False
            await self.refuse_handshake(code, "too many open sockets for this session or user")
            return True
        if code is None:
            return False
        # Accept first so the client sees our close code rather than a bare HTTP 403.
        await self.accept()
        await self._close(code)
        return True

    async def refuse_handshake(self, code: CloseCode, reason: str) -> None:
        """Close a socket whose handshake asked for something invalid (e.g. its query string)."""
        await self.accept()  # so the client sees our close code, not a bare HTTP 403
        await self._refuse(code, reason)

    def _refusal(self) -> tuple[CloseCode | None, Grant | None]:
        """Why this socket may not open, or what it opens with (for later checks)."""
        user = self.scope.get("user")
        code = access.refusal(user)
        # The session may have logged out between the handshake and our registering.
        if code is None and _session_ended(self.scope.get("session")):
            return CloseCode.UNAUTHENTICATED, None
        if code is not None or not self._session_key:
            return code, None
        return None, Grant(self._session_key, user.pk, user.get_session_auth_hash())

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Every frame from the client comes here first, instead of `receive()`."""
        if self._closing:
            return  # frames already in flight when we decided to close
        frame = message["text"] if message.get("text") is not None else message.get("bytes", b"")
        try:
            parsed = parse_client_message(frame)  # at most 1 kB: cheap before the allowance
        except MessageTooLarge as exc:
            await self._refuse(CloseCode.MESSAGE_TOO_BIG, str(exc))
        except InvalidClientMessage as exc:
            await self._refuse(CloseCode.BAD_MESSAGE, str(exc))
        else:
            if isinstance(parsed, Ack):
                # Not counted: an ack costs a comparison, and one dropped for a flood could
                # leave the window shut (dashboard.flow_control). A client may ack each event.
                self.handle_ack(parsed.seq)
            elif not self._allowance.take():
                await self._refuse(CloseCode.TOO_MANY_MESSAGES, "too many messages")
            elif isinstance(parsed, Resume):
                await self.handle_resume(parsed.since)

    async def handle_resume(self, since: int | None) -> None:
        """The client asks for the events after seq `since` (None: everything current).

        A no-op here; consumers that can replay events override it.
        """

    def handle_ack(self, seq: int) -> None:
        """The client has everything sent up to `seq`; a no-op for consumers that do not
        stream (dashboard.flow_control)."""

    async def session_ended(self) -> None:
        """This socket's session logged out."""
        await self._close(CloseCode.UNAUTHENTICATED)

    async def access_revoked(self, code: CloseCode) -> None:
        """The periodic check found this socket's access gone (dashboard.revocation)."""
        await self._refuse(code, "access revoked")

    async def _refuse(self, code: CloseCode, reason: str) -> None:
        user = self.scope.get("user")
        logger.warning(
            "closing a %s socket of user %s with %d: %s",
            self.scope.get("path", "?"),
            getattr(user, "pk", None),
            code,
            reason,
        )
        await self._close(code, reason)

    async def _close(self, code: CloseCode, reason: str | None = None) -> None:
        if self._closing:
            return
        self._closing = True
        # Daphne drops the reason; uvicorn passes it on (it never quotes the client).
        await self.close(code=int(code), reason=reason)


def _session_ended(session: Any) -> bool:
    """True if a server-side session no longer exists (a signed-cookie one cannot tell)."""
    if session is None or isinstance(session, signed_cookies.SessionStore):
        return False
    return not session.exists(session.session_key)


async def close_session_sockets(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """`user_logged_out` receiver: close every socket of the session that is logging out.

    A logout must succeed even when the channel layer is down, so failures are logged,
    not raised.
    """
    session = getattr(request, "session", None)
    key = session.session_key if session is not None else None
    if not key:
        return
    try:
        await announce_logout(key)
    except Exception:
        logger.exception("could not close the sockets of a session that logged out")
