"""Losing access closes open sockets within seconds, on every web process.

A socket's access is checked when it opens (dashboard.socket_guard). After that, every
ACCESS_CHECK_SECONDS each web process asks the database, in ONE query for all its open
sockets, whether each socket's session still exists and has not expired, and whether its
user still exists, is active, has the same password (session auth hash) and may view the
dashboard (the permission directly, through a group, or as a superuser). Sockets that
fail are closed:

- 4401 (log in again): the session was deleted or expired (`Session.objects...delete()`,
  `clearsessions`), the user was deleted or deactivated, or the password changed. These
  are the cases in which Django itself no longer treats the session as logged in.
- 4403: still logged in, but without `dashboard.view_dashboard` (the permission or the
  "Dashboard viewers" group taken away, superuser status removed).

The query's cost grows with the number of open sockets only through its two parameter
arrays; it is one round trip per process per interval, never one per socket. The check
mirrors Django's ModelBackend (what this project uses): a fork that grants the permission
through another authentication backend must extend `standings_of`.

A logout still closes its session's sockets at once (dashboard.session_sockets); this is
for everything that happens to an account without its own browser logging out.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from dashboard.access import VIEW_PERMISSION
from violations.contract import CloseCode

logger = logging.getLogger(__name__)

# Seconds between checks: a revoked socket is closed within this plus one query's time.
ACCESS_CHECK_SECONDS = 5.0
# Session engines whose sessions live in the database, where the check can see them.
_DATABASE_SESSION_ENGINES = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}


@dataclass(frozen=True)
class Grant:
    """What a socket was opened with: its session, its user, and the user's auth hash then."""

    session_key: str
    user_id: Any
    auth_hash: str


@dataclass(frozen=True)
class Standing:
    """What the database says now about one (session, user) pair."""

    session_alive: bool
    user_active: bool | None  # None: the user no longer exists
    password: str | None
    may_view: bool


class Revocable(Protocol):
    async def access_revoked(self, code: CloseCode) -> None: ...


def check_interval() -> float:
    return float(getattr(settings, "DASHBOARD_ACCESS_CHECK_SECONDS", ACCESS_CHECK_SECONDS))


def refusals(
    grants: Iterable[Grant],
    standings: Mapping[tuple[str, Any], Standing],
    auth_hash: Callable[[str], str],
) -> dict[Grant, CloseCode]:
    """The grants whose sockets must close, with the code each closes with.

    Pure: `standings` is the database's answer, `auth_hash` turns a password hash into the
    session auth hash Django would compare. A pair missing from the answer counts as gone.
    """
    hashes: dict[str, str] = {}  # one HMAC per distinct password, however many sockets
    closing: dict[Grant, CloseCode] = {}
    for grant in grants:
        standing = standings.get((grant.session_key, grant.user_id))
        if standing is None or not standing.session_alive or not standing.user_active:
            closing[grant] = CloseCode.UNAUTHENTICATED
            continue
        password = standing.password or ""
        if password not in hashes:
            hashes[password] = auth_hash(password)
        if hashes[password] != grant.auth_hash:
            closing[grant] = CloseCode.UNAUTHENTICATED
        elif not standing.may_view:
            closing[grant] = CloseCode.FORBIDDEN
    return closing


def session_auth_hash(password: str) -> str:
    """The session auth hash Django derives from a stored password hash."""
    return get_user_model()(password=password).get_session_auth_hash()


def standings_of(pairs: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], Standing]:
    """One query: the standing of every (session key, user id) pair. Synchronous."""
    pairs = list(set(pairs))
    if not pairs:
        return {}
    user_model = get_user_model()
    quote = connection.ops.quote_name
    user_perms = user_model._meta.get_field("user_permissions")
    user_groups = user_model._meta.get_field("groups")
    group_perms = Group._meta.get_field("permissions")
    app_label, codename = VIEW_PERMISSION.split(".", 1)
    tables = {
        "user": quote(user_model._meta.db_table),
        "user_pk": quote(user_model._meta.pk.column),
        "user_pk_type": user_model._meta.pk.db_type(connection),
        "user_perms": quote(user_perms.m2m_db_table()),
        "up_user": quote(user_perms.m2m_column_name()),
        "up_perm": quote(user_perms.m2m_reverse_name()),
        "user_groups": quote(user_groups.m2m_db_table()),
        "ug_user": quote(user_groups.m2m_column_name()),
        "ug_group": quote(user_groups.m2m_reverse_name()),
        "group_perms": quote(group_perms.m2m_db_table()),
        "gp_group": quote(group_perms.m2m_column_name()),
        "gp_perm": quote(group_perms.m2m_reverse_name()),
        "perm": quote(Permission._meta.db_table),
        "ct": quote(ContentType._meta.db_table),
    }
    if settings.SESSION_ENGINE in _DATABASE_SESSION_ENGINES:
        session_model = import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()
        session_alive = "s.session_key IS NOT NULL"
        session_join = (
            f"LEFT JOIN {quote(session_model._meta.db_table)} s"
            " ON s.session_key = o.session_key AND s.expire_date > %(now)s"
        )
    else:  # a cache or signed cookies: not visible from here; logouts still close
        session_alive, session_join = "TRUE", ""
    # Identifiers come from model metadata, quoted; every value is a parameter.
    query = _STANDINGS_SQL.format(session_alive=session_alive, session_join=session_join, **tables)
    params = {
        "keys": [key for key, _ in pairs],
        "users": [user for _, user in pairs],
        "now": timezone.now(),
        "app_label": app_label,
        "codename": codename,
    }
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    return {
        (key, user): Standing(
            session_alive=bool(alive),
            user_active=active,
            password=password,
            may_view=bool(may_view),
        )
        for key, user, alive, active, password, may_view in rows
    }


_STANDINGS_SQL = """
SELECT o.session_key, o.user_id, {session_alive}, u.is_active, u.password,
       u.is_superuser
       OR EXISTS (SELECT 1 FROM {user_perms} up
                  JOIN {perm} p ON p.id = up.{up_perm}
                  JOIN {ct} ct ON ct.id = p.content_type_id
                  WHERE up.{up_user} = u.{user_pk}
                    AND ct.app_label = %(app_label)s AND p.codename = %(codename)s)
       OR EXISTS (SELECT 1 FROM {user_groups} ug
                  JOIN {group_perms} gp ON gp.{gp_group} = ug.{ug_group}
                  JOIN {perm} p ON p.id = gp.{gp_perm}
                  JOIN {ct} ct ON ct.id = p.content_type_id
                  WHERE ug.{ug_user} = u.{user_pk}
                    AND ct.app_label = %(app_label)s AND p.codename = %(codename)s)
FROM unnest(%(keys)s::text[], %(users)s::{user_pk_type}[]) AS o(session_key, user_id)
{session_join}
LEFT JOIN {user} u ON u.{user_pk} = o.user_id
"""


class AccessWatch:
    """This process's open sockets and what they were opened with; checks them all at once."""

    def __init__(self) -> None:
        self._grants: dict[Revocable, Grant] = {}
        self._task: asyncio.Task | None = None

    def watch(self, socket: Revocable, grant: Grant) -> None:
        self._grants[socket] = grant
        # Restarted if it ended: after a crash, or with the event loop it ran in (tests).
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="access-watch")

    def forget(self, socket: Revocable) -> None:
        self._grants.pop(socket, None)

    async def check(self) -> int:
        """Check every watched socket once; close those that lost access; how many closed."""
        grants = dict(self._grants)
        if not grants:
            return 0
        pairs = {(grant.session_key, grant.user_id) for grant in grants.values()}
        standings = await database_sync_to_async(standings_of)(pairs)
        closing = refusals(grants.values(), standings, session_auth_hash)
        closed = 0
        for socket, grant in grants.items():
            code = closing.get(grant)
            # Not a socket that closed, or reopened with a new grant, while we asked.
            if code is None or self._grants.get(socket) is not grant:
                continue
            del self._grants[socket]
            closed += 1
            try:
                await socket.access_revoked(code)
            except Exception:
                logger.exception("could not close a socket whose access was revoked")
        return closed

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(check_interval())
            try:
                await self.check()
            except Exception as exc:
                # The database may be away for a moment: sockets stay, the next check decides.
                logger.warning("could not check open sockets' access (%s)", exc)


access_watch = AccessWatch()
