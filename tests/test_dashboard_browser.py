"""The dashboard in a real Chromium: what a safety officer sees and hears.

Rows are written with the `psql` binary while the page is open, through the real
listener, Redis and Daphne processes.
"""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser import page_errors, sound_log
from tests.conftest import http_get
from tests.processes import PROJECT_ROOT, Daphne, WebServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("listener")]

HUMAN = "violation_humandetections"
PPE = "violation_ppedetections"


def insert(psql, table: str = HUMAN, image: str = "cam2/snapshot.jpg", rows: int = 1) -> int:
    """Insert `rows` rows dated today through psql; returns the last id."""
    today = timezone.localdate().isoformat()
    image = image.replace("'", "''")
    return int(
        psql(
            f"INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
            f"SELECT 2, '{today}', '15:00:00', '{image}' FROM generate_series(1, {rows}) "
            "RETURNING id;"
        ).splitlines()[-1]
    )


def open_dashboard(page: Page, server: WebServer, session_cookie: str) -> Page:
    name, value = session_cookie.split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": server.http_url}])
    page.goto(server.http_url + "/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    return page


def count_today(page: Page, table: str) -> int:
    return int(
        page.locator(f"#widget-{table} [data-count-today]").get_attribute("data-count-today")
    )


def plays_of(page: Page, sound: str) -> int:
    return sum(1 for entry in sound_log(page) if f"/{sound}." in entry["src"])


@pytest.fixture
def dashboard(page, daphne, session_cookie) -> Page:
    return open_dashboard(page, daphne, session_cookie)


def test_a_psql_insert_updates_the_widget_and_feed_and_plays_the_types_sound(dashboard, psql):
    page = dashboard
    page.get_by_role("button", name="Enable sound").click()
    before, plays_before = count_today(page, HUMAN), plays_of(page, "human")

    row_id = insert(psql)

    widget_count = page.locator(f"#widget-{HUMAN} [data-count-today]")
    expect(widget_count).to_have_attribute("data-count-today", str(before + 1), timeout=2000)
    first = page.locator("#feed [data-row-id]").first
    expect(first).to_have_attribute("data-row-id", str(row_id))
    expect(first).to_have_attribute("data-event-table", HUMAN)
    page.wait_for_function(
        "([n]) => (window.__soundLog || []).filter(e => e.src.includes('/human.')).length > n",
        arg=[plays_before],
        timeout=2000,
    )
    assert page_errors(page) == []


def test_a_psql_delete_brings_the_counts_back_down(dashboard, psql):
    page = dashboard
    row_id = insert(psql)
    expect(page.locator("#feed [data-row-id]").first).to_have_attribute("data-row-id", str(row_id))
    today, total = count_today(page, HUMAN), page.locator(f"#widget-{HUMAN} [data-count-total]")
    total_before = int(total.get_attribute("data-count-total"))

    psql(f"DELETE FROM {HUMAN} WHERE id = {row_id};")

    expect(page.locator(f"#widget-{HUMAN} [data-count-today]")).to_have_attribute(
        "data-count-today", str(today - 1)
    )
    expect(total).to_have_attribute("data-count-total", str(total_before - 1))
    expect(page.locator(f'#feed [data-row-id="{row_id}"]')).to_have_count(0)


def test_an_edited_row_changes_in_the_feed(dashboard, psql):
    page = dashboard
    row_id = insert(psql, image="before.jpg")
    row = page.locator(f'#feed [data-row-id="{row_id}"][data-event-table="{HUMAN}"]')
    expect(row).to_contain_text("before.jpg")

    psql(f"UPDATE {HUMAN} SET violation_image = 'after.jpg', camera_id = 9 WHERE id = {row_id};")

    expect(row).to_contain_text("after.jpg")
    expect(row).to_contain_text("Camera 9")


def test_markup_in_row_data_shows_as_text_and_runs_nothing(dashboard, psql):
    page = dashboard
    hostile = "/media/<script>window.__pwned = 1</script><img src=x>.jpg"

    row_id = insert(psql, image=hostile)

    row = page.locator(f'#feed [data-row-id="{row_id}"]')
    expect(row.locator(".path")).to_have_text(hostile)
    assert page.evaluate("() => window.__pwned") is None
    expect(page.locator("#feed script")).to_have_count(0)


# The x of every visible character of the row's path (logical order), and of each part.
LAYOUT_OF_ROW = """
(row) => {
  const path = row.querySelector(".path");
  const walker = document.createTreeWalker(path, NodeFilter.SHOW_TEXT);
  const chars = [];
  for (let node; (node = walker.nextNode()); ) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      if (box.width > 0) chars.push(box.left);
    }
  }
  const parts = [...row.children].map((part) => part.getBoundingClientRect().left);
  return { chars, parts };
}
"""


@pytest.mark.parametrize(
    "image",
    ["cam2/\u202egpj.exe", "\u202ecam2/snap.jpg\u202c tail", "cam2/\u202b1 2"],
    ids=["RLO-spoof", "RLO-then-PDF", "RLE"],
)
def test_right_to_left_controls_in_row_text_reorder_nothing_on_screen(dashboard, psql, image):
    """ "cam2/<U+202E>gpj.exe" would show as "cam2/exe.jpg": the row's text must read in the
    order it is stored, and the row's parts stay in theirs."""
    page = dashboard
    row_id = insert(psql, image=image)

    row = page.locator(f'#feed [data-row-id="{row_id}"]')
    expect(row).to_be_visible()
    layout = row.evaluate(LAYOUT_OF_ROW)

    assert layout["chars"] == sorted(layout["chars"]), "the path's characters are reordered"
    assert layout["parts"] == sorted(layout["parts"]), "the row's parts are reordered"
    assert "\u202e" not in row.locator(".path").inner_text()
    assert page_errors(page) == []


def test_a_burst_plays_at_most_one_sound_per_type_and_muted_types_stay_silent(dashboard, psql):
    page = dashboard
    page.get_by_role("button", name="Enable sound").click()
    page.get_by_label("PPE missing").uncheck()
    human_before, ppe_before = plays_of(page, "human"), plays_of(page, "ppe")
    count_before = count_today(page, HUMAN)

    insert(psql, rows=5)
    insert(psql, table=PPE)

    expect(page.locator(f"#widget-{HUMAN} [data-count-today]")).to_have_attribute(
        "data-count-today", str(count_before + 5)
    )
    expect(page.locator(f"#feed [data-event-table='{PPE}']").first).to_be_visible()
    assert plays_of(page, "human") == human_before + 1
    assert plays_of(page, "ppe") == ppe_before


def test_the_sound_choice_persists_across_reloads(dashboard):
    page = dashboard
    toggle = page.locator("#sound-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Lock-out/tag-out").uncheck()

    page.reload()

    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Lock-out/tag-out")).not_to_be_checked()
    expect(page.get_by_label("PPE missing")).to_be_checked()


# Headless Chromium lets every page play sound whatever --autoplay-policy says (and
# Playwright's own evaluations count as user gestures), so the browser's refusal is
# reproduced here, worded as Chromium words it, until a real click or key press.
REFUSE_PLAY_UNTIL_USER_INPUT = """
(() => {
  let interacted = false;
  for (const type of ["pointerdown", "keydown"]) {
    addEventListener(type, (event) => { if (event.isTrusted) interacted = true; }, true);
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    if (!interacted) {
      return Promise.reject(new DOMException(
        "play() failed because the user didn't interact with the document first.",
        "NotAllowedError"));
    }
    return play.apply(this, args);
  };
})();
"""


def test_when_the_browser_blocks_sound_the_page_says_so_and_one_click_fixes_it(
    page, daphne, session_cookie, psql
):
    # Sound was enabled in an earlier visit; this visit has had no click yet.
    page.add_init_script(
        "localStorage.setItem('safety-dashboard.sound', JSON.stringify({enabled: true}))"
    )
    page.add_init_script(REFUSE_PLAY_UNTIL_USER_INPUT)
    open_dashboard(page, daphne, session_cookie)
    notice = page.locator("#sound-blocked")
    expect(notice).to_be_hidden()

    insert(psql)

    expect(notice).to_be_visible()
    expect(notice).to_contain_text("blocked")
    plays = len(sound_log(page))
    page.get_by_role("button", name="Click to allow sound").click()
    expect(notice).to_be_hidden()
    assert len(sound_log(page)) == plays + 1


def test_after_a_server_restart_it_reconnects_and_shows_what_it_missed(
    page, stack_env, logs, session_cookie, psql
):
    server = Daphne(stack_env, logs / "daphne-restart.log").start()
    try:
        open_dashboard(page, server, session_cookie)
        indicator = page.locator("#connection")

        server.stop()
        expect(indicator).to_have_attribute("data-state", "reconnecting")
        expect(indicator).to_contain_text("Reconnecting")
        missed = insert(psql)  # nobody is connected to hear about this one
        server.start()

        expect(indicator).to_have_attribute("data-state", "connected", timeout=15_000)
        expect(indicator).to_contain_text("Live")
        expect(page.locator("#feed [data-row-id]").first).to_have_attribute(
            "data-row-id", str(missed)
        )
    finally:
        server.stop()


def test_an_anonymous_visit_goes_to_the_login_page(page, daphne):
    page.goto(daphne.http_url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_logging_in_through_the_form_opens_the_live_dashboard(page, daphne, transactional_db):
    from django.contrib.auth import get_user_model

    from tests.conftest import grant_dashboard_view

    user = get_user_model().objects.create_user("wall-screen", password="a-long-test-password")
    grant_dashboard_view(user)
    page.goto(daphne.http_url + "/")
    page.get_by_label("Username").fill("wall-screen")
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator(f"#widget-{HUMAN}")).to_be_visible()
    assert page_errors(page) == []


def test_the_hooks_the_readme_names_are_on_the_page(dashboard, psql):
    """README's "Hooks for tests and forks", each found where it says."""
    insert(psql)
    readme = (PROJECT_ROOT / "README.md").read_text()
    bullet = re.search(r"\*\*Hooks for tests and forks\*\*:(.*?)\n(?:- |\n)", readme, re.S)
    named = {
        "`#widget-<db_table>`": f"#widget-{HUMAN}",
        "`#widget-<db_table> [data-count-today]`": f"#widget-{HUMAN} [data-count-today]",
        "`[data-count-total]`": f"#widget-{HUMAN} [data-count-total]",
        "`#feed`": "#feed",
        "`data-event-table`": f'#feed [data-event-table="{HUMAN}"]',
        "`data-row-id`": "#feed [data-event-table][data-row-id]",
        "`#connection`": "#connection",
    }
    assert bullet, "README has no hooks bullet"
    for phrase, selector in named.items():
        assert phrase in bullet.group(1)
        expect(dashboard.locator(selector).first).to_be_attached()


def test_loading_the_dashboard_fails_no_request_the_icon_included(page, daphne, session_cookie):
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    with page.expect_response(lambda response: "favicon" in response.url) as icon:
        open_dashboard(page, daphne, session_cookie)
    assert icon.value.status == 200
    assert icon.value.header_value("content-type") == "image/svg+xml"
    assert failed == []
    assert page_errors(page) == []


def test_the_page_is_served_with_a_csp_that_forbids_inline_script(daphne, session_cookie):
    headers, body = http_get(daphne.http_url + "/", session_cookie)
    policy, html = headers["Content-Security-Policy"], body.decode()
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'self'" in script_src
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # no inline <script>
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
