"""Who may watch the dashboard: one permission, granted through one group.

A wall-screen account needs only to be in the "Dashboard viewers" group (created by a
migration): no staff status, no admin. Superusers have every permission implicitly.
"""

from typing import Any

from violations.contract import CloseCode

VIEW_PERMISSION = "dashboard.view_dashboard"
VIEWERS_GROUP = "Dashboard viewers"


def refusal(user: Any) -> CloseCode | None:
    """Why `user` may not watch the dashboard, as a socket close code; None if they may.

    Synchronous: checking a permission may query the database.
    """
    if user is None or not user.is_authenticated:
        return CloseCode.UNAUTHENTICATED
    if not user.has_perm(VIEW_PERMISSION):
        return CloseCode.FORBIDDEN
    return None
