"""Self-test of tests/browser.py: the system Chromium loads a page, and the page's sound
attempts and errors reach the test."""

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from tests.browser import page_errors, screenshot, sound_log

SILENT_WAV = "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="

INDEX_HTML = """<!doctype html>
<html>
  <head><meta charset="utf-8"><title>harness</title><link rel="icon" href="data:,"></head>
  <body>
    <h1 id="status">waiting</h1>
    <script src="app.js"></script>
  </body>
</html>
"""

APP_JS = f"""
new Audio("{SILENT_WAV}").play();
console.error("boom");
document.getElementById("status").textContent = "ran";
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[str]:
    """Base URL of an http.server on a free port of 127.0.0.1 serving the test page."""
    (tmp_path / "index.html").write_text(INDEX_HTML)
    (tmp_path / "app.js").write_text(APP_JS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_page_sound_and_errors(static_site: str, page: Page, tmp_path: Path) -> None:
    with page.expect_console_message(lambda message: message.text == "boom", timeout=5_000):
        page.goto(static_site)
    expect(page.locator("#status")).to_have_text("ran", timeout=5_000)
    page.wait_for_function("window.__soundLog && window.__soundLog.length > 0", timeout=5_000)

    log = sound_log(page)
    assert len(log) == 1
    assert log[0]["src"].startswith("data:audio/wav")
    assert isinstance(log[0]["t"], int)
    # play() resolved (autoplay allowed, no unhandled rejection) and nothing else went wrong
    # (the page names an empty icon: http.server has no favicon.ico to answer with).
    assert page_errors(page) == ["boom"]

    shot = screenshot(page, tmp_path / "shots" / "harness.png")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_orm_usable_while_browser_runs(page: Page, transactional_db) -> None:
    """Playwright's sync API leaves its event loop marked running in this thread; the
    ORM must still work in a browser test (and in `transactional_db`'s teardown)."""
    page.set_content("<p>hi</p>")
    get_user_model().objects.create_user("harness", password="unused-in-tests")
    assert get_user_model().objects.filter(username="harness").exists()
