"""ASGI entry point `config.asgi:application`: HTTP via Django, WebSockets via Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

# Django must be set up before the consumers (and the models they import) load.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware  # noqa: E402

from dashboard.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(),
    }
)

if settings.FORWARDED_ALLOW_IPS:
    # The same for Daphne and uvicorn (both started without their own proxy handling):
    # X-Forwarded-For/-Proto are believed only from these peers, never from a client.
    application = ProxyHeadersMiddleware(application, trusted_hosts=settings.FORWARDED_ALLOW_IPS)

# A web process holds thousands of sockets' objects, and one event sent to each of them
# makes thousands of short-lived ones: with Python's default (a young collection every 700
# allocations) 17 % of the fan-out's CPU went to the collector. What import made lives as
# long as the process: no collection needs to look at it again (docs/decisions.md).
gc.freeze()
gc.set_threshold(10_000, 10, 10)
