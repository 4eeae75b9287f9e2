"""A browser without the browser: cookies, CSRF tokens and forms against a real server.

For tests about what the server answers (status codes, cookies, lockouts), where a
headless Chromium would add nothing but time. Redirects are not followed, so a test sees
the 302 a login answers with.
"""

import functools
import http.client
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dashboard.client_messages import MAX_SEQ


@dataclass(frozen=True)
class Response:
    status: int
    headers: Any
    text: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _FromAddress(urllib.request.HTTPHandler):
    """Connects from a chosen local address (any of 127.0.0.0/8 on loopback), so a test
    can be several clients, or a proxy and its clients, on one machine."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(http.client.HTTPConnection, source_address=(self.address, 0))
        return self.do_open(connection, req)


class WebClient:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        *,
        source_address: str | None = None,
    ) -> None:
        """`headers` go with every HTTP request (not with sockets), e.g. X-Forwarded-For;
        `source_address` is the local address to connect from (127.0.0.2, say)."""
        self.base_url = base_url
        self.source_address = source_address
        self.cookies = http.cookiejar.CookieJar()
        handlers = [_FromAddress(source_address)] if source_address else []
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects(), *handlers
        )
        self._opener.addheaders += list((headers or {}).items())

    def get(self, path: str) -> Response:
        return self._open(urllib.request.Request(self.base_url + path))

    def post_form(self, path: str, fields: dict[str, str]) -> Response:
        """POST `fields` as a browser submitting the page's form would, CSRF token included."""
        if "csrftoken" not in self.cookie_values:
            self.get(path)  # the form page sets the CSRF cookie
        data = {"csrfmiddlewaretoken": self.cookie_values["csrftoken"], **fields}
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.base_url + path, data=body))

    def log_in(self, username: str, password: str) -> Response:
        return self.post_form("/accounts/login/", {"username": username, "password": password})

    def log_out(self) -> Response:
        return self.post_form("/accounts/logout/", {})

    @property
    def cookie_values(self) -> dict[str, str]:
        return {cookie.name: cookie.value for cookie in self.cookies}

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookie_values.items())

    def open_socket(self, ws_url: str, path: str, *, origin: str | None = None) -> ClientConnection:
        """A WebSocket carrying this client's cookies, by default from the origin of the page
        that would open it: the socket's own server (which need not be the one this client
        logged in on: sessions are shared)."""
        source = {"source_address": (self.source_address, 0)} if self.source_address else {}
        page_origin = "http" + ws_url.removeprefix("ws") if ws_url.startswith("ws") else ws_url
        return connect(
            ws_url + path,
            origin=origin or page_origin,
            additional_headers={"Cookie": self.cookie_header},
            open_timeout=10,
            **source,
        )

    def _open(self, request: urllib.request.Request) -> Response:
        try:
            with self._opener.open(request, timeout=15) as response:
                return Response(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx and 5xx
            with error:
                return Response(error.code, error.headers, error.read().decode())


def close_code(socket: ClientConnection, timeout: float = 10) -> int | None:
    """The code the server closes `socket` with, after any messages it sends first."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            socket.recv(timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        pytest.fail(f"the socket was still open after {timeout} s")
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def next_close_code(socket: ClientConnection, timeout: float = 10) -> int | None:
    """The close code, provided the server sends nothing else before it."""
    try:
        message = socket.recv(timeout=timeout)
    except TimeoutError:
        pytest.fail(f"the socket was still open after {timeout} s")
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    pytest.fail(f"expected the socket to close, but it sent {message[:200]!r}")


# A resume each endpoint answers at once: the feed with a resync (no log reaches that far),
# the dashboard with a full refresh.
PROBES = {
    "/ws/violations/": json.dumps({"type": "resume", "since": MAX_SEQ}),
    "/ws/dashboard/": json.dumps({"type": "resume", "since": None}),
}


def answers_in_order(socket: ClientConnection, timeout: float = 10) -> bool:
    """True if the application answers a resume sent now, so the socket is open and the
    application has handled every frame sent before it (a consumer takes them in order);
    False if the socket closes first. Heartbeats and events on the way are skipped. A
    dashboard must have sent its first frame, and no row be written meanwhile: its answer is
    a frame of widgets."""
    path = socket.request.path.partition("?")[0]
    deadline = time.monotonic() + timeout
    try:
        socket.send(PROBES[path])
        while True:
            frame = socket.recv(timeout=max(0.0, deadline - time.monotonic()))
            if path == "/ws/violations/" and json.loads(frame).get("type") == "resync":
                return True
            if path == "/ws/dashboard/" and 'id="widget-' in frame:
                return True
    except TimeoutError:
        pytest.fail(f"no answer to a resume within {timeout} s")
    except ConnectionClosed:
        return False
