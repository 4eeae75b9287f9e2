"""Delivery guarantees, proved with real processes: every committed change reaches every
connected client exactly once, in order, through listener, database, Redis and Daphne
failures. Each test counts what the database committed against what a client received.
"""

import re
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from devstack.redis import LocalRedis
from tests.delivery import (
    INSERT,
    AckingDashboard,
    Producer,
    ResumingFeed,
    assert_exactly_once_in_order,
    pgbench_inserts,
    poisson_floor,
)
from tests.processes import Daphne, Listener
from violations.models import ChangeEvent

pytestmark = pytest.mark.django_db(transaction=True)

HUMAN = "violation_humandetections"
PPE = "violation_ppedetections"
# A burst long enough to be cut in the middle, short enough for `make test`.
BURST = {"count": 600, "rate": 300}


def insert_sentinel(database_url: str) -> int:
    """One more row after the fault: once it arrives, anything extra would have shown."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        (row_id,) = conn.execute(INSERT.format(table=HUMAN), [99, "/media/sentinel.jpg"]).fetchone()
    return row_id


def finish(feed: ResumingFeed, database_url: str, ids: list[int]) -> None:
    ids = [*ids, insert_sentinel(database_url)]
    feed.receive_until(lambda events: ids[-1] in {e["id"] for e in events}, timeout=60)
    assert_exactly_once_in_order(feed.events, row_ids=ids)
    first = feed.events[0]["seq"]
    assert ChangeEvent.objects.filter(seq__gte=first).count() == len(ids)


@pytest.fixture
def feed_at_head(daphne, session_cookie):
    """A resuming feed on the session's Daphne, live from now."""
    feeds = []

    def open_feed(server: Daphne = daphne) -> ResumingFeed:
        feed = ResumingFeed(server.ws_url, server.http_url, session_cookie)
        feeds.append(feed)
        return feed

    yield open_feed
    for feed in feeds:
        feed.close()


@pytest.mark.usefixtures("listener_paused")
def test_a_listener_killed_mid_burst_loses_nothing_once_restarted(stack_env, logs, feed_at_head):
    url = stack_env["DATABASE_URL"]
    first = Listener(stack_env, logs / "listener-kill9-first.log").start()
    feed = feed_at_head()
    producer = Producer(url, HUMAN, **BURST).start()
    try:
        feed.receive_until(lambda events: len(events) >= 100, timeout=30)
        first.signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        ids = producer.join(timeout=30)  # the rest of the burst commits with no listener
        second = Listener(stack_env, logs / "listener-kill9-second.log").start()
        try:
            finish(feed, url, ids)
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.usefixtures("listener")
def test_a_terminated_listener_connection_loses_nothing(stack_env, psql, feed_at_head):
    url = stack_env["DATABASE_URL"]
    feed = feed_at_head()
    producer = Producer(url, HUMAN, **BURST).start()
    feed.receive_until(lambda events: len(events) >= 100, timeout=30)
    terminated = psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'listen_notify' AND datname = current_database();"
    )
    assert int(terminated) >= 1
    finish(feed, url, producer.join(timeout=30))


@pytest.mark.usefixtures("listener_paused")
def test_a_redis_restart_mid_burst_loses_nothing(stack_env, logs, session_cookie):
    url = stack_env["DATABASE_URL"]
    redis = LocalRedis()
    env = stack_env | {"REDIS_URL": redis.url}
    server = Daphne(env, logs / "daphne-redis-restart.log").start()
    listener = Listener(env, logs / "listener-redis-restart.log").start()
    try:
        feed = ResumingFeed(server.ws_url, server.http_url, session_cookie)
        producer = Producer(url, HUMAN, **BURST).start()
        feed.receive_until(lambda events: len(events) >= 100, timeout=30)
        port = redis.port
        redis.stop()
        redis = LocalRedis(port=port)  # the same server address, empty
        finish(feed, url, producer.join(timeout=30))
        feed.close()
    finally:
        listener.stop()
        server.stop()
        redis.stop()


@pytest.mark.usefixtures("listener")
def test_clients_resume_across_a_daphne_restart(stack_env, logs, session_cookie):
    url = stack_env["DATABASE_URL"]
    server = Daphne(stack_env, logs / "daphne-restart.log").start()
    try:
        feeds = [ResumingFeed(server.ws_url, server.http_url, session_cookie) for _ in range(3)]
        producer = Producer(url, HUMAN, **BURST).start()
        feeds[0].receive_until(lambda events: len(events) >= 100, timeout=30)
        server.stop()
        server.start()  # same port: the clients reconnect with ?since=
        ids = [*producer.join(timeout=30), insert_sentinel(url)]
        for feed in feeds:
            feed.receive_until(lambda events: ids[-1] in {e["id"] for e in events}, timeout=60)
            assert_exactly_once_in_order(feed.events, row_ids=ids)
            assert feed.reconnects >= 1
            feed.close()
    finally:
        server.stop()


@pytest.mark.usefixtures("listener_paused")
def test_the_standby_listener_takes_over_within_5_s_and_nothing_is_lost(
    stack_env, logs, feed_at_head
):
    url = stack_env["DATABASE_URL"]
    active = Listener(stack_env, logs / "listener-ha-active.log").start()
    standby = Listener(stack_env, logs / "listener-ha-standby.log").start(wait=False)
    try:
        standby.wait_for_log(Listener.STANDBY_LINE)
        feed = feed_at_head()
        producer = Producer(url, HUMAN, **BURST).start()
        feed.receive_until(lambda events: len(events) >= 100, timeout=30)

        active.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        standby.wait_for_log(Listener.READY_LINE, timeout=5)
        assert time.monotonic() - killed_at <= 5

        finish(feed, url, producer.join(timeout=30))
    finally:
        active.stop()
        standby.stop()


@pytest.mark.usefixtures("listener")
def test_a_transaction_that_commits_later_is_delivered_later_not_skipped(stack_env, feed_at_head):
    """Ids are handed out at INSERT, not at COMMIT: the first transaction takes the lower
    event id but commits second. A watermark on ids would skip it; ours delivers it next."""
    url = stack_env["DATABASE_URL"]
    feed = feed_at_head()
    sql = INSERT.format(table=HUMAN)
    with psycopg.connect(url) as early, psycopg.connect(url) as late:
        (early_id,) = early.execute(sql, [1, "/media/early.jpg"]).fetchone()
        (late_id,) = late.execute(sql, [2, "/media/late.jpg"]).fetchone()
        late.commit()
        [first] = feed.receive_until(lambda events: len(events) >= 1, timeout=10)
        assert first["id"] == late_id
        early.commit()
        feed.receive_until(lambda events: len(events) >= 2, timeout=10)

    assert [e["id"] for e in feed.events] == [late_id, early_id]
    assert_exactly_once_in_order(feed.events, row_ids=[early_id, late_id])
    logged = dict(
        ChangeEvent.objects.filter(row_id__in=[early_id, late_id]).values_list("row_id", "id")
    )
    assert logged[early_id] < logged[late_id]  # the early one holds the lower log id


def dashboard_count(socket, table: str, expected: int, *, timeout: float) -> int:
    """Read dashboard fragments until the widget of `table` shows `expected` in total."""
    pattern = re.compile(rf'id="widget-{table}".*?data-count-total="(\d+)"', re.S)
    deadline, shown = time.monotonic() + timeout, None
    while shown != expected:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the dashboard shows {shown}, not {expected}"
        try:
            match = pattern.search(socket.recv(timeout=remaining))
        except TimeoutError:
            continue
        if match:
            shown = int(match.group(1))
    return shown


@contextmanager
def open_dashboard_socket(server: Daphne, cookie: str) -> Iterator[AckingDashboard]:
    """A dashboard socket that reads and acknowledges as the page does, whenever the test
    gets round to looking at its frames."""
    with connect(
        server.ws_url + "/ws/dashboard/",
        origin=server.http_url,
        additional_headers={"Cookie": cookie},
        open_timeout=5,
        ping_interval=None,
    ) as socket:
        yield AckingDashboard(socket)


@pytest.mark.usefixtures("listener")
def test_one_statement_inserting_10000_rows_reaches_feed_and_dashboard_exactly(
    daphne, session_cookie, psql, feed_at_head
):
    feed = feed_at_head()
    with open_dashboard_socket(daphne, session_cookie) as dashboard:
        dashboard.send('{"type": "resume", "since": null}')
        ids = psql(
            f"INSERT INTO {PPE}(camera_id, violation_date, violation_time, violation_image) "
            "SELECT g % 12, current_date, '12:00', '/media/b' || g "
            "FROM generate_series(1, 10000) g RETURNING id;"
        ).split()
        assert dashboard_count(dashboard, PPE, 10_000, timeout=60) == 10_000
    feed.receive_until(lambda events: len(events) >= 10_000, timeout=120)
    assert_exactly_once_in_order(feed.events, row_ids=[int(i) for i in ids])


# The load: single-row commits per second, from pgbench (two Python threads reach
# about 1,000 here).
COMMIT_RATE = 2000
# pgbench connections sharing the schedule, on two threads, so one slow commit does not
# hold up the schedule; more than a few only queue, since PostgreSQL serializes notifying
# commits (a cluster-wide lock held through each commit; see pgbench_inserts).
PGBENCH_CLIENTS = 4


def sustained_commits(
    stack_env, daphne, session_cookie, feed_at_head, workdir, *, seconds: int
) -> None:
    """pgbench commits single rows on a COMMIT_RATE schedule for `seconds` while a feed
    client and a dashboard socket are attached. Every committed row must reach the feed
    once, in order, and the dashboard's count; and the rate pgbench reached must be what a
    kept schedule gives (poisson_floor)."""
    floor = poisson_floor(COMMIT_RATE, seconds)
    url = stack_env["DATABASE_URL"]
    image = f"/media/pgbench-{secrets.token_hex(8)}.jpg"  # this run's rows, and only them
    feed = feed_at_head()
    with open_dashboard_socket(daphne, session_cookie) as dashboard:
        dashboard.send('{"type": "resume", "since": null}')
        load = pgbench_inserts(
            url,
            HUMAN,
            image=image,
            rate=COMMIT_RATE,
            seconds=seconds,
            clients=PGBENCH_CLIENTS,
            workdir=workdir,
        )
        ended = time.monotonic()
        with psycopg.connect(url) as conn:
            ids = [
                row_id
                for (row_id,) in conn.execute(
                    f"SELECT id FROM {HUMAN} WHERE violation_image = %s", [image]
                )
            ]
        assert len(ids) == load.transactions, (
            f"pgbench counted {load.transactions} commits, the table holds {len(ids)}:\n"
            + load.output
        )
        achieved = len(ids) / load.seconds
        reached = f"{len(ids)} commits in {load.seconds:.2f} s: {achieved:.0f}/s"
        try:
            feed.receive_until(lambda events: len(events) >= len(ids), timeout=seconds * 20)
        except AssertionError as exc:
            raise AssertionError(f"the feed fell behind {reached}: {exc}") from None
        caught_up = f"the feed had them all {time.monotonic() - ended:.2f} s after pgbench ended"
        assert_exactly_once_in_order(feed.events, row_ids=ids)
        expected = ChangeEvent.objects.filter(seq__isnull=False, table_name=HUMAN).count()
        assert dashboard_count(dashboard, HUMAN, expected, timeout=60) == expected
    assert achieved >= floor, (
        f"{reached}, below {floor:.0f}/s ({caught_up}; counts exact):\n{load.output}"
    )
    lag = re.search(r"^rate limit schedule lag: (.*)$", load.output, re.M)
    print(f"{reached} (schedule lag {lag[1] if lag else '?'}); {caught_up}; every count exact")


@pytest.mark.usefixtures("listener")
def test_2000_single_row_commits_per_second_arrive_with_every_count_exact(
    stack_env, daphne, session_cookie, feed_at_head, tmp_path
):
    sustained_commits(stack_env, daphne, session_cookie, feed_at_head, tmp_path, seconds=3)


@pytest.mark.soak
@pytest.mark.timeout(900)
@pytest.mark.usefixtures("listener")
def test_soak_2000_commits_per_second_for_30_s(
    stack_env, daphne, session_cookie, feed_at_head, tmp_path
):
    sustained_commits(stack_env, daphne, session_cookie, feed_at_head, tmp_path, seconds=30)


@pytest.mark.usefixtures("listener")
def test_a_dashboard_page_resumes_across_a_daphne_restart(
    stack_env, logs, page, session_cookie, psql
):
    from tests.test_dashboard_browser import count_today, insert, open_dashboard

    server = Daphne(stack_env, logs / "daphne-browser-restart.log").start()
    try:
        open_dashboard(page, server, session_cookie)
        before = count_today(page, HUMAN)
        position = int(page.locator("#stream-position").get_attribute("data-seq"))

        server.stop()
        expect(page.locator("#connection")).not_to_have_attribute("data-state", "connected")
        last_id = insert(psql, HUMAN, image="/media/while-down.jpg", rows=3)
        server.start()

        expect(page.locator("#connection")).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
        expect(page.locator(f"#widget-{HUMAN} [data-count-today]")).to_have_attribute(
            "data-count-today", str(before + 3)
        )
        expect(page.locator(f'#feed [data-row-id="{last_id}"]')).to_have_count(1)
        expect(page.locator("#stream-position")).to_have_attribute("data-seq", str(position + 3))
    finally:
        server.stop()


@pytest.mark.usefixtures("listener")
def test_the_dashboard_shows_whether_a_listener_is_delivering(
    listener, page, daphne, session_cookie, psql
):
    from tests.test_dashboard_browser import insert, open_dashboard

    open_dashboard(page, daphne, session_cookie)
    health = page.locator("#listener-health")
    expect(health).to_have_attribute("data-state", "active")
    expect(health).to_contain_text("Listener active")
    insert(psql, HUMAN)
    expect(health.locator(".last-event")).to_contain_text(re.compile(r"last event \d+ s ago"))
    listener.stop()
    try:
        expect(health).to_have_attribute("data-state", "down", timeout=10_000)
        expect(health).to_contain_text("Listener not running")
    finally:
        listener.start()
    expect(health).to_have_attribute("data-state", "active", timeout=10_000)
