"""Liveness you can trust: heartbeats on both endpoints, and a page that says it is stale.

The pure rule first; then the hub in-process with a short interval; then real Daphne and
uvicorn processes with the real listener: a `websockets` client on a quiet feed, and a
headless Chromium against a web process frozen with SIGSTOP (its sockets stay open, it
just stops answering), compared with the database through psql.
"""

import asyncio
import datetime
import json
import signal
import time

import pytest
from playwright.sync_api import Page, expect

from dashboard.heartbeat import TICKS_PER_HEARTBEAT, heartbeat_due, heartbeat_message
from tests.browser import screenshot
from tests.conftest import feed_socket
from tests.processes import WEB_SERVERS
from tests.test_dashboard_browser import HUMAN, insert, open_dashboard
from tests.test_dashboard_logic import (  # noqa: F401 (in_memory_layer: a fixture)
    RecordingSocket,
    in_memory_layer,
    run_in_a_fresh_loop,
    running_hub,
    until,
)

# --- The rule --------------------------------------------------------------------------------


def test_a_heartbeat_is_due_after_two_silent_ticks_so_never_more_than_one_interval_apart():
    assert TICKS_PER_HEARTBEAT == 2
    assert not heartbeat_due(last_sent_tick=7, tick=7)  # just sent something
    assert not heartbeat_due(last_sent_tick=7, tick=8)  # silent for one to two ticks at most
    assert heartbeat_due(last_sent_tick=7, tick=9)  # silent for two ticks: one interval
    assert heartbeat_due(last_sent_tick=7, tick=30)  # a stalled loop catching up


def test_the_feeds_heartbeat_says_its_position_and_the_servers_time():
    at = datetime.datetime(2026, 11, 21, 22, 0, 0, 123456, tzinfo=datetime.UTC)
    assert json.loads(heartbeat_message(41, at)) == {
        "type": "heartbeat",
        "seq": 41,
        "at": "2026-11-21T22:00:00.123456+00:00",
    }


# --- The hub, in-process --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
def test_every_quiet_socket_gets_its_position_each_interval_from_one_timer():
    async def scenario() -> tuple[list[RecordingSocket], int, list[float]]:
        arrived = asyncio.Event()
        feeds = [RecordingSocket(arrived) for _ in range(3)]
        screen = RecordingSocket(arrived)
        async with running_hub(poll_interval=60, heartbeat=0.4) as (hub, followers):
            await hub.stream.ready.wait()
            await hub.listener.known.wait()
            head = hub.stream.head
            followers.extend(hub.follow_feed(feed, head) for feed in feeds)
            followers.append(hub.follow_dashboard(screen, head))
            started = asyncio.get_running_loop().time()
            await until(lambda: all(len(f.received) >= 3 for f in feeds), arrived)
            await until(lambda: any('id="heartbeat"' in h for h in screen.received), arrived)
            elapsed = asyncio.get_running_loop().time() - started
            timers = [t.get_name() for t in asyncio.all_tasks() if "heartbeat" in t.get_name()]
        return [*feeds, screen], head, [elapsed, len(timers)]

    sockets, head, (elapsed, timers) = run_in_a_fresh_loop(scenario)
    *feeds, screen = sockets
    for feed in feeds:
        beats = [json.loads(text) for text in feed.received]
        assert {(b["type"], b["seq"]) for b in beats} == {("heartbeat", head)}
    assert elapsed < 3 * 0.4 + 1.0  # three within three intervals (and a busy machine)
    assert timers == 1  # one timer for the process, not one per socket
    # The dashboard too, its heartbeat carrying its position (other frames may come first:
    # the listener's health, the clock's minute).
    beats = [html for html in screen.received if 'id="heartbeat"' in html]
    assert beats, screen.received
    assert all(f'data-seq="{head}"' in html for html in beats)


# --- Real servers ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_quiet_feed_gets_a_heartbeat_with_the_logs_head_within_5_s(web, session_cookie, psql):
    with feed_socket(web, session_cookie) as feed:
        beats = []
        for _ in range(2):  # the first within 5 s of opening, the next within 5 s of it
            beat = json.loads(feed.recv(timeout=5))
            beats.append((beat, datetime.datetime.now(tz=datetime.UTC)))
        head = int(psql("SELECT seq FROM violation_events_head"))

    for beat, received_at in beats:
        assert beat["type"] == "heartbeat"
        assert beat["seq"] == head
        sent_at = datetime.datetime.fromisoformat(beat["at"])
        assert abs((received_at - sent_at).total_seconds()) < 1  # the server's time, now


def dashboard_counts_match_the_database(page: Page, psql) -> None:
    total = int(psql(f"SELECT count(*) FROM {HUMAN}"))
    today = int(psql(f"SELECT count(*) FROM {HUMAN} WHERE violation_date = CURRENT_DATE"))
    widget = page.locator(f"#widget-{HUMAN}")
    expect(widget.locator("[data-count-total]")).to_have_attribute("data-count-total", str(total))
    expect(widget.locator("[data-count-today]")).to_have_attribute("data-count-today", str(today))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
@pytest.mark.parametrize("server", list(WEB_SERVERS))
def test_a_frozen_web_process_shows_stale_then_live_again_with_what_it_missed(
    server, page, stack_env, logs, session_cookie, psql
):
    web = WEB_SERVERS[server](stack_env, logs / f"{server}-frozen.log").start()
    try:
        open_dashboard(page, web, session_cookie)
        indicator, notice = page.locator("#connection"), page.locator("#stale-notice")
        expect(notice).to_be_hidden()

        web.signal(signal.SIGSTOP)  # no close, no FIN: the process just stops answering
        try:
            frozen = time.monotonic()
            expect(indicator).to_have_attribute("data-state", "stale", timeout=15_000)
            assert time.monotonic() - frozen <= 15
            expect(indicator).to_have_text("⚠ Stale — reconnecting")
            expect(notice).to_be_visible()
            screenshot(page, logs / f"stale-{server}.png")
            missed = insert(psql)  # committed while the page cannot hear of it
        finally:
            web.signal(signal.SIGCONT)

        expect(indicator).to_have_attribute("data-state", "connected", timeout=15_000)
        expect(indicator).to_contain_text("Live")
        expect(notice).to_be_hidden()
        expect(page.locator("#feed [data-row-id]").first).to_have_attribute(
            "data-row-id", str(missed)
        )
        dashboard_counts_match_the_database(page, psql)
    finally:
        web.stop()


HEARTBEATS_SEEN = """
(() => {
  window.__heartbeats = 0;
  window.__states = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) if (node.id === "heartbeat") window.__heartbeats++;
      if (change.attributeName === "data-state" && change.target.id === "connection")
        window.__states.push(change.target.dataset.state);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_quiet_page_stays_live_on_heartbeats_alone(page, daphne, session_cookie, settings):
    page.add_init_script(HEARTBEATS_SEEN)
    open_dashboard(page, daphne, session_cookie)
    # Longer than the stale timeout with no event: only heartbeats keep it Live.
    beats = int(settings.DASHBOARD_STALE_SECONDS / settings.DASHBOARD_HEARTBEAT_SECONDS) + 1
    page.wait_for_function(f"() => window.__heartbeats >= {beats}", timeout=20_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    assert "stale" not in page.evaluate("window.__states")
