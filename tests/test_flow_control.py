"""The per-socket window: plain asyncio, no servers."""

import asyncio

import pytest

from dashboard.flow_control import AckTimeout, Window


def test_a_window_has_room_until_its_limit_is_in_flight():
    window = Window(limit=100)
    window.sent(1, 60)
    assert window.has_room()
    window.sent(2, 60)  # one frame may take it over the limit
    assert not window.has_room()
    assert window.in_flight == 120


def test_an_ack_releases_every_frame_up_to_its_position():
    window = Window(limit=100)
    for position in (1, 2, 2, 3):
        window.sent(position, 40)
    window.acknowledged(2)
    assert window.in_flight == 40
    window.acknowledged(1)  # an old ack releases nothing more
    assert window.in_flight == 40
    window.acknowledged(3)
    assert window.in_flight == 0


def test_a_full_window_waits_for_an_ack():
    async def scenario():
        window = Window(limit=10, timeout=5)
        window.sent(1, 10)
        waiting = asyncio.ensure_future(window.wait_for_room())
        await asyncio.sleep(0)
        assert not waiting.done()
        window.acknowledged(1)
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_a_resume_empties_the_window():
    async def scenario():
        window = Window(limit=10, timeout=5)
        window.sent(7, 50)
        waiting = asyncio.ensure_future(window.wait_for_room())
        await asyncio.sleep(0)
        window.reset()
        await asyncio.wait_for(waiting, 1)
        assert window.in_flight == 0

    asyncio.run(scenario())


def test_a_window_that_stays_full_times_out():
    async def scenario():
        window = Window(limit=10, timeout=0.05)
        window.sent(1, 10)
        await window.wait_for_room()

    with pytest.raises(AckTimeout, match="10 bytes unacknowledged"):
        asyncio.run(scenario())
