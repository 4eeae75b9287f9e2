"""The vendored front-end files the page loads are the ones docs/frontend.md records."""

import base64
import hashlib
import re
import urllib.parse
import urllib.request

import pytest

from tests.conftest import http_get
from tests.processes import PROJECT_ROOT

RECORDED = dict(
    re.findall(
        r"\| `(django_htmx/[^`]+)` \|[^|]+\| `(sha384-[^`]+)` \|",
        (PROJECT_ROOT / "docs" / "frontend.md").read_text(),
    )
)


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_both_vendored_files_are_recorded():
    assert sorted(RECORDED) == ["django_htmx/ext/hx-ws-2.min.js", "django_htmx/htmx-2.min.js"]


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_serves_exactly_the_recorded_files(daphne, session_cookie):
    _, html = http_get(daphne.http_url + "/", session_cookie)
    scripts = re.findall(r'<script src="(/static/django_htmx/[^"]+)"', html.decode())
    served = {}
    for src in scripts:
        # Hashed names (htmx-2.min.<hash>.js) map back to the recorded file name.
        name = re.sub(r"\.[0-9a-f]{12}\.js$", ".js", src.removeprefix("/static/"))
        served[name] = sri(http_get(daphne.http_url + src)[1])
    assert served == RECORDED


def test_favicon_ico_leads_to_the_icon_the_pages_name(daphne):
    """Pages name the icon; /favicon.ico (asked for by pages that name none, such as the
    admin's) redirects to the same file, so no page load ends in a 404."""
    _, html = http_get(daphne.http_url + "/accounts/login/")
    named = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html.decode())
    assert named, "the page names no icon"
    request = urllib.request.Request(daphne.http_url + "/favicon.ico")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert urllib.parse.urlsplit(response.url).path == named.group(1)
        assert response.headers["Content-Type"] == "image/svg+xml"
        assert response.read() == http_get(daphne.http_url + named.group(1))[1]
