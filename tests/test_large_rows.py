"""Rows of any size: nothing a writer puts in a row stops or delays delivery to anyone.

A `violation_image` of over a megabyte, written with psql, through the real listener and
both web servers. Before events were bounded, Daphne dropped the frame without a word
(Autobahn refuses to send over 1 MiB) and every later event to that socket waited behind it.
"""

import asyncio
import logging

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from playwright.sync_api import expect

from dashboard.consumers import MAX_FRAME_BYTES, FollowingConsumer
from tests.browser import page_errors, without_event_loop
from tests.conftest import as_viewer, feed_socket, receive_json
from tests.test_dashboard_browser import HUMAN, count_today, insert, open_dashboard
from violations.contract import CloseCode
from violations.events import CUT_MARKER, MAX_VALUE_CHARS
from violations.models import HumanDetection

HUGE = 1_100_000  # characters: its event alone would be over the servers' 1 MiB limit


HUGE_IMAGE = "/media/cam9/" + "x" * HUGE


def insert_huge(psql) -> int:
    """A row dated today whose `violation_image` is HUGE_IMAGE, built by the server (the
    value is too long for a command line)."""
    today = timezone.localdate().isoformat()
    return int(
        psql(
            f"INSERT INTO {HUMAN}(camera_id, violation_date, violation_time, violation_image) "
            f"VALUES (9, '{today}', '15:00:00', '/media/cam9/' || repeat('x', {HUGE})) "
            "RETURNING id;"
        )
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_megabyte_row_reaches_the_feed_cut_and_the_next_row_follows_it(web, session_cookie, psql):
    with feed_socket(web, session_cookie) as feed:
        image = HUGE_IMAGE
        huge_id = insert_huge(psql)
        event = receive_json(feed, timeout=5)
        assert (event["op"], event["id"]) == ("INSERT", huge_id)
        assert event["data"]["violation_image"] == image[:MAX_VALUE_CHARS] + CUT_MARKER
        assert event["cut"] == {"violation_image": len(image)}

        small_id = insert(psql, image="cam9/after.jpg")
        after = receive_json(feed, timeout=5)
        assert (after["id"], after["seq"]) == (small_id, event["seq"] + 1)
        assert after["data"]["violation_image"] == "cam9/after.jpg"
        assert "cut" not in after

    # The log keeps the row whole; only the wire is cut.
    stored = psql(
        f"SELECT length(data->>'violation_image') FROM violation_events WHERE seq = {event['seq']}"
    )
    assert int(stored) == len(image)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_dashboard_opened_while_a_megabyte_row_is_newest_stays_live(
    page, web, session_cookie, psql
):
    huge_id = insert_huge(psql)
    open_dashboard(page, web, session_cookie)
    newest = page.locator("#feed [data-row-id]").first
    expect(newest).to_have_attribute("data-row-id", str(huge_id))
    shown = newest.locator(".path").inner_text()
    assert shown.startswith("/media/cam9/xxx")
    assert len(shown) <= 81  # cut, readable

    small_id = insert(psql, image="cam9/after.jpg")

    truth = HumanDetection.objects.filter(
        violation_date=HumanDetection.objects.get(pk=small_id).violation_date
    ).count()
    widget = page.locator(f"#widget-{HUMAN} [data-count-today]")
    expect(widget).to_have_attribute("data-count-today", str(truth), timeout=5000)
    expect(newest).to_have_attribute("data-row-id", str(small_id))
    assert count_today(page, HUMAN) == truth
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    assert page_errors(page) == []


class _SendsOneFrame(FollowingConsumer):
    """A socket whose sending task sends one frame of `size` bytes (no login, no hub)."""

    size = MAX_FRAME_BYTES + 1

    async def connect(self) -> None:
        await self.accept()
        await self.start_following(None)

    def follow(self, since):
        return asyncio.ensure_future(self.send_frame("x" * self.size, 1))


def test_a_frame_the_server_would_drop_closes_the_socket_with_4500_and_a_log_line(caplog):
    async def scenario():
        socket = WebsocketCommunicator(as_viewer(_SendsOneFrame.as_asgi()), "/ws/test/")
        connected, _ = await socket.connect()
        assert connected
        closed = await socket.receive_output(timeout=2)
        await socket.disconnect()
        return closed

    with caplog.at_level(logging.ERROR, logger="dashboard.consumers"), without_event_loop():
        closed = asyncio.run(scenario())
    assert closed == {"type": "websocket.close", "code": CloseCode.SERVER_ERROR}
    assert "sending task failed" in caplog.text
    assert f"over {MAX_FRAME_BYTES}" in caplog.text


def test_a_frame_under_the_limit_is_sent_as_it_is():
    class Fits(_SendsOneFrame):
        size = MAX_FRAME_BYTES

    async def scenario():
        socket = WebsocketCommunicator(as_viewer(Fits.as_asgi()), "/ws/test/")
        await socket.connect()
        message = await socket.receive_output(timeout=2)
        await socket.disconnect()
        return message

    with without_event_loop():
        message = asyncio.run(scenario())
    assert message["type"] == "websocket.send"
    assert len(message["text"]) == MAX_FRAME_BYTES
