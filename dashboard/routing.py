"""Every WebSocket the project serves, and the checks each passes on its way in.

The origin is checked before anything else (dashboard.origins), the session and user are
loaded (Channels' AuthMiddlewareStack), and every routed consumer must be a SocketGuard
(dashboard.socket_guard), which admits only viewers before the consumer's `connect()`.
"""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, path

from dashboard.consumers import DashboardConsumer, ViolationFeedConsumer
from dashboard.origins import ExactOriginValidator
from dashboard.socket_guard import SocketGuard


def guarded(patterns: list[URLPattern]) -> list[URLPattern]:
    """`patterns` unchanged; ImproperlyConfigured if one routes to a consumer that would
    skip the access checks (not a SocketGuard)."""
    for pattern in patterns:
        consumer = getattr(pattern.callback, "consumer_class", None)
        if not (isinstance(consumer, type) and issubclass(consumer, SocketGuard)):
            raise ImproperlyConfigured(
                f"WebSocket route {str(pattern.pattern)!r} serves {consumer or pattern.callback!r},"
                " which is not a dashboard.socket_guard.SocketGuard consumer: it would be open"
                " to anyone"
            )
    return patterns


websocket_urlpatterns = guarded(
    [
        path("ws/dashboard/", DashboardConsumer.as_asgi()),
        path("ws/violations/", ViolationFeedConsumer.as_asgi()),
    ]
)


def websocket_application(patterns: list[URLPattern] = websocket_urlpatterns) -> Any:
    """The ASGI application for the websocket protocol: origin, then login, then the routes."""
    # Origin must be this page's own (scheme, host in ALLOWED_HOSTS, port) or in
    # CSRF_TRUSTED_ORIGINS: no other page can open a socket with our user's cookies.
    return ExactOriginValidator(AuthMiddlewareStack(URLRouter(guarded(patterns))))
