"""What every dashboard socket enforces: in-process where a server adds nothing (Channels'
WebsocketCommunicator), else through a real Daphne and a real WebSocket client.

Cross-site WebSocket hijacking, what clients may send (size, shape, rate), and logout.
Both endpoints behave the same: /ws/dashboard/ (HTML fragments) and /ws/violations/ (JSON).
"""

import json
from contextlib import ExitStack, contextmanager

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.urls import path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.uri import parse_uri

from dashboard.client_messages import MAX_MESSAGE_BYTES, InvalidClientMessage, since_from_query
from dashboard.routing import guarded, websocket_urlpatterns
from dashboard.socket_guard import SocketGuard
from tests.conftest import as_viewer, grant_dashboard_view
from tests.in_process import OWN_ORIGIN, REFUSED, handshake, run_in_process
from tests.processes import Daphne
from tests.web_client import WebClient, answers_in_order, close_code
from violations.contract import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)
in_process = pytest.mark.django_db  # touches no row: no flush to pay for

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


# --- Origin: cross-site WebSocket hijacking, in-process ------------------------------------

# Origins a page could have that are not the dashboard's (http://127.0.0.1:8000).
FOREIGN_ORIGINS = {
    "other-site": "https://evil.example",
    "other-port": "http://127.0.0.1:9999",
    "next-port": "http://127.0.0.1:8001",
    "other-scheme": "https://127.0.0.1:8000",
    "other-allowed-host": "http://localhost:8000",
    "look-alike": "http://127.0.0.1.evil.example:8000",
    "null": "null",
    "with-path": "http://127.0.0.1:8000/",
    "missing": None,
}


@in_process
@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize("origin", FOREIGN_ORIGINS.values(), ids=FOREIGN_ORIGINS.keys())
def test_only_the_pages_exact_origin_may_open_a_socket(path, origin):
    """Scheme, host and port must all match: a page on another port or scheme of an allowed
    host (any local service), `null` (sandboxed frames, file://) and no Origin at all are
    refused before the consumer runs, as a foreign site is; a server answers that with 403
    (tests/test_web_servers.py)."""
    assert handshake(path, origin=origin) == REFUSED
    # ... while the page's own origin reaches the consumer, which refuses the anonymous.
    assert handshake(path, origin=OWN_ORIGIN) == CloseCode.UNAUTHENTICATED


# --- What a client may send, in-process ------------------------------------------------------
# The rules are SocketGuard's, the same for both endpoints; tests/test_web_servers.py has
# Daphne and uvicorn deliver the close codes.


class ResumeRecorder(SocketGuard, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def handle_resume(self, since: int | None) -> None:
        await self.send(text_data=f"resume since {since}")


LAST = json.dumps({"type": "resume", "since": 0})  # answered once all before it are handled


def replies(*frames: str | bytes) -> list[str | int]:
    """What a SocketGuard consumer sends back, in-process, for `frames` and then LAST: its
    text frames up to LAST's answer, or up to its close code if it closes first."""

    async def scenario() -> list[str | int]:
        socket = WebsocketCommunicator(as_viewer(ResumeRecorder.as_asgi()), "/ws/test/")
        connected, _ = await socket.connect()
        assert connected
        for frame in (*frames, LAST):
            kind = "bytes_data" if isinstance(frame, bytes) else "text_data"
            await socket.send_to(**{kind: frame})
        received: list[str | int] = []
        while True:
            output = await socket.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                received.append(output["code"])
                break
            received.append(output["text"])
            if output["text"] == "resume since 0":
                break
        await socket.disconnect()
        return received

    return run_in_process(scenario)


@in_process
def test_an_oversized_message_closes_the_socket_with_4413():
    assert replies(OVERSIZED) == [CloseCode.MESSAGE_TOO_BIG]


@in_process
def test_an_unknown_message_gets_no_reply():
    echo = json.dumps({"type": "echo", "text": "<script>alert(1)</script>"})
    assert replies(echo) == ["resume since 0"]


@in_process
@pytest.mark.parametrize(
    "frame",
    ["not json", '{"no": "type"}', '{"type": "resume", "since": -1}', b"\x00binary"],
    ids=["not-json", "no-type", "bad-since", "binary"],
)
def test_a_malformed_message_closes_the_socket_with_4400(frame):
    assert replies(frame) == [CloseCode.BAD_MESSAGE]


@in_process
def test_a_resume_message_reaches_the_consumers_hook_with_its_seq():
    resumes = ['{"type": "resume", "since": 7}', '{"type": "resume", "since": null}']
    assert replies('{"type": "ping"}', *resumes) == [
        "resume since 7",
        "resume since None",
        "resume since 0",
    ]


@in_process
def test_a_client_flooding_messages_is_disconnected_with_4429():
    assert replies(*['{"type": "ping"}'] * 200) == [CloseCode.TOO_MANY_MESSAGES]


@in_process
def test_messages_within_the_allowance_keep_the_socket_open():
    # LAST is the burst's last message.
    pings = ['{"type": "ping"}'] * (SocketGuard.message_burst - 1)
    assert replies(*pings) == ["resume since 0"]
    assert replies(*pings, '{"type": "ping"}') == [CloseCode.TOO_MANY_MESSAGES]


@pytest.mark.parametrize("path", SOCKETS)
def test_a_resume_message_is_answered(daphne, path):
    with open_ready(viewer(daphne), daphne, path) as socket:
        # A resync for the feed (no log reaches 2**63-1), a refresh for the dashboard.
        assert answers_in_order(socket)


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
            return "open" if answers_in_order(socket) else f"closed {socket.close_code}"
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
        assert answers_in_order(elsewhere)


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
