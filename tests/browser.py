"""Real-browser fixtures: Playwright (sync API) driving the system Chromium.

The browser is Debian's `chromium` package at /usr/bin/chromium; Playwright's own browser
download is never used. Import the fixtures into tests/conftest.py:

    from tests.browser import *  # noqa: F403

Every page records its media playback attempts (`sound_log(page)`) and its console errors
and uncaught exceptions (`page_errors(page)`).
"""

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

import django.utils.asyncio as django_asyncio
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    sync_playwright,
)

__all__ = [
    "AUTOPLAY_ARGS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DEFAULT_TIMEOUT_MS",
    "SOUND_LOG_SCRIPT",
    "VIEWPORT",
    "browser_context",
    "chromium_browser",
    "page",
    "page_errors",
    "playwright_instance",
    "screenshot",
    "sound_log",
    "without_event_loop",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    # The network is closed: no background, update, sync or QUIC connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AUTOPLAY_ARGS = ["--autoplay-policy=no-user-gesture-required"]
VIEWPORT = {"width": 1280, "height": 800}
# Playwright's default is 30 s; a live page that has not updated in 10 s is broken.
DEFAULT_TIMEOUT_MS = 10_000

# Runs in every frame before the page's own scripts. Records each attempt to play sound,
# whether or not the browser then lets it play.
SOUND_LOG_SCRIPT = """
(() => {
  if (window.__soundLog) return;
  const log = (window.__soundLog = []);
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    log.push({ src: this.currentSrc || this.src, t: Date.now() });
    return play.apply(this, args);
  };
  for (const name of ["AudioBufferSourceNode", "OscillatorNode"]) {
    const node = window[name];
    if (!node || !node.prototype.start) continue;
    const start = node.prototype.start;
    node.prototype.start = function (...args) {
      log.push({ src: "webaudio", t: Date.now() });
      return start.apply(this, args);
    };
  }
})();
"""

_errors: WeakKeyDictionary[Page, list[str]] = WeakKeyDictionary()


def _django_ignores(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Stop Django's async-safety check from mistaking Playwright's `loop` for a caller's.

    The sync API leaves its event loop marked as running in this thread between calls, so
    the ORM (in a test, in `transactional_db`'s flush, in `session_cookie`) would raise
    SynchronousOnlyOperation. Only Playwright's loop is ignored, and only in this process:
    unlike DJANGO_ALLOW_ASYNC_UNSAFE, nothing leaks into Daphne's environment.
    Returns the function that undoes this.
    """
    original = django_asyncio.get_running_loop

    def get_running_loop() -> asyncio.AbstractEventLoop:
        running = original()
        if running is loop:
            raise RuntimeError("no running event loop (only Playwright's, parked)")
        return running

    django_asyncio.get_running_loop = get_running_loop

    def undo() -> None:
        django_asyncio.get_running_loop = original

    return undo


@contextmanager
def without_event_loop() -> Iterator[None]:
    """Hide Playwright's event loop for a block that needs a thread without one.

    For `asyncio.run()` or asgiref's `async_to_sync()` (e.g. a channel-layer send) in a
    browser test. Make no Playwright call inside the block.
    """
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    playwright = sync_playwright().start()
    undo = _django_ignores(asyncio.get_running_loop())
    yield playwright
    undo()
    playwright.stop()


@pytest.fixture(scope="session")
def chromium_browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need the system Chromium, "
            "install it with `apt-get install chromium` (not `playwright install`)",
            pytrace=False,
        )
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + AUTOPLAY_ARGS
    )
    yield browser
    browser.close()


def _watch(page: Page) -> None:
    """Collect `page`'s console errors and uncaught exceptions for `page_errors`."""
    if page in _errors:
        return
    errors = _errors[page] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_page_error(error: Error) -> None:
        errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)


@pytest.fixture
def browser_context(chromium_browser: Browser) -> Iterator[BrowserContext]:
    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.add_init_script(SOUND_LOG_SCRIPT)
    context.on("page", _watch)  # pages the site opens (popups) as well
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    page = browser_context.new_page()
    _watch(page)
    return page


def sound_log(page: Page) -> list[dict]:
    """The sounds `page` tried to play: `{"src": url or "webaudio", "t": epoch ms}` each."""
    return page.evaluate("window.__soundLog || []")


def page_errors(page: Page) -> list[str]:
    """`page`'s console errors and uncaught exceptions (messages), so far, in order."""
    _watch(page)
    return _errors[page]


def screenshot(page: Page, path: str | Path) -> Path:
    """Save a full-page PNG of `page` at `path` (parent folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path
