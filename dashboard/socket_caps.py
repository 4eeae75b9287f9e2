"""How many sockets one login session, and one user, may hold open at once.

Counted across every web process in Redis (the channel layer's, `REDIS_URL`): each open
socket is a member of its session's and its user's sorted sets, scored with the moment its
lease runs out, and admitted by one Lua script (atomic: two processes cannot both take the
last place). Each process renews its sockets' leases every third of a lease, so a crashed
process's sockets stop counting within one lease. Why leases, Redis's clock and letting a
socket in when Redis is down: docs/decisions.md. Without REDIS_URL the count is per process.

Settings: DASHBOARD_SOCKETS_PER_SESSION (20), DASHBOARD_SOCKETS_PER_USER (200),
DASHBOARD_SOCKET_LEASE_SECONDS (30). Over a cap: close code 4409.
"""

import asyncio
import itertools
import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dashboard.session_sockets import session_tag
from violations.contract import CloseCode

logger = logging.getLogger(__name__)

SOCKETS_PER_SESSION = 20
SOCKETS_PER_USER = 200
LEASE_SECONDS = 30.0
# A Redis that does not answer must not hold a handshake for long.
REDIS_TIMEOUT = 2.0

# KEYS: the session's set, the user's set. ARGV: member, lease, per-session, per-user cap.
# Returns 0 (admitted), 1 (session full) or 2 (user full).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 1)
return 0
"""


@dataclass(frozen=True)
class Caps:
    per_session: int
    per_user: int
    lease: float


def configured_caps() -> Caps:
    return Caps(
        per_session=int(getattr(settings, "DASHBOARD_SOCKETS_PER_SESSION", SOCKETS_PER_SESSION)),
        per_user=int(getattr(settings, "DASHBOARD_SOCKETS_PER_USER", SOCKETS_PER_USER)),
        lease=float(getattr(settings, "DASHBOARD_SOCKET_LEASE_SECONDS", LEASE_SECONDS)),
    )


def over_cap(session_count: int, user_count: int, caps: Caps) -> CloseCode | None:
    """The close code for a socket that would be one too many, given the counts before it."""
    if session_count >= caps.per_session or user_count >= caps.per_user:
        return CloseCode.TOO_MANY_SOCKETS
    return None


@dataclass(frozen=True)
class Slot:
    """A socket's place in the counts: its session's and user's set keys, and its name."""

    session_key: str
    user_key: str
    member: str


class SocketCaps:
    """This process's open sockets, counted against the caps (in Redis when configured)."""

    def __init__(self) -> None:
        self._process = secrets.token_hex(8)  # members of a crashed process simply lapse
        self._serial = itertools.count()
        self._slots: dict[Any, Slot] = {}
        self._redis: Any = None
        self._redis_loop: asyncio.AbstractEventLoop | None = None
        self._renewer: asyncio.Task | None = None
        self._renewing: set[Slot] | None = None  # slots released while a renewal runs

    async def acquire(self, socket: Any, session_key: str, user_id: Any) -> CloseCode | None:
        """Count `socket` in; the close code instead if its session or user is at the cap."""
        caps = configured_caps()
        prefix = f"{_prefix()}:dashboard:sockets"
        slot = Slot(
            f"{prefix}:session:{session_tag(session_key)}",
            f"{prefix}:user:{user_id}",
            f"{self._process}:{next(self._serial)}",
        )
        redis = self._client()
        if redis is None:
            sessions = Counter(s.session_key for s in self._slots.values())
            users = Counter(s.user_key for s in self._slots.values())
            code = over_cap(sessions[slot.session_key], users[slot.user_key], caps)
        else:
            try:
                async with asyncio.timeout(REDIS_TIMEOUT):
                    verdict = await redis.eval(
                        _ACQUIRE,
                        2,
                        slot.session_key,
                        slot.user_key,
                        slot.member,
                        caps.lease,
                        caps.per_session,
                        caps.per_user,
                    )
                code = CloseCode.TOO_MANY_SOCKETS if int(verdict) else None
            except Exception as exc:
                logger.warning("cannot count sockets in Redis (%s); letting this one in", exc)
                code = None
            self._start_renewing(caps)
        if code is None:
            self._slots[socket] = slot
        return code

    async def release(self, socket: Any) -> None:
        slot = self._slots.pop(socket, None)
        if slot is None:
            return
        if self._renewing is not None:
            self._renewing.add(slot)  # the renewal in flight may add it back: removed after
        redis = self._client()
        if redis is not None:
            await self._remove([slot])

    async def _remove(self, slots: list[Slot]) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                pipe = self._client().pipeline(transaction=False)
                for slot in slots:
                    pipe.zrem(slot.session_key, slot.member)
                    pipe.zrem(slot.user_key, slot.member)
                await pipe.execute()
        except Exception as exc:
            # Its lease lapses instead.
            logger.warning("cannot uncount closed sockets in Redis (%s)", exc)

    def _client(self) -> Any:
        url = getattr(settings, "REDIS_URL", "")
        if not url:
            return None
        loop = asyncio.get_running_loop()
        if self._redis is None or self._redis_loop is not loop:
            import redis.asyncio  # installed with channels-redis

            self._redis = redis.asyncio.Redis.from_url(url)
            self._redis_loop = loop
        return self._redis

    def _start_renewing(self, caps: Caps) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(caps), name="socket-caps-renewal")

    async def _renew(self, caps: Caps) -> None:
        while True:
            await asyncio.sleep(caps.lease / 3)
            self._renewing = set()
            try:
                await self.renew_once(caps)
            except Exception as exc:
                logger.warning("cannot renew socket leases in Redis (%s)", exc)
            finally:
                released, self._renewing = self._renewing, None
            if released:
                await self._remove(list(released))

    async def renew_once(self, caps: Caps) -> None:
        """Push every open socket's lease a full lease ahead (and re-add any Redis lost)."""
        slots = list(self._slots.values())
        if not slots:
            return
        redis = self._client()
        async with asyncio.timeout(REDIS_TIMEOUT * 5):
            seconds, micros = await redis.time()
            until = seconds + micros / 1e6 + caps.lease
            members: dict[str, dict[str, float]] = {}
            for slot in slots:
                members.setdefault(slot.session_key, {})[slot.member] = until
                members.setdefault(slot.user_key, {})[slot.member] = until
            pipe = redis.pipeline(transaction=False)
            for key, scored in members.items():
                pipe.zadd(key, scored)
                pipe.expire(key, int(caps.lease) + 1)
            await pipe.execute()


def _prefix() -> str:
    layer = settings.CHANNEL_LAYERS.get("default", {})
    return str(layer.get("CONFIG", {}).get("prefix", "safety"))


socket_caps = SocketCaps()
