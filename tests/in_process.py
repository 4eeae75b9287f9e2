"""Handshakes with `config.asgi:application` in this process, through Channels'
`WebsocketCommunicator`: the same middleware (Origin, sessions, auth) and consumers the
servers run, for checks where a real server adds nothing. tests/test_web_servers.py shows
that Daphne and uvicorn deliver the outcomes to a real client.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from tests.browser import without_event_loop

# The Host a page on 127.0.0.1 port 8000 sends, and so its own origin.
HOST = "127.0.0.1:8000"
OWN_ORIGIN = f"http://{HOST}"
REFUSED = "refused before the consumer ran"  # a server answers this with HTTP 403
T = TypeVar("T")


def handshake(
    path: str, *, origin: str | None = OWN_ORIGIN, cookie: str | None = None, host: str = HOST
) -> int | str:
    """The close code the application answers a handshake for `path` with, once accepted;
    REFUSED if it closed the socket without accepting it."""
    from config.asgi import application  # late: it sets Django up, after pytest-django

    headers = [(b"host", host.encode())]
    headers += [(b"origin", origin.encode())] if origin is not None else []
    headers += [(b"cookie", cookie.encode())] if cookie else []

    async def scenario() -> int | str:
        socket = WebsocketCommunicator(application, path, headers=headers)
        try:
            accepted, _ = await socket.connect(timeout=5)
            if not accepted:
                return REFUSED
            closed = await socket.receive_output(timeout=5)
            assert closed["type"] == "websocket.close", closed
            return closed["code"]
        finally:
            await socket.disconnect()

    return run_in_process(scenario)


def run_in_process(scenario: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run(scenario()) with a channel layer bound to that loop."""
    channel_layers.backends.clear()  # the layer binds to the loop that first uses it
    try:
        with without_event_loop():  # Playwright's parked loop, if a browser test ran first
            return asyncio.run(scenario())
    finally:
        channel_layers.backends.clear()
