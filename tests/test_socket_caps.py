"""Sockets per session and per user are capped across web processes, and a crashed process's
sockets stop counting after one lease. Real Daphne processes sharing the suite's Redis."""

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dashboard.socket_caps import (
    LEASE_SECONDS,
    SOCKETS_PER_SESSION,
    SOCKETS_PER_USER,
    Caps,
    configured_caps,
    over_cap,
)
from devstack.ports import wait_until
from tests.conftest import grant_dashboard_view
from tests.processes import Daphne
from tests.settings_small_caps import (
    DASHBOARD_SOCKET_LEASE_SECONDS,
    DASHBOARD_SOCKETS_PER_SESSION,
    DASHBOARD_SOCKETS_PER_USER,
)
from tests.web_client import WebClient, answers_in_order, close_code
from violations.contract import CloseCode

PASSWORD = "a-long-test-password"
FEED = "/ws/violations/"

# --- The rule (pure) ---------------------------------------------------------------------------


def test_the_defaults_let_a_wall_screen_account_run_many_screens():
    assert (SOCKETS_PER_SESSION, SOCKETS_PER_USER, LEASE_SECONDS) == (20, 200, 30.0)
    assert configured_caps() == Caps(20, 200, 30.0)  # the project's settings keep them


@pytest.mark.parametrize(
    ("session_count", "user_count", "code"),
    [
        (0, 0, None),
        (2, 4, None),
        (3, 0, CloseCode.TOO_MANY_SOCKETS),  # the session is full
        (0, 5, CloseCode.TOO_MANY_SOCKETS),  # the user is full, whatever the session
    ],
)
def test_one_more_socket_than_a_cap_is_refused(session_count, user_count, code):
    assert over_cap(session_count, user_count, Caps(3, 5, 1.0)) == code


# --- Through real servers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_caps(stack_env, logs) -> Iterator[tuple[Daphne, Daphne]]:
    """Two web processes with caps of 3 per session and 5 per user, and 3 s leases."""
    env = stack_env | {"DJANGO_SETTINGS_MODULE": "tests.settings_small_caps"}
    first = Daphne(env, logs / "daphne-caps-1.log").start()
    second = Daphne(env, logs / "daphne-caps-2.log").start()
    yield first, second
    first.stop()
    second.stop()


def viewer(web, username: str = "wall-screen") -> WebClient:
    """A new login session of `username` (created as a viewer if need be)."""
    users = get_user_model().objects
    if not users.filter(username=username).exists():
        grant_dashboard_view(users.create_user(username, password=PASSWORD))
    client = WebClient(web.http_url)
    assert client.log_in(username, PASSWORD).status == 302
    return client


def open_feed(stack: ExitStack, client: WebClient, web) -> ClientConnection:
    socket = stack.enter_context(client.open_socket(web.ws_url, FEED))
    assert answers_in_order(socket)
    return socket


def admitted(client: WebClient, web) -> bool:
    """True if a new socket of `client` stays open (a refusal closes it at once)."""
    with client.open_socket(web.ws_url, FEED) as socket:
        try:
            socket.recv(timeout=0.3)
        except TimeoutError:
            return True
        except ConnectionClosed:
            return False
        return True


def refused(client: WebClient, web) -> int | None:
    with client.open_socket(web.ws_url, FEED) as socket:
        return close_code(socket)


@pytest.mark.django_db(transaction=True)
def test_a_session_is_capped_across_processes_and_a_closed_socket_frees_its_place(small_caps):
    first, second = small_caps
    browser = viewer(first)
    assert DASHBOARD_SOCKETS_PER_SESSION == 3
    with ExitStack() as stack:
        sockets = [open_feed(stack, browser, first), open_feed(stack, browser, first)]
        sockets.append(open_feed(stack, browser, second))

        assert refused(browser, first) == CloseCode.TOO_MANY_SOCKETS
        assert refused(browser, second) == CloseCode.TOO_MANY_SOCKETS
        assert all(answers_in_order(s) for s in sockets)  # the refusal closed only the newcomer

        sockets.pop(0).close()
        # Freed as the server handles the close: moments later, not a lease later.
        wait_until(lambda: admitted(browser, first), timeout=2, what="the freed place")


@pytest.mark.django_db(transaction=True)
def test_a_user_is_capped_over_all_its_sessions_and_other_users_are_not(small_caps):
    first, second = small_caps
    assert DASHBOARD_SOCKETS_PER_USER == 5
    screen_a, screen_b = viewer(first), viewer(second)
    with ExitStack() as stack:
        for _ in range(3):
            open_feed(stack, screen_a, first)
        open_feed(stack, screen_b, second)
        open_feed(stack, screen_b, first)

        # Screen B's session holds 2 of its 3, but the account holds 5 of its 5.
        assert refused(screen_b, second) == CloseCode.TOO_MANY_SOCKETS
        assert refused(viewer(first), first) == CloseCode.TOO_MANY_SOCKETS  # a new session too
        open_feed(stack, viewer(second, "another-account"), second)


@pytest.mark.django_db(transaction=True)
def test_a_crashed_process_stops_counting_within_one_lease(stack_env, logs, small_caps):
    first, _ = small_caps
    env = stack_env | {"DJANGO_SETTINGS_MODULE": "tests.settings_small_caps"}
    doomed = Daphne(env, logs / "daphne-caps-crash.log").start()
    browser = viewer(first)
    try:
        with ExitStack() as stack:
            for _ in range(3):
                open_feed(stack, browser, doomed)
            assert refused(browser, first) == CloseCode.TOO_MANY_SOCKETS

            doomed.signal(signal.SIGKILL)  # no close, no release: only the lease ends it
            doomed.process.wait(timeout=10)
            killed_at = time.monotonic()

            wait_until(
                lambda: admitted(browser, first),
                timeout=DASHBOARD_SOCKET_LEASE_SECONDS + 5,
                what="a place for the session",
            )
            assert time.monotonic() - killed_at <= DASHBOARD_SOCKET_LEASE_SECONDS + 5
    finally:
        doomed.stop()


@pytest.mark.django_db(transaction=True)
def test_with_the_default_caps_the_21st_socket_of_a_session_is_refused(daphne):
    browser = viewer(daphne)
    with ExitStack() as stack:
        sockets = [open_feed(stack, browser, daphne) for _ in range(SOCKETS_PER_SESSION)]
        assert refused(browser, daphne) == CloseCode.TOO_MANY_SOCKETS
        assert all(answers_in_order(s) for s in sockets)


@pytest.mark.django_db(transaction=True)
def test_a_page_refused_with_4409_says_so_and_does_not_hammer(page, daphne, session_cookie):
    """static/js/dashboard.js: the indicator says why, and the next try is a minute away."""
    attempts: list[str] = []
    page.on("websocket", lambda socket: attempts.append(socket.url))
    with ExitStack() as stack:
        for _ in range(SOCKETS_PER_SESSION):  # the session's share, held elsewhere
            socket = stack.enter_context(
                connect(
                    daphne.ws_url + FEED,
                    origin=daphne.http_url,
                    additional_headers={"Cookie": session_cookie},
                    open_timeout=10,
                )
            )
            assert answers_in_order(socket)
        name, value = session_cookie.split("=", 1)
        page.context.add_cookies([{"name": name, "value": value, "url": daphne.http_url}])
        page.goto(daphne.http_url + "/")

        indicator = page.locator("#connection")
        expect(indicator).to_have_attribute("data-state", "tooMany")
        expect(indicator).to_contain_text("Too many dashboards open for this login")
        page.wait_for_timeout(3000)  # the ordinary backoff would have retried by now
        assert len(attempts) == 1
        expect(indicator).to_have_attribute("data-state", "tooMany")
