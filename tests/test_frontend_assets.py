"""The vendored front-end files the page loads are the ones docs/frontend.md records."""

import base64
import hashlib
import re

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
