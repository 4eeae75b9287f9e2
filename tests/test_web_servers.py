"""Daphne (the default), uvicorn and granian (WEB_SERVER) serve the one application alike.

Each server is a real process started with the argv `make run`, the Docker image and the
bench use (config.web_server), beside the real listener, with rows written by psql and
read by a `websockets` client or a headless Chromium. Where the two differ, the test
says how.
"""

import json
import signal
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode
from websockets.sync.client import ClientConnection, connect

from config.web_server import (
    UnknownWebServer,
    chosen_concurrency,
    chosen_web_server,
    server_argv,
)
from dashboard.client_messages import MAX_MESSAGE_BYTES
from tests.browser import page_errors
from tests.conftest import PROXY_ADDRESS, TRUSTED_ORIGIN, grant_dashboard_view, receive_json
from tests.processes import PROJECT_ROOT, WEB_SERVERS, Uvicorn, WebServer
from tests.test_dashboard_browser import HUMAN, count_today, insert, open_dashboard
from tests.web_client import WebClient, answers_in_order, close_code
from violations.contract import CloseCode as OurCloseCode

PASSWORD = "a-long-test-password"
PSQL_INSERT = (
    "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
    "violation_image) VALUES (5, '2025-07-28', '15:00:00', '{image}') RETURNING id;"
)


def viewer(web: WebServer, username: str = "wall-screen", **headers: str) -> WebClient:
    """A dashboard viewer logged in through the login form of `web`."""
    user_model = get_user_model()
    if not user_model.objects.filter(username=username).exists():
        grant_dashboard_view(user_model.objects.create_user(username, password=PASSWORD))
    client = WebClient(web.http_url, headers=headers)
    assert client.log_in(username, PASSWORD).status == 302
    return client


def next_close(socket: ClientConnection, timeout: float = 10) -> tuple[int, str]:
    """The close frame's code and reason, provided the server sends nothing before it."""
    try:
        message = socket.recv(timeout=timeout)
    except TimeoutError:
        pytest.fail(f"the socket was still open after {timeout} s")
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            pytest.fail("the connection dropped without a close frame")
        return closed.rcvd.code, closed.rcvd.reason
    pytest.fail(f"expected the socket to close, but it sent {message[:200]!r}")


# --- Choosing the server ------------------------------------------------------------------------


def test_daphne_is_the_default_and_uvicorn_and_granian_the_alternatives():
    assert chosen_web_server({}) == "daphne"
    assert chosen_web_server({"WEB_SERVER": ""}) == "daphne"
    assert chosen_web_server({"WEB_SERVER": "daphne"}) == "daphne"
    assert chosen_web_server({"WEB_SERVER": " Uvicorn "}) == "uvicorn"
    assert chosen_web_server({"WEB_SERVER": "granian"}) == "granian"
    with pytest.raises(
        UnknownWebServer, match=r"WEB_SERVER='gunicorn' .* use daphne, uvicorn or granian"
    ):
        chosen_web_server({"WEB_SERVER": "gunicorn"})
    with pytest.raises(UnknownWebServer):
        server_argv("gunicorn", "127.0.0.1", 8000)


def test_web_concurrency_is_a_number_of_processes_and_daphne_runs_only_one():
    assert chosen_concurrency({}, "daphne") == 1
    assert chosen_concurrency({"WEB_CONCURRENCY": " 1 "}, "daphne") == 1
    assert chosen_concurrency({"WEB_CONCURRENCY": "4"}, "uvicorn") == 4
    assert chosen_concurrency({"WEB_CONCURRENCY": "3"}, "granian") == 3
    for bad in ("0", "-2", "two", "²"):
        with pytest.raises(UnknownWebServer, match="is not a number of web processes"):
            chosen_concurrency({"WEB_CONCURRENCY": bad}, "uvicorn")
    with pytest.raises(UnknownWebServer, match="WEB_SERVER=uvicorn or granian; daphne runs one"):
        chosen_concurrency({"WEB_CONCURRENCY": "2"}, "daphne")
    assert "--workers" not in server_argv("uvicorn", "127.0.0.1", 8000)
    granian = server_argv("granian", "127.0.0.1", 8000, workers=2)
    assert granian[granian.index("--workers") + 1] == "2"


@pytest.mark.slow
def test_the_launcher_refuses_an_unknown_server_and_starts_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "config.web_server", "--port", "1"],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "WEB_SERVER": "hypercorn"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "WEB_SERVER='hypercorn' is not a web server this project runs" in result.stderr


# --- The pipeline under uvicorn and granian -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_psql_insert_reaches_the_feed_exactly_once(
    request, server, listener, session_cookie, psql
):
    web = request.getfixturevalue(server)
    with connect(
        web.ws_url + "/ws/violations/",
        origin=web.http_url,
        additional_headers={"Cookie": session_cookie},
        open_timeout=10,
    ) as feed:
        first = int(psql(PSQL_INSERT.format(image="cam5/first.jpg")))
        event = receive_json(feed, timeout=5)
        assert (event["table"], event["op"], event["id"]) == (HUMAN, "INSERT", first)
        assert event["data"]["violation_image"] == "cam5/first.jpg"

        # Once: the next frame is the next row, not the first one again.
        second = int(psql(PSQL_INSERT.format(image="cam5/second.jpg")))
        assert receive_json(feed, timeout=5)["id"] == second


@pytest.mark.django_db(transaction=True)
def test_a_dashboard_in_chromium_under_uvicorn_counts_a_psql_insert(
    page, uvicorn, listener, session_cookie, psql
):
    open_dashboard(page, uvicorn, session_cookie)
    before = count_today(page, HUMAN)

    row_id = insert(psql)

    widget_count = page.locator(f"#widget-{HUMAN} [data-count-today]")
    expect(widget_count).to_have_attribute("data-count-today", str(before + 1), timeout=2000)
    expect(page.locator("#feed [data-row-id]").first).to_have_attribute("data-row-id", str(row_id))
    assert page_errors(page) == []


@pytest.mark.django_db(transaction=True)
def test_stopping_uvicorn_closes_its_sockets_with_1012_and_it_exits_promptly(
    stack_env, logs, session_cookie
):
    """Daphne drops its sockets when stopped (the client sees 1006); uvicorn says "service
    restart". The page reconnects after either (static/js/dashboard.js)."""
    server = Uvicorn(stack_env, logs / "uvicorn-stop.log").start()
    try:
        with connect(
            server.ws_url + "/ws/violations/",
            origin=server.http_url,
            additional_headers={"Cookie": session_cookie},
            open_timeout=10,
        ) as feed:
            server.signal(signal.SIGTERM)  # as make run, a container stop or systemd sends
            assert next_close(feed) == (CloseCode.SERVICE_RESTART, "")
            server.process.wait(timeout=10)  # not left for stop() to kill
    finally:
        server.stop()
    # Uvicorn ends by re-raising the SIGTERM it handled, once every socket is closed.
    assert server.process.returncode == -signal.SIGTERM
    assert "Finished server process" in server.log(since_start=True)


def serving_pid(workers: list[psutil.Process], client: ClientConnection) -> int:
    """The pid of the worker holding the server side of `client`'s TCP connection."""
    address = client.socket.getsockname()
    for worker in workers:
        if any(c.raddr == address for c in worker.net_connections(kind="tcp")):
            return worker.pid
    pytest.fail(f"no worker holds the connection from {address}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_web_concurrency_2_runs_two_workers_on_one_port_each_delivering_events(
    server, stack_env, logs, listener, session_cookie, psql
):
    """WEB_CONCURRENCY=2 (the launcher's, as in Docker): two worker processes accept on the
    one port, each with its own stream of events, and a row reaches every socket whichever
    worker holds it."""
    env = stack_env | {"WEB_SERVER": server, "WEB_CONCURRENCY": "2"}
    web = WEB_SERVERS[server](env, logs / f"{server}-workers.log")
    web.argv = [sys.executable, "-m", "config.web_server", "--port", str(web.port)]
    web.start()
    try:
        workers = psutil.Process(web.pid).children()
        with ExitStack() as sockets:
            feeds: list[ClientConnection] = []
            served_by: set[int] = set()
            while len(served_by) < 2 and len(feeds) < 40:  # the kernel spreads them, by chance
                feed = connect(
                    web.ws_url + "/ws/violations/",
                    origin=web.http_url,
                    additional_headers={"Cookie": session_cookie},
                    open_timeout=10,
                )
                feeds.append(sockets.enter_context(feed))
                served_by.add(serving_pid(workers, feed))
            assert len(served_by) == 2, f"{len(feeds)} sockets, all served by {served_by}"

            row_id = int(psql(PSQL_INSERT.format(image="cam5/workers.jpg")))
            for feed in feeds:
                assert receive_json(feed, timeout=10)["id"] == row_id
    finally:
        web.stop()
    assert not any(worker.is_running() for worker in workers)


def test_uvicorn_runs_on_uvloop(uvicorn):
    """Installed with the project (not on Windows), and picked by uvicorn by itself."""
    assert "/uvloop/" in Path(f"/proc/{uvicorn.pid}/maps").read_text()


def test_granians_worker_runs_on_uvloop(granian):
    """`--loop auto` picks it too; the application runs in granian's worker process."""
    (worker,) = psutil.Process(granian.pid).children()
    assert "/uvloop/" in Path(f"/proc/{worker.pid}/maps").read_text()


# --- Access and Origin: the same under both -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_socket_is_closed_with_4401(web):
    """The page's socket: 4401 sends it to log in. Both endpoints, in-process, in
    tests/test_access.py."""
    with WebClient(web.http_url).open_socket(web.ws_url, "/ws/dashboard/") as socket:
        assert close_code(socket) == OurCloseCode.UNAUTHENTICATED


def handshake(
    web: WebServer,
    path: str,
    cookie: str,
    *,
    origin: str | None,
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> ClientConnection:
    """Open `path` on `web` with exactly this Origin (or none) and Host (by default the
    server's own, 127.0.0.1:port), over a TCP connection to the server."""
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    extra = {"Cookie": cookie} | ({"Origin": origin} if origin else {}) | (headers or {})
    try:
        return connect(
            f"ws://{host or f'127.0.0.1:{web.port}'}{path}",
            sock=sock,
            additional_headers=extra,
            open_timeout=10,
        )
    except BaseException:
        sock.close()
        raise


def refused_status(web: WebServer, path: str, cookie: str, **handshake_args) -> int:
    """The HTTP status a handshake is refused with; fails if it is accepted."""
    try:
        accepted = handshake(web, path, cookie, **handshake_args)
    except InvalidStatus as refused:
        return refused.response.status_code
    accepted.close()
    pytest.fail(f"the handshake was accepted: {handshake_args}")


@pytest.mark.django_db(transaction=True)
def test_a_foreign_origin_is_refused_with_403_and_the_pages_own_let_in(web):
    """What the server makes of the application's refusal: an HTTP 403. Which origins are
    foreign, for both endpoints, in-process in tests/test_socket_guard.py."""
    client = viewer(web)
    other_port = f"http://127.0.0.1:{web.port + 1}"  # any other local service's page

    assert refused_status(web, "/ws/violations/", client.cookie_header, origin=other_port) == 403
    # ... while the page's own origin, with the same cookie, is let in.
    with handshake(web, "/ws/violations/", client.cookie_header, origin=web.http_url) as accepted:
        assert answers_in_order(accepted)


@pytest.mark.django_db(transaction=True)
def test_a_look_alike_host_is_refused_even_as_its_own_origin(web):
    """DNS rebinding: a page on 127.0.0.1.evil.example (resolving to us) is same-origin with
    a socket to that name, but the name is not in ALLOWED_HOSTS."""
    client = viewer(web)
    look_alike = f"127.0.0.1.evil.example:{web.port}"

    status = refused_status(
        web, "/ws/violations/", client.cookie_header, origin=f"http://{look_alike}", host=look_alike
    )
    assert status == 403


@pytest.mark.django_db(transaction=True)
def test_behind_a_tls_proxy_the_origin_is_https_with_its_port(web):
    """The proxy says X-Forwarded-Proto: https (SECURE_PROXY_SSL_HEADER, as for pages): the
    page's origin is then https://host:port, and its http twin is another origin."""
    client = viewer(web)
    proxied = {"X-Forwarded-Proto": "https"}
    https_page = f"https://127.0.0.1:{web.port}"

    with handshake(
        web, "/ws/violations/", client.cookie_header, origin=https_page, headers=proxied
    ) as accepted:
        assert answers_in_order(accepted)
    refused = refused_status(
        web, "/ws/violations/", client.cookie_header, origin=web.http_url, headers=proxied
    )
    assert refused == 403
    # Without the header the https page is the foreign one.
    assert refused_status(web, "/ws/violations/", client.cookie_header, origin=https_page) == 403


@pytest.mark.django_db(transaction=True)
def test_an_origin_listed_in_csrf_trusted_origins_may_open_a_socket(configured_web):
    """DJANGO_CSRF_TRUSTED_ORIGINS (here https://wall.example.org:8443) admits that exact
    origin, say a page on another host name of a proxy; the same host on another port does
    not get in."""
    client = viewer(configured_web)
    with handshake(
        configured_web, "/ws/violations/", client.cookie_header, origin=TRUSTED_ORIGIN
    ) as accepted:
        assert answers_in_order(accepted)
    other_port = TRUSTED_ORIGIN.replace(":8443", ":8444")
    refused = refused_status(
        configured_web, "/ws/violations/", client.cookie_header, origin=other_port
    )
    assert refused == 403


# --- Close codes and reasons --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("<b>hostile</b>", OurCloseCode.BAD_MESSAGE),
        (
            json.dumps({"type": "resume", "pad": "hostile" * MAX_MESSAGE_BYTES}),
            OurCloseCode.MESSAGE_TOO_BIG,
        ),
    ],
    ids=["malformed", "oversized"],
)
def test_our_close_codes_arrive_and_only_daphne_drops_the_reason(web, frame, code):
    with viewer(web).open_socket(web.ws_url, "/ws/violations/") as socket:
        socket.send(frame)
        received_code, reason = next_close(socket)

    assert received_code == code
    if web.server == "daphne":
        assert reason == ""  # Daphne drops it
    else:
        assert reason  # what was wrong, in words (dashboard/client_messages.py) ...
        assert "hostile" not in reason  # ... never the client's own text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("since", ["²", "١٢", ""], ids=["superscript-two", "arabic-indic", "empty"])
def test_a_since_that_is_not_ascii_digits_closes_with_4400_not_a_500(web, since):
    """`str.isdigit()` took '²' and `int()` then raised: an HTTP 500 with a traceback."""
    log_before = len(web.log())
    with viewer(web).open_socket(web.ws_url, f"/ws/violations/?since={since}") as socket:
        assert next_close(socket)[0] == OurCloseCode.BAD_MESSAGE
    assert "Traceback" not in web.log()[log_before:]


@pytest.mark.django_db(transaction=True)
def test_a_message_over_1_mib_ends_the_socket(web):
    """Daphne's own limit, 1 MiB, ends it before the application sees it; uvicorn is given
    Daphne's (its own is 16 MiB). Granian has no such option (its limit is 64 MiB): the
    message reaches the application, which closes with 4413 as for any over 1 KiB."""
    with viewer(web).open_socket(web.ws_url, "/ws/violations/") as socket:
        socket.send("x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    # No close frame at all is fine too: the server may hang up while the client is still
    # sending, and the reset can reach the client before the close frame does.
    expected = (
        OurCloseCode.MESSAGE_TOO_BIG if web.server == "granian" else CloseCode.MESSAGE_TOO_BIG
    )
    assert closed.value.rcvd is None or closed.value.rcvd.code == expected


@pytest.mark.django_db(transaction=True)
def test_no_compression_is_negotiated(web):
    """The client offers permessage-deflate, as browsers do; neither server accepts it, so no
    socket gets a zlib context or compresses each broadcast frame again."""
    with viewer(web).open_socket(web.ws_url, "/ws/violations/") as socket:
        assert "Sec-WebSocket-Extensions" not in socket.response.headers
        assert "permessage-deflate" in socket.request.headers["Sec-WebSocket-Extensions"]


def log_in_elsewhere_after_a_lockout(web: WebServer) -> int:
    """Lock a username out from X-Forwarded-For 203.0.113.1, then log in with the right
    password as 203.0.113.2: the status of that login (429: still locked out)."""
    get_user_model().objects.create_user("officer-on-duty", password=PASSWORD)
    guesser = WebClient(web.http_url, headers={"X-Forwarded-For": "203.0.113.1"})
    for _ in range(settings.AXES_FAILURE_LIMIT):
        refused = guesser.log_in("officer-on-duty", "wrong-password")
    assert refused.status == 429

    elsewhere = WebClient(web.http_url, headers={"X-Forwarded-For": "203.0.113.2"})
    return elsewhere.log_in("officer-on-duty", PASSWORD).status


@pytest.mark.django_db(transaction=True)
def test_a_client_cannot_choose_its_address_with_x_forwarded_for(web):
    """Login throttling counts failures per address. Daphne without --proxy-headers and
    uvicorn with --no-proxy-headers both take the TCP peer's; uvicorn's default would trust
    X-Forwarded-For from 127.0.0.1, and a lockout could be dodged by changing it."""
    assert log_in_elsewhere_after_a_lockout(web) == 429


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", WEB_SERVERS)
def test_behind_a_proxy_proxy_headers_give_each_client_its_own_address(server, stack_env, logs):
    """The deployment's command (docs/forking.md), `python -m config.web_server
    --proxy-headers`: the proxy on 127.0.0.1 says who the client is, so one client's
    lockout is not everyone's."""
    web = WEB_SERVERS[server](stack_env | {"WEB_SERVER": server}, logs / f"{server}-proxied.log")
    launcher = ["-m", "config.web_server", "--host", "127.0.0.1", "--port", str(web.port)]
    web.argv = [sys.executable, *launcher, "--proxy-headers"]
    web.start()
    try:
        assert psutil.Process(web.pid).cmdline()[1:3] == ["-m", server]  # exec'd in place
        assert log_in_elsewhere_after_a_lockout(web) == 302
    finally:
        web.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", WEB_SERVERS)
def test_a_forged_x_forwarded_for_neither_evades_nor_redirects_the_lockout(server, stack_env, logs):
    """Behind a proxy at 127.0.0.2 (FORWARDED_ALLOW_IPS), a client reaching the server
    directly from 127.0.0.1 is not believed: changing its X-Forwarded-For does not get
    it round its lockout, and naming the wall screen's address does not lock the screen
    out. Daphne's own --proxy-headers believed anyone; the application now decides, the
    same under both servers."""
    env = stack_env | {"WEB_SERVER": server, "FORWARDED_ALLOW_IPS": PROXY_ADDRESS}
    web = WEB_SERVERS[server](env, logs / f"{server}-forged.log")
    launcher = ["-m", "config.web_server", "--host", "127.0.0.1", "--port", str(web.port)]
    web.argv = [sys.executable, *launcher, "--proxy-headers"]
    web.start()
    try:
        get_user_model().objects.create_user("wall-screen", password=PASSWORD)
        screen_address = "198.51.100.7"

        def direct(forged: str) -> WebClient:
            headers = {"X-Forwarded-For": forged}
            return WebClient(web.http_url, headers=headers, source_address="127.0.0.1")

        for _ in range(settings.AXES_FAILURE_LIMIT):
            refused = direct(screen_address).log_in("wall-screen", "wrong-password")
        assert refused.status == 429
        # Not evaded: another forged address is still the same, locked, client.
        assert direct("203.0.113.99").log_in("wall-screen", PASSWORD).status == 429
        # Not redirected: the screen itself, through the proxy, is not locked out.
        through_proxy = WebClient(
            web.http_url,
            headers={"X-Forwarded-For": screen_address},
            source_address=PROXY_ADDRESS,
        )
        assert through_proxy.log_in("wall-screen", PASSWORD).status == 302
    finally:
        web.stop()
