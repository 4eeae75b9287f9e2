"""Ready for htmx 4 without switching (issue 15): every pushed part names its swap, the page
alone decides what a close code means, and static/js/htmx-events.js drives the same hooks
on htmx 2 (the default) and on htmx 4 (tests/settings_htmx4.py: the one-argument move).

Real Chromium, Daphne, PostgreSQL, Redis and listener. A close code Daphne never sends
(1011-1013, or one the page must act on whatever the extension does) is put on the page's
socket by Playwright's WebSocket routing, which relays everything else to the real server.
"""

import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Route, WebSocket, WebSocketRoute, expect

from dashboard import rendering
from tests.browser import page_errors
from tests.processes import Daphne, WebServer
from tests.test_dashboard_browser import HUMAN, count_today, insert, open_dashboard, plays_of
from violations.contract import CloseCode, Event

HTMX_4_SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.settings_htmx4"}
DASHBOARD_SOCKET = re.compile(r"/ws/dashboard/$")


# --- Every pushed part names its swap (pure: the real renderers, no server) -----------------


class TopLevelElements(HTMLParser):
    """The start tags at the top level of a fragment: (tag, attributes) each."""

    VOID = {"img", "br", "hr", "input", "meta", "link", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.found.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if self.depth == 0:
            self.found.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.depth -= 1


def top_level(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = TopLevelElements()
    parser.feed(html)
    parser.close()
    assert parser.depth == 0, "unbalanced fragment"
    return parser.found


def pushed_fragments() -> dict[str, str]:
    """Every kind of frame /ws/dashboard/ pushes, rendered by the functions that push it."""
    now = timezone.now()
    events = [Event(seq=1, table=HUMAN, op="INSERT", id=1, data={}, at=now.isoformat())]
    return {
        "render_refresh": rendering.render_refresh(1, None),
        "render_update": rendering.render_update(events, 1, None, every_widget=True),
        "render_status": rendering.render_status(1, None),
        "render_clock": rendering.render_clock(1, None, every_widget=True),
        "render_heartbeat": rendering.render_heartbeat(1, now),
    }


# htmx 2 reads "true" as outerHTML; htmx 4 swaps nothing of a ws frame without the attribute.
EXPLICIT_SWAP = re.compile(
    r"^(outerHTML|innerHTML|beforebegin|afterbegin|beforeend|afterend|delete)(:\S+)?$"
)


@pytest.mark.django_db
def test_every_element_a_dashboard_frame_carries_names_its_swap():
    frames = pushed_fragments()
    # A new kind of frame is a new renderer: it must be listed above, and so checked.
    renderers = {
        name
        for name, value in vars(rendering).items()
        if name.startswith("render_") and getattr(value, "__module__", "") == rendering.__name__
    }
    assert set(frames) == renderers
    for name, html in frames.items():
        elements = top_level(html)
        assert elements, name
        for tag, attrs in elements:
            swap = attrs.get("hx-swap-oob") or ""
            assert EXPLICIT_SWAP.match(swap), f"{name}: <{tag} id={attrs.get('id')}> {swap!r}"
            assert attrs.get("id"), f"{name}: <{tag}> has no id to swap"


# --- The page on htmx 2 and on htmx 4 (real browser) ----------------------------------------


@pytest.fixture(scope="module")
def daphne_htmx4(stack_env, logs) -> Iterator[Daphne]:
    server = Daphne(stack_env | HTMX_4_SETTINGS, logs / "daphne-htmx4.log").start()
    yield server
    server.stop()


@pytest.fixture(params=["2", "4"])
def htmx(request) -> str:
    return request.param


@pytest.fixture
def htmx_web(htmx, request) -> WebServer:
    """The session's Daphne serving the page with htmx `htmx`."""
    return request.getfixturevalue("daphne" if htmx == "2" else "daphne_htmx4")


def sent_frames(page: Page) -> list[dict]:
    """What the page sends on its dashboard sockets, in order (filled as Playwright reports)."""
    sent: list[dict] = []

    def watch(socket: WebSocket) -> None:
        if DASHBOARD_SOCKET.search(socket.url):
            socket.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", watch)
    return sent


def wait_for_sent(page: Page, sent: list[dict], wanted: dict, timeout_s: float = 5) -> None:
    """Wait until the page has sent `wanted` (Playwright reports frames while it is called)."""
    deadline = time.monotonic() + timeout_s
    while wanted not in sent:
        if time.monotonic() > deadline:
            pytest.fail(f"the page did not send {wanted} within {timeout_s} s; it sent {sent}")
        page.wait_for_timeout(50)


def assert_runs_on(page: Page, htmx: str) -> None:
    assert page.evaluate("htmx.version").startswith(f"{htmx}.")


STATES_SEEN = """
(() => {
  window.__states = [];
  new MutationObserver(() => {
    const state = document.getElementById("connection").dataset.state;
    if (window.__states.at(-1) !== state) window.__states.push(state);
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
})();
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_status_sound_ack_and_resume_on_each_htmx_version(
    htmx, page, stack_env, logs, session_cookie, psql
):
    env = stack_env | (HTMX_4_SETTINGS if htmx == "4" else {})
    server = Daphne(env, logs / f"daphne-adapter-{htmx}.log").start()
    try:
        sent = sent_frames(page)
        open_dashboard(page, server, session_cookie)  # status: Live once the socket opens
        assert_runs_on(page, htmx)
        indicator, position = page.locator("#connection"), page.locator("#stream-position")
        expect(indicator).to_contain_text("Live")
        start = position.get_attribute("data-seq")
        wait_for_sent(page, sent, {"type": "resume", "since": int(start) if start else None})

        page.get_by_role("button", name="Enable sound").click()
        before, plays = count_today(page, HUMAN), plays_of(page, "human")
        row = insert(psql)
        expect(page.locator(f"#widget-{HUMAN} [data-count-today]")).to_have_attribute(
            "data-count-today", str(before + 1)
        )
        expect(page.locator("#feed [data-row-id]").first).to_have_attribute("data-row-id", str(row))
        page.wait_for_function(
            "n => window.__soundLog.filter(e => e.src.includes('/human.')).length > n", arg=plays
        )
        seq = int(position.get_attribute("data-seq"))
        wait_for_sent(page, sent, {"type": "ack", "seq": seq})  # within a second of the frame
        assert page_errors(page) == []

        server.stop()
        expect(indicator).to_have_attribute("data-state", "reconnecting")
        missed = insert(psql)  # no page is connected to hear of it
        server.start()
        expect(indicator).to_have_attribute("data-state", "connected", timeout=15_000)
        expect(page.locator("#feed [data-row-id]").first).to_have_attribute(
            "data-row-id", str(missed)
        )
        assert {"type": "resume", "since": seq} in sent[sent.index({"type": "ack", "seq": seq}) :]
    finally:
        server.stop()


# --- The page decides what each close code means (not the extension's list) ----------------


class RelayedSockets:
    """The page's dashboard sockets, each relayed to the real server by Playwright, so a test
    can close one with any code, as a server or proxy would."""

    def __init__(self, page: Page) -> None:
        self.routes: list[WebSocketRoute] = []
        page.route_web_socket(DASHBOARD_SOCKET, self._relay)

    def _relay(self, route: WebSocketRoute) -> None:
        route.connect_to_server()
        self.routes.append(route)

    def close_current(self, code: int) -> None:
        self.routes[-1].close(code=code, reason="closed by the test")


EXTENSION_RETRIES = "[1006,1011,1012,1013]"  # as the minified file has it


def extension_retrying_everything(page: Page) -> list[str]:
    """Serve htmx-ext-ws 2 with its own list of retried close codes grown to every code
    these tests use: what the page does must not change."""
    every = sorted({*RECONNECT_CODES, *CloseCode})
    patched: list[str] = []

    def patch(route: Route) -> None:
        script = route.fetch().text()
        assert script.count(EXTENSION_RETRIES) == 1, "the extension's list moved: update this"
        route.fulfill(
            content_type="text/javascript",
            body=script.replace(EXTENSION_RETRIES, json.dumps(every, separators=(",", ":"))),
        )
        patched.append(route.request.url)

    page.route(re.compile(r"/django_htmx/ext/hx-ws-2\.min\.[0-9a-f]+\.js$"), patch)
    return patched


@pytest.fixture
def relayed(page, htmx_web, session_cookie, htmx) -> tuple[Page, RelayedSockets]:
    page.add_init_script(STATES_SEEN)
    # htmx 4's extension would retry any close by itself; htmx 2's, any code it is given.
    patched = extension_retrying_everything(page) if htmx == "2" else ["not patched"]
    sockets = RelayedSockets(page)
    open_dashboard(page, htmx_web, session_cookie)
    assert_runs_on(page, htmx)
    assert patched
    return page, sockets


# 1006, 1011, 1012 and 1013 are the ones htmx-ext-ws 2 retries by itself; none is special here.
RECONNECT_CODES = [
    1000,
    1001,
    1006,
    1011,
    1012,
    1013,
    *(c for c in CloseCode if c not in {4401, 4403, 4409}),
]
# Longer than the first retry of either extension's own backoff (under 1 s for both).
NO_SECOND_SOCKET_MS = 1500


@pytest.mark.django_db(transaction=True)
def test_any_other_close_code_reconnects_once_with_a_new_socket(relayed):
    page, sockets = relayed
    indicator = page.locator("#connection")
    for code in RECONNECT_CODES:
        opened = len(sockets.routes)
        page.evaluate("window.__states = []")
        sockets.close_current(code)
        expect(indicator).to_have_attribute("data-state", "connected")
        page.wait_for_timeout(NO_SECOND_SOCKET_MS)
        assert len(sockets.routes) == opened + 1, f"after {code}"
        assert page.evaluate("window.__states") == ["reconnecting", "connected"], code
        expect(indicator).to_have_attribute("data-state", "connected")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("code", [CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN])
def test_4401_and_4403_go_to_the_login_page(relayed, code):
    page, sockets = relayed
    sockets.close_current(code)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))


@pytest.mark.django_db(transaction=True)
def test_4409_says_so_and_waits_a_minute(relayed):
    page, sockets = relayed
    sockets.close_current(CloseCode.TOO_MANY_SOCKETS)
    indicator = page.locator("#connection")
    expect(indicator).to_have_attribute("data-state", "tooMany")
    page.wait_for_timeout(3000)  # the ordinary backoff, or either extension's, is well under
    assert len(sockets.routes) == 1
    expect(indicator).to_have_attribute("data-state", "tooMany")
