"""The production path as deployed: deploy/nginx.conf terminating TLS in front of a Daphne
and a uvicorn process, both on `config.settings.production` as shipped (only the hosts
and the key are given), with the real listener and Redis.

What a user of docs/forking.md gets: https and wss:// through the proxy, plain http
redirected, Secure cookies and HSTS, a foreign Origin refused, and a page that carries on
through the other web process when the one holding its socket dies.
"""

import signal
import ssl
import string
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from devstack.ports import free_port
from tests.browser import DEFAULT_TIMEOUT_MS, VIEWPORT, page_errors
from tests.conftest import grant_dashboard_view, receive_json
from tests.processes import NGINX, PROJECT_ROOT, Daphne, Nginx, Uvicorn, WebServer
from tests.test_dashboard_browser import HUMAN, insert
from violations.models import HumanDetection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("listener")]

NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
HOST = "localhost"
PASSWORD = "a-long-test-password"


def render_nginx_conf(values: dict[str, str]) -> str:
    """deploy/nginx.conf with its ${NAMES} filled in, as `envsubst` with a list would:
    nginx's own `$variables` stay."""
    text = NGINX_CONF.read_text()
    rendered = string.Template(text).safe_substitute(values)
    unfilled = [line for line in rendered.splitlines() if "${" in line.split("#")[0]]
    assert not unfilled, f"deploy/nginx.conf has names the test does not fill: {unfilled}"
    return rendered


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost: (certificate, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class ProxiedStack:
    nginx: Nginx
    web: list[WebServer]
    https_port: int
    http_port: int

    @property
    def https_url(self) -> str:
        return f"https://{HOST}:{self.https_port}"

    @property
    def wss_url(self) -> str:
        return f"wss://{HOST}:{self.https_port}"


def production_web(kind: type[WebServer], env: dict[str, str], log: Path) -> WebServer:
    """A web process as docs/forking.md starts it behind the proxy: the launcher with
    --proxy-headers, production settings."""
    server = kind(env | {"WEB_SERVER": kind.server}, log)
    server.argv = [
        server.argv[0],
        *["-m", "config.web_server", "--host", "127.0.0.1", "--port", str(server.port)],
        "--proxy-headers",
    ]
    return server


@pytest.fixture(scope="module")
def proxied(stack_env, logs, tmp_path_factory) -> Iterator[ProxiedStack]:
    if not Path(NGINX).exists():
        pytest.fail("nginx not found: install Debian's nginx-light (.ci/run does)", pytrace=False)
    env = stack_env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        # The test process's own key, so sessions it makes (session_cookie) are valid.
        "DJANGO_SECRET_KEY": stack_env["DJANGO_SECRET_KEY"],
        # 127.0.0.1 for the health checks that reach each process directly.
        "DJANGO_ALLOWED_HOSTS": f"{HOST},127.0.0.1",
    }
    env.pop("DJANGO_SECURE_SSL_REDIRECT", None)
    web = [
        production_web(Daphne, env, logs / "proxied-daphne.log").start(),
        production_web(Uvicorn, env, logs / "proxied-uvicorn.log").start(),
    ]
    directory = tmp_path_factory.mktemp("nginx")
    (directory / "logs").mkdir()
    (directory / "media").mkdir()
    (directory / "media" / "cam1.txt").write_text("a snapshot")
    cert, key = make_certificate(directory)
    https_port, http_port = free_port(), free_port()
    site = render_nginx_conf(
        {
            "SERVER_NAME": HOST,
            "HTTPS_PORT": str(https_port),
            "HTTP_PORT": str(http_port),
            "SSL_CERTIFICATE": str(cert),
            "SSL_CERTIFICATE_KEY": str(key),
            "WEB_PORT_1": str(web[0].port),
            "WEB_PORT_2": str(web[1].port),
            "MEDIA_ROOT": str(directory / "media"),
        }
    )
    (directory / "site.conf").write_text(site)
    # The wrapper a system nginx.conf provides around conf.d files; workers as root here
    # only because the test's files are root's.
    (directory / "nginx.conf").write_text(
        "user root;\nerror_log logs/error.log;\npid logs/nginx.pid;\n"
        "events {}\nhttp {\n  access_log logs/access.log;\n  include site.conf;\n}\n"
    )
    nginx = Nginx(directory / "nginx.conf", directory, logs / "nginx.log", https_port).start()
    yield ProxiedStack(nginx, web, https_port, http_port)
    nginx.stop()
    for server in web:
        server.stop()


def unverified_tls() -> ssl.SSLContext:
    """The test's self-signed certificate is not in any trust store."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=unverified_tls()), _NoRedirects()
    )
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def tls_page(chromium_browser: Browser) -> Iterator[Page]:
    context = chromium_browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page_errors(page)  # from the start
    yield page
    context.close()


@pytest.fixture
def viewer_login() -> str:
    # Hashed as production hashes (the test settings' MD5 hasher is not in production's list).
    user = get_user_model().objects.create_user("wall-screen")
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save()
    grant_dashboard_view(user)
    return user.username


def log_in(page: Page, stack: ProxiedStack, username: str) -> None:
    page.goto(f"{stack.https_url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


def todays_count() -> int:
    return HumanDetection.objects.filter(violation_date=timezone.localdate()).count()


def test_plain_http_is_redirected_to_https(proxied):
    status, headers, _ = get(f"http://{HOST}:{proxied.http_port}/accounts/login/")
    assert status == 301
    assert headers["Location"] == f"https://{HOST}:{proxied.https_port}/accounts/login/"


def test_https_responses_carry_hsts_and_media_is_served_by_the_proxy(proxied):
    status, headers, _ = get(f"{proxied.https_url}/accounts/login/")
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert get(f"{proxied.https_url}/media/cam1.txt")[2] == "a snapshot"


def test_a_viewer_logs_in_over_https_and_the_page_goes_live_over_wss(
    proxied, tls_page, viewer_login, psql
):
    sockets: list[str] = []
    tls_page.on("websocket", lambda socket: sockets.append(socket.url))

    log_in(tls_page, proxied, viewer_login)

    assert sockets == [f"{proxied.wss_url}/ws/dashboard/"]
    cookies = {c["name"]: c for c in tls_page.context.cookies()}
    assert cookies["sessionid"]["secure"]
    assert cookies["sessionid"]["httpOnly"]
    assert cookies["csrftoken"]["secure"]

    insert(psql)
    widget = tls_page.locator(f"#widget-{HUMAN} [data-count-today]")
    expect(widget).to_have_attribute("data-count-today", str(todays_count()), timeout=5000)
    assert page_errors(tls_page) == []


def test_the_pages_own_origin_is_accepted_through_the_proxy_and_a_foreign_one_refused(
    proxied, session_cookie, psql
):
    def open_feed(origin: str):
        return connect(
            f"{proxied.wss_url}/ws/violations/",
            origin=origin,
            additional_headers={"Cookie": session_cookie},
            ssl=unverified_tls(),
            open_timeout=10,
        )

    foreign_origins = [
        "https://evil.example",
        f"https://{HOST}.evil.example:{proxied.https_port}",
        f"https://{HOST}:{proxied.http_port}",  # another port of ours
        f"http://{HOST}:{proxied.https_port}",  # another scheme
        f"https://{HOST}",  # the default port is another port
        "null",
    ]
    for foreign in foreign_origins:
        with pytest.raises(InvalidStatus) as refused:
            open_feed(foreign)
        assert refused.value.response.status_code == 403, foreign

    with open_feed(proxied.https_url) as feed:
        row_id = insert(psql)
        assert receive_json(feed, timeout=5)["id"] == row_id


def holder_of_the_dashboard_socket(stack: ProxiedStack, offsets: list[int]) -> WebServer:
    """The web process whose log shows the page's socket since `offsets` (log sizes)."""
    holders = [
        server
        for server, offset in zip(stack.web, offsets, strict=True)
        if "/ws/dashboard/" in server.log()[offset:]
    ]
    assert len(holders) == 1, f"the dashboard socket went to {len(holders)} processes"
    return holders[0]


def test_the_page_carries_on_through_the_other_process_when_its_own_is_killed(
    proxied, tls_page, viewer_login, psql
):
    offsets = [len(server.log()) for server in proxied.web]
    log_in(tls_page, proxied, viewer_login)
    holder = holder_of_the_dashboard_socket(proxied, offsets)

    holder.signal(signal.SIGKILL)
    holder.process.wait(timeout=10)
    try:
        insert(psql)  # while the page has no socket
        insert(psql)
        widget = tls_page.locator(f"#widget-{HUMAN} [data-count-today]")
        expect(widget).to_have_attribute("data-count-today", str(todays_count()), timeout=15_000)
        expect(tls_page.locator("#connection")).to_have_attribute("data-state", "connected")
    finally:
        holder.start()  # the module's other tests keep both upstreams
