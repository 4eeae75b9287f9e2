"""No client grows a web process without bound: sockets that stop reading, measured.

Raw TCP clients complete the WebSocket handshake with a small receive buffer and then
never read again, as a hostile or frozen client does, while 2 kB rows stream in; the web
process's resident memory is sampled throughout. A well-behaved client on the same process
still gets every event in order. Under Daphne, whose `send()` never waits, each such
socket used to hold everything it was sent (about 5 MB each at 100 rows a second for
20 s); the window (dashboard.flow_control) holds it to 512 KiB.
"""

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psutil
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.flow_control import WINDOW_BYTES
from tests.conftest import grant_dashboard_view
from tests.delivery import Producer, ResumingFeed, assert_exactly_once_in_order
from tests.processes import WebServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("listener")]

HUMAN = "violation_humandetections"
ROW_BYTES = 2000
GROWTH_LIMIT = 60 * 1024 * 1024
STALLED = 50  # half dashboards, half feeds


@pytest.fixture
def session_cookies() -> list[str]:
    """Several sessions of one viewer: more stalled sockets than one session may hold."""
    user = get_user_model().objects.create_user("stalled", password="unused-in-tests")
    grant_dashboard_view(user)
    cookies = []
    for _ in range(4):
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies


def text_frame(text: str) -> bytes:
    """A masked client text frame (RFC 6455), as every client must send."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def stalled_socket(server: WebServer, path: str, cookie: str, message: str | None = None):
    """A socket that completes the handshake, says `message`, then never reads again."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {server.http_url}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = raw.recv(1)
        assert chunk, f"the server closed the handshake: {response!r}"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    if message is not None:
        raw.sendall(text_frame(message))
    return raw


@contextmanager
def peak_memory(pid: int) -> Iterator[dict[str, int]]:
    """Sample `pid`'s resident memory every 0.2 s: {"start", "peak"} in bytes."""
    process = psutil.Process(pid)
    seen = {"start": process.memory_info().rss}
    seen["peak"] = seen["start"]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            seen["peak"] = max(seen["peak"], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()
        seen["peak"] = max(seen["peak"], process.memory_info().rss)


def mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def stream_past_stalled_sockets(web, cookies, stack_env, *, seconds: int) -> None:
    with ExitStack() as sockets:
        for n in range(STALLED):
            cookie = cookies[n % len(cookies)]
            if n % 2:
                raw = stalled_socket(web, "/ws/violations/", cookie)
            else:
                raw = stalled_socket(
                    web, "/ws/dashboard/", cookie, '{"type": "resume", "since": null}'
                )
            sockets.callback(raw.close)
        reader = ResumingFeed(web.ws_url, web.http_url, cookies[0])
        sockets.callback(reader.close)
        rate = 100
        with peak_memory(web.pid) as memory:
            producer = Producer(
                stack_env["DATABASE_URL"],
                HUMAN,
                count=rate * seconds,
                rate=rate,
                row_bytes=ROW_BYTES,
            ).start()
            # The reader reads as it goes; the stalled sockets never do.
            deadline = time.monotonic() + seconds + 60
            while producer.running():
                reader.receive_for(0.5)
            ids = producer.join(timeout=10)
            reader.receive_until(
                lambda events: ids[-1] in {e["id"] for e in events},
                timeout=max(1, deadline - time.monotonic()),
            )
        assert_exactly_once_in_order(reader.events, row_ids=ids)
    growth = memory["peak"] - memory["start"]
    assert growth <= GROWTH_LIMIT, (
        f"{STALLED} stalled sockets grew the {web.server} process by {mb(growth)} "
        f"(from {mb(memory['start'])}) while {len(ids)} rows of {ROW_BYTES} bytes streamed"
    )


def test_stalled_sockets_cost_a_bounded_window_and_a_reader_gets_everything(
    web, session_cookies, stack_env
):
    stream_past_stalled_sockets(web, session_cookies, stack_env, seconds=20)


@pytest.mark.soak
def test_soak_stalled_sockets_for_60_s(web, session_cookies, stack_env):
    stream_past_stalled_sockets(web, session_cookies, stack_env, seconds=60)


def test_stalled_resumes_are_paced_and_one_too_far_back_is_told_to_resync(
    web, session_cookies, psql
):
    resume_past_stalled_sockets(web, session_cookies, psql, rows=12_000)


@pytest.mark.soak
def test_soak_stalled_resumes_from_the_start_of_a_50000_event_log(web, session_cookies, psql):
    resume_past_stalled_sockets(web, session_cookies, psql, rows=50_000)


def resume_past_stalled_sockets(web, session_cookies, psql, *, rows: int) -> None:
    """`rows` 2 kB rows in the log; 15 stalled sockets resume 9,000 events back, 5 from the
    log's start (beyond the resume limit)."""
    before = int(psql("SELECT seq FROM violation_events_head"))
    psql(
        f"INSERT INTO {HUMAN}(camera_id, violation_date, violation_time, violation_image) "
        f"SELECT n % 12, current_date, localtime(0), lpad(n::text, {ROW_BYTES}, 'x') "
        f"FROM generate_series(1, {rows}) AS n"
    )
    deadline = time.monotonic() + 120
    while int(psql("SELECT count(*) FROM violation_events WHERE seq IS NULL")) > 0:
        assert time.monotonic() < deadline, f"the listener did not number {rows} events"
        time.sleep(0.2)
    head = int(psql("SELECT seq FROM violation_events_head"))
    assert head - before >= rows
    within = head - 9000

    with ExitStack() as sockets, peak_memory(web.pid) as memory:
        for n in range(20):
            query = f"?since={within}" if n < 15 else f"?since={before}"
            raw = stalled_socket(web, f"/ws/violations/{query}", session_cookies[n % 4])
            sockets.callback(raw.close)
        # A resume further back than the limit is told to resync, not replayed.
        far = ResumingFeed(web.ws_url, web.http_url, session_cookies[0], since=before)
        sockets.callback(far.close)
        message = json.loads(far.socket.recv(timeout=10))
        assert message == {"type": "resync", "seq": head}
        # One within it is replayed in full, in order, as fast as the client takes it.
        near = ResumingFeed(web.ws_url, web.http_url, session_cookies[1], since=within)
        sockets.callback(near.close)
        events = near.receive_until(lambda events: len(events) >= 9000, timeout=60)
        assert [e["seq"] for e in events] == list(range(within + 1, head + 1))
    growth = memory["peak"] - memory["start"]
    assert growth <= GROWTH_LIMIT, (
        f"20 stalled resumes over {rows} events grew the {web.server} process by {mb(growth)}"
        f" (each may hold {mb(WINDOW_BYTES)} in flight)"
    )
