"""What every dashboard socket enforces, through a real Daphne and a real WebSocket client.

Cross-site WebSocket hijacking, what clients may send (size, shape, rate), and logout.
Both endpoints behave the same: /ws/dashboard/ (HTML fragments) and /ws/violations/ (JSON).
"""

import asyncio
import json
from contextlib import ExitStack, contextmanager, suppress

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.urls import path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.uri import parse_uri

from dashboard.client_messages import MAX_MESSAGE_BYTES, InvalidClientMessage, since_from_query
from dashboard.routing import guarded, websocket_urlpatterns
from dashboard.socket_guard import SocketGuard
from tests.browser import without_event_loop
from tests.conftest import as_viewer, grant_dashboard_view
from tests.processes import Daphne
from tests.web_client import WebClient, close_code, next_close_code, still_open

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password"
SOCKETS = ["/ws/dashboard/", "/ws/violations/"]
OVERSIZED = json.dumps({"type": "resume", "since": 1, "pad": "x" * MAX_MESSAGE_BYTES})


def viewer(daphne, username: str = "wall-screen") -> WebClient:
    """A logged-in dashboard viewer, logged in through the login form."""
    user_model = get_user_model()
    if not user_model.objects.filter(username=username).exists():
        grant_dashboard_view(user_model.objects.create_user(username, password=PASSWORD))
    client = WebClient(daphne.http_url)
    assert client.log_in(username, PASSWORD).status == 302
    return client


@contextmanager
def open_ready(client: WebClient, daphne, path: str, origin: str | None = None):
    """Open `path` and wait until it is serving (the dashboard first sends a full refresh)."""
    with client.open_socket(daphne.ws_url, path, origin=origin) as socket:
        if path == "/ws/dashboard/":
            assert "widget-" in socket.recv(timeout=10)
        yield socket


# --- Origin: cross-site WebSocket hijacking --------------------------------------------------


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1.evil.example", "http://localhost.evil.example:80"],
)
def test_a_page_on_another_site_cannot_open_a_socket_with_the_users_cookies(daphne, path, origin):
    client = viewer(daphne)

    with pytest.raises(InvalidStatus) as refused:
        client.open_socket(daphne.ws_url, path, origin=origin)

    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize("origin", [None, "null"], ids=["no-origin", "null-origin"])
def test_a_handshake_without_a_real_origin_is_refused(daphne, path, origin):
    """Browsers always send Origin; only scripts omit it, and for them one header is no burden.

    "null" is what sandboxed frames and file:// pages send: not our site either.
    """
    client = viewer(daphne)
    headers = {"Cookie": client.cookie_header} | ({"Origin": origin} if origin else {})

    with pytest.raises(InvalidStatus) as refused:
        connect(daphne.ws_url + path, additional_headers=headers, open_timeout=10)

    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("path", SOCKETS)
def test_the_sites_own_pages_may_connect(daphne, path):
    # Only the page's exact origin: localhost for a socket on 127.0.0.1 is another origin
    # (tests/test_web_servers.py::test_only_the_pages_exact_origin_may_open_a_socket).
    with open_ready(viewer(daphne), daphne, path, origin=daphne.http_url) as socket:
        assert still_open(socket)


# --- What a client may send ------------------------------------------------------------------


@pytest.mark.parametrize("path", SOCKETS)
def test_an_oversized_message_closes_the_socket_with_4413(daphne, path):
    with open_ready(viewer(daphne), daphne, path) as socket:
        socket.send(OVERSIZED)
        assert next_close_code(socket) == 4413


@pytest.mark.parametrize("path", SOCKETS)
def test_an_unknown_message_gets_no_reply(daphne, path):
    with open_ready(viewer(daphne), daphne, path) as socket:
        socket.send(json.dumps({"type": "echo", "text": "<script>alert(1)</script>"}))
        # Frames are handled in order: had the first produced any reply, it would arrive
        # before the close the oversized one causes.
        socket.send(OVERSIZED)
        assert next_close_code(socket) == 4413


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize(
    "frame",
    ["not json", '{"no": "type"}', '{"type": "resume", "since": -1}', b"\x00binary"],
    ids=["not-json", "no-type", "bad-since", "binary"],
)
def test_a_malformed_message_closes_the_socket_with_4400(daphne, path, frame):
    with open_ready(viewer(daphne), daphne, path) as socket:
        socket.send(frame)
        assert next_close_code(socket) == 4400


@pytest.mark.parametrize("path", SOCKETS)
def test_a_resume_message_is_accepted(daphne, path):
    with open_ready(viewer(daphne), daphne, path) as socket:
        socket.send(json.dumps({"type": "resume", "since": 42}))
        socket.send(json.dumps({"type": "resume", "since": None}))
        assert still_open(socket)


@pytest.mark.parametrize("path", SOCKETS)
def test_a_client_flooding_messages_is_disconnected_with_4429(daphne, path):
    with open_ready(viewer(daphne), daphne, path) as socket:
        sent = 0
        with suppress(ConnectionClosed):
            while sent < 200:  # harmless messages, as fast as the client can send them
                socket.send('{"type": "ping"}')
                sent += 1
        assert close_code(socket) == 4429
        assert sent > SocketGuard.message_burst


def test_messages_within_the_allowance_keep_the_socket_open(daphne):
    with open_ready(viewer(daphne), daphne, "/ws/violations/") as socket:
        for _ in range(SocketGuard.message_burst):
            socket.send('{"type": "ping"}')
        assert still_open(socket)


# --- The feed's ?since= -------------------------------------------------------------------------

# What a query string may hold: anything a URL can carry (the client percent-encodes what is
# not ASCII), so also '²', '١٢', '%zz', '+', '&since=' twice.
query_text = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="#"
    ),
    max_size=30,
)
query_strings = st.one_of(
    query_text.map(lambda value: "since=" + value),
    st.from_regex(r"since=[0-9]{1,21}", fullmatch=True),
    st.lists(st.tuples(st.sampled_from(["since", "%73ince", "x", ""]), query_text), max_size=3).map(
        lambda fields: "&".join(f"{key}={value}" for key, value in fields)
    ),
    query_text,
)


def handshake_outcome(daphne, cookie: str, query: str) -> str:
    """'open', or 'closed <code>', for /ws/violations/?<query> as the viewer holding `cookie`."""
    try:
        with connect(
            f"{daphne.ws_url}/ws/violations/?{query}",
            origin=daphne.http_url,
            additional_headers={"Cookie": cookie},
            open_timeout=10,
        ) as socket:
            try:
                socket.recv(timeout=0.2)  # a refusal arrives at once; a live feed says nothing
            except TimeoutError:
                return "open" if still_open(socket) else "closed"
            except ConnectionClosed as closed:
                return f"closed {closed.rcvd.code if closed.rcvd else None}"
            return "open"  # an event arrived: it was accepted
    except InvalidStatus as refused:
        return f"http {refused.value.response.status_code}"


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        ("since=²", "closed 4400"),  # str.isdigit() said yes and int() raised: HTTP 500
        ("since=١٢", "closed 4400"),  # int() would read these as 12
        ("since=99999999999999999999", "closed 4400"),
        ("since=-1", "closed 4400"),
        ("since=0", "open"),
        ("", "open"),
    ],
)
def test_since_takes_ascii_digits_only_and_anything_else_closes_with_4400(daphne, query, outcome):
    assert handshake_outcome(daphne, viewer(daphne).cookie_header, query) == outcome


@pytest.fixture
def viewer_cookie(daphne) -> str:
    return viewer(daphne).cookie_header


# One login for all examples (the fixture runs once per test, which is what is wanted).
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=query_strings)
def test_any_handshake_query_string_is_a_socket_or_a_4400_never_a_500(daphne, viewer_cookie, query):
    """Fuzzed through the real Daphne: every outcome is the parser's verdict, and the server
    log shows no traceback."""
    cookie = viewer_cookie
    sent = parse_uri(f"{daphne.ws_url}/ws/violations/?{query}").resource_name.partition("?")[2]
    try:
        since_from_query(sent.encode("ascii"))
        expected = "open"
    except InvalidClientMessage:
        expected = "closed 4400"
    log_before = len(daphne.log())

    assert handshake_outcome(daphne, cookie, query) == expected, sent
    new_log = daphne.log()[log_before:]
    assert "Traceback" not in new_log
    assert "Exception inside application" not in new_log


# --- Logout ----------------------------------------------------------------------------------


def test_logging_out_closes_that_sessions_sockets_on_both_endpoints(daphne):
    browser = viewer(daphne)
    other_device = viewer(daphne)  # the same account, logged in elsewhere
    with ExitStack() as sockets:
        dashboard = sockets.enter_context(open_ready(browser, daphne, "/ws/dashboard/"))
        feed = sockets.enter_context(open_ready(browser, daphne, "/ws/violations/"))
        elsewhere = sockets.enter_context(open_ready(other_device, daphne, "/ws/violations/"))

        response = browser.log_out()

        assert (response.status, response.location) == (302, "/accounts/login/")
        assert close_code(dashboard) == 4401
        assert close_code(feed) == 4401
        # Another session of the same user is still logged in, so its socket stays.
        assert still_open(elsewhere)


def test_logging_out_on_one_web_process_closes_the_sessions_sockets_on_another(
    stack_env, logs, daphne
):
    other_process = Daphne(stack_env, logs / "daphne-logout.log").start()
    try:
        browser = viewer(daphne)
        with open_ready(
            browser, other_process, "/ws/violations/", origin=other_process.http_url
        ) as feed:
            browser.log_out()  # through the first process
            assert close_code(feed) == 4401
    finally:
        other_process.stop()


def test_a_logged_out_session_cannot_open_a_socket_again(daphne):
    browser = viewer(daphne)
    old_cookie = browser.cookie_header
    browser.log_out()

    with connect(
        daphne.ws_url + "/ws/violations/",
        origin=daphne.http_url,
        additional_headers={"Cookie": old_cookie},
        open_timeout=10,
    ) as socket:
        assert close_code(socket) == 4401


# --- The resume hook, in-process ---------------------------------------------------------------


def run_in_process(scenario):
    """asyncio.run(scenario()) with a channel layer bound to that loop."""
    channel_layers.backends.clear()  # the layer binds to the loop that first uses it
    try:
        with without_event_loop():  # Playwright's parked loop, if a browser test ran first
            return asyncio.run(scenario())
    finally:
        channel_layers.backends.clear()


class ResumeRecorder(SocketGuard, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def handle_resume(self, since: int | None) -> None:
        await self.send(text_data=f"resume since {since}")


def test_a_resume_message_reaches_the_consumers_hook_with_its_seq():
    async def scenario() -> list[str]:
        communicator = WebsocketCommunicator(as_viewer(ResumeRecorder.as_asgi()), "/ws/test/")
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data='{"type": "ping"}')
        await communicator.send_to(text_data='{"type": "resume", "since": 7}')
        await communicator.send_to(text_data='{"type": "resume", "since": null}')
        replies = [await communicator.receive_from(timeout=5) for _ in range(2)]
        await communicator.disconnect()
        return replies

    replies = run_in_process(scenario)
    assert replies == ["resume since 7", "resume since None"]


# --- Access is not opt-in: a new consumer inherits it ------------------------------------------


class Forgetful(SocketGuard, AsyncWebsocketConsumer):
    """A new consumer whose author wrote no access check at all."""

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data="the dashboard's data")


def opened_as(user) -> list[dict]:
    """What a Forgetful socket opened by `user` receives first."""

    async def with_user(scope, receive, send):
        return await Forgetful.as_asgi()(dict(scope, user=user), receive, send)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(with_user, "/ws/new/")
        connected, _ = await communicator.connect()
        assert connected  # accepted, so the client sees the close code
        received = [await communicator.receive_output(timeout=5)]
        await communicator.disconnect()
        return received

    return run_in_process(scenario)


def test_a_new_consumer_without_any_access_call_refuses_an_anonymous_visitor():
    assert opened_as(AnonymousUser()) == [{"type": "websocket.close", "code": 4401}]


def test_a_new_consumer_without_any_access_call_refuses_a_user_without_the_permission():
    user = get_user_model().objects.create_user("no-permission", password=PASSWORD)
    assert opened_as(user) == [{"type": "websocket.close", "code": 4403}]


def test_a_new_consumer_serves_a_viewer():
    user = get_user_model().objects.create_user("may-view", password=PASSWORD)
    grant_dashboard_view(user)
    assert opened_as(user) == [{"type": "websocket.send", "text": "the dashboard's data"}]


def test_routing_refuses_a_consumer_that_would_skip_the_access_checks():
    class Open(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

    with pytest.raises(ImproperlyConfigured, match="open to anyone"):
        guarded([path("ws/open/", Open.as_asgi())])
    assert guarded(websocket_urlpatterns) == websocket_urlpatterns
