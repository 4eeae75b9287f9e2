"""The listener process on its own: failures it must survive, and how it reports them."""

import random
import re

import pytest
from django.db import connection
from psycopg.conninfo import conninfo_to_dict

from devstack.ports import free_port, wait_until
from tests.conftest import receive_json
from tests.processes import Listener
from tests.tcp_proxy import SilenceableProxy
from violations.backoff import Backoff
from violations.conninfo import conninfo
from violations.contract import EVENT_LOG_TABLE
from violations.listener import MAX_BATCH, _number_pending_query
from violations.models import HumanDetection


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(initial=0.5, cap=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(10)]
    assert all(ceiling / 2 <= d <= ceiling for d, ceiling in zip(delays, ceilings, strict=True))
    assert max(delays) <= 8.0
    assert len(set(delays)) == len(delays)  # jittered, not in lock-step

    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.usefixtures("listener_paused")
def test_retries_log_one_line_per_state_change(stack_env, logs):
    env = stack_env | {
        # Nothing listens on this port: every attempt is refused.
        "LISTEN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        "VIOLATIONS_LOG_LEVEL": "DEBUG",
    }
    listener = Listener(env, logs / "listener-refused.log").start(wait=False)
    try:
        wait_until(
            lambda: listener.log().count("reconnecting in") >= 3,
            timeout=15,
            what="three reconnect attempts",
        )
        assert listener.log().count("not connected") == 1
        assert listener.running()
    finally:
        assert listener.stop() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener_paused")
def test_a_silently_dead_connection_is_noticed_and_replaced(stack_env, logs, open_feed):
    params = conninfo_to_dict(stack_env["DATABASE_URL"])
    host, port = params.get("host", "127.0.0.1"), int(params.get("port", 5432))
    target = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    proxy = SilenceableProxy(target)
    env = stack_env | {
        "LISTEN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/{params['dbname']}"
    }
    listener = Listener(env, logs / "listener-silent.log", "--health-timeout", "1").start()
    try:
        feed = open_feed()
        assert proxy.blackhole_existing() == 1
        log_before = len(listener.log())

        wait_until(
            lambda: re.search(
                r"not connected \(TimeoutError.*listening on channel",
                listener.log()[log_before:],
                re.S,
            ),
            timeout=10,
            what="the listener to notice the dead connection and reconnect",
        )
        row = HumanDetection.objects.create(
            camera_id=1,
            violation_date="2025-07-28",
            violation_time="15:00",
            violation_image="/media/after-reconnect.jpg",
        )
        assert receive_json(feed, timeout=2)["id"] == row.id
    finally:
        listener.stop()
        proxy.close()


def test_conninfo_carries_libpq_options_and_drops_djangos_own():
    info = conninfo(
        {
            "NAME": "safety",
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {"host": "/run/pg", "sslmode": "require", "pool": True},
        }
    )
    assert conninfo_to_dict(info) == {
        "dbname": "safety",
        "user": "postgres",
        "host": "/run/pg",
        "sslmode": "require",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("commit_order", [False, True], ids=["id order", "commit order"])
def test_numbering_looks_pending_events_up_by_id_however_large_the_log(commit_order):
    """The planner must not walk the whole log to number a few events. It once did: the
    head table, created by a migration and never analyzed where autovacuum is off, was
    guessed at thousands of rows, and the head joined to the pending events made a merge
    join over the entire log: 70 ms per event at 120,000 events."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENT_LOG_TABLE} (table_name, op, row_id, seq)"
            " SELECT 'violation_humandetections', 'INSERT', g, -g"
            " FROM generate_series(1, 100000) g"
        )
        cursor.execute(f"ANALYZE {EVENT_LOG_TABLE}")
        query = _number_pending_query(commit_order).as_string(cursor.connection)
        cursor.execute(f"EXPLAIN {query}", {"limit": MAX_BATCH})
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Merge Join" not in plan, plan
    assert "Index Cond: (id = numbered.id)" in plan, plan
