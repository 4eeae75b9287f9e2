"""Ordinary PostgreSQL use reaches the screen: TRUNCATE, writers with any search_path,
pg_dump restores, primary-key changes.

Through real servers: psql and pg_dump (the server's own), the listener process, Daphne,
the JSON feed and the dashboard socket. Counts are compared with the database's count(*).
"""

import re
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from websockets.sync.client import ClientConnection, connect

from devstack.postgres import pg_dump_binary, pg_restore_binary, psql_binary
from tests import test_delivery
from tests.conftest import receive_json
from tests.delivery import POSITION
from tests.processes import Daphne, Listener

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("listener")]

HUMAN, LOTO, PPE = (
    "violation_humandetections",
    "violation_lotodetections",
    "violation_ppedetections",
)


def insert_sql(table: str, camera: int = 2) -> str:
    return (
        f"INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
        f"VALUES ({camera}, current_date, localtime(0), '/media/x.jpg') RETURNING id;"
    )


def widget(frame: str, table: str) -> str | None:
    """The markup of `table`'s widget in a dashboard frame, if the frame carries it."""
    match = re.search(rf'<article[^>]*id="widget-{table}".*?</article>', frame, re.S)
    return match.group(0) if match else None


def count_total(frame: str, table: str) -> int | None:
    part = widget(frame, table)
    match = part and re.search(r'data-count-total="(\d+)"', part)
    return int(match.group(1)) if match else None


def frame_where(socket: ClientConnection, holds: Callable[[str], bool], *, timeout=10.0) -> str:
    """The first dashboard frame for which `holds` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no such dashboard frame within {timeout} s"
        try:
            frame = socket.recv(timeout=remaining)
        except TimeoutError:
            continue
        if holds(frame):
            return frame


def totals_reach(
    socket: ClientConnection, expected: dict[str, int], *, events: list[dict], timeout=10.0
) -> None:
    """Read dashboard frames until the page has applied `events` and the latest total each
    widget showed since the first of them is `expected`: an update carries only the widgets
    its events touched, so two tables' new totals may come in two frames."""
    first, last = min(e["seq"] for e in events), max(e["seq"] for e in events)
    shown: dict[str, int | None] = dict.fromkeys(expected)
    reached = 0

    def holds(frame: str) -> bool:
        nonlocal reached
        position = POSITION.search(frame)
        if position is None or int(position[1]) < first:
            return False  # from before the change the test waits for
        reached = max(reached, int(position[1]))
        for table in expected:
            total = count_total(frame, table)
            if total is not None:
                shown[table] = total
        return reached >= last and shown == expected

    try:
        frame_where(socket, holds, timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"the dashboard shows {shown} at {reached}, not {expected} at {last}"
        ) from None


def db_count(psql, table: str) -> int:
    return int(psql(f"SELECT count(*) FROM {table};"))


@pytest.fixture
def dashboard(daphne, session_cookie) -> ClientConnection:
    with test_delivery.open_dashboard_socket(daphne, session_cookie) as socket:
        socket.send('{"type": "resume", "since": null}')
        yield socket


def test_a_psql_truncate_reaches_the_feed_in_order_and_the_dashboard_counts(
    open_feed, dashboard, psql
):
    feed = open_feed()
    ids = [int(psql(insert_sql(HUMAN))) for _ in range(3)]
    inserts = [receive_json(feed, timeout=5) for _ in ids]
    assert [e["id"] for e in inserts] == ids
    frame_where(dashboard, lambda f: count_total(f, HUMAN) == db_count(psql, HUMAN))

    psql(f"TRUNCATE {HUMAN};")

    event = receive_json(feed, timeout=5)
    assert {k: event[k] for k in ("seq", "table", "op", "id", "data")} == {
        "seq": inserts[-1]["seq"] + 1,
        "table": HUMAN,
        "op": "TRUNCATE",
        "id": None,
        "data": None,
    }
    assert db_count(psql, HUMAN) == 0
    frame = frame_where(dashboard, lambda f: count_total(f, HUMAN) == 0)
    assert 'data-count-today="0"' in widget(frame, HUMAN)
    assert f'data-event-table="{HUMAN}"' not in frame  # gone from the feed too
    assert '<ol id="feed"' in frame  # the feed and chart are re-rendered with the widget
    assert '<figure id="activity"' in frame
    assert 'data-inserted=""' in frame  # no sound for a TRUNCATE


def test_a_truncate_of_several_tables_sends_one_event_per_table(open_feed, dashboard, psql):
    feed = open_feed()
    for table in (HUMAN, LOTO, PPE):
        psql(insert_sql(table))
        receive_json(feed, timeout=5)

    psql(f"TRUNCATE {HUMAN}, {LOTO};")

    events = [receive_json(feed, timeout=5) for _ in range(2)]
    assert sorted((e["table"], e["op"], e["id"]) for e in events) == [
        (HUMAN, "TRUNCATE", None),
        (LOTO, "TRUNCATE", None),
    ]
    assert events[1]["seq"] == events[0]["seq"] + 1
    assert (db_count(psql, HUMAN), db_count(psql, LOTO)) == (0, 0)
    totals_reach(dashboard, {HUMAN: 0, LOTO: 0}, events=events)
    with pytest.raises(TimeoutError):  # and nothing for the table left alone
        feed.recv(timeout=0.5)


@pytest.mark.parametrize("search_path", ["pg_catalog", "''"], ids=["pg_catalog", "empty"])
def test_a_writer_whose_search_path_lacks_public_is_announced(open_feed, psql, search_path):
    feed = open_feed()

    row_id = int(
        psql(f"SET search_path = {search_path}; " + insert_sql(f"public.{HUMAN}", camera=8))
    )

    event = receive_json(feed, timeout=5)
    assert (event["table"], event["op"], event["id"], event["data"]["camera_id"]) == (
        HUMAN,
        "INSERT",
        row_id,
        8,
    )


def test_a_primary_key_change_is_a_delete_then_an_insert_and_the_old_id_leaves_the_screen(
    open_feed, dashboard, psql
):
    feed = open_feed()
    old_id = int(psql(insert_sql(LOTO, camera=6)))
    receive_json(feed, timeout=5)
    frame_where(dashboard, lambda f: f'data-row-id="{old_id}"' in (widget(f, LOTO) or ""))
    new_id = old_id + 100_000

    psql(f"UPDATE {LOTO} SET id = {new_id} WHERE id = {old_id};")

    delete, insert = receive_json(feed, timeout=5), receive_json(feed, timeout=5)
    assert (delete["op"], delete["id"], delete["data"]) == ("DELETE", old_id, None)
    assert (insert["op"], insert["id"], insert["data"]["id"]) == ("INSERT", new_id, new_id)
    assert insert["seq"] == delete["seq"] + 1
    frame = frame_where(dashboard, lambda f: f'data-row-id="{new_id}"' in (widget(f, LOTO) or ""))
    assert 'data-inserted=""' in frame  # a row that moved is no new violation: no sound
    assert f'data-row-id="{old_id}"' not in widget(frame, LOTO)
    assert f'data-event-table="{LOTO}" data-row-id="{old_id}"' not in frame
    assert f'data-event-table="{LOTO}" data-row-id="{new_id}"' in frame
    assert count_total(frame, LOTO) == db_count(psql, LOTO)


def server_version_num(psql) -> int:
    return int(psql("SHOW server_version_num;"))


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]} failed: {result.stderr}"
    return result.stdout


def test_a_data_only_dump_restored_with_psql_is_announced_and_counted(
    open_feed, dashboard, psql, stack_env, tmp_path
):
    feed = open_feed()
    ids = {table: int(psql(insert_sql(table))) for table in (HUMAN, LOTO)}
    for _ in ids:
        receive_json(feed, timeout=5)
    dump = tmp_path / "violations.sql"
    run(
        pg_dump_binary(server_version_num(psql)),
        "--data-only",
        f"--table={HUMAN}",
        f"--table={LOTO}",
        f"--file={dump}",
        stack_env["DATABASE_URL"],
    )
    assert "set_config('search_path', '', false)" in dump.read_text()  # what broke it
    psql(f"TRUNCATE {HUMAN}, {LOTO};")
    assert sorted(receive_json(feed, timeout=5)["op"] for _ in ids) == ["TRUNCATE"] * 2

    run(psql_binary(), stack_env["DATABASE_URL"], "-v", "ON_ERROR_STOP=1", "-q", "-f", str(dump))

    restored = [receive_json(feed, timeout=5) for _ in ids]
    assert sorted((e["table"], e["op"], e["id"]) for e in restored) == sorted(
        (table, "INSERT", row_id) for table, row_id in ids.items()
    )
    assert (db_count(psql, HUMAN), db_count(psql, LOTO)) == (1, 1)
    totals_reach(dashboard, {HUMAN: 1, LOTO: 1}, events=restored)


def test_a_whole_dump_restored_into_a_new_database_works_with_a_listener(
    psql, stack_env, scratch_database_url, session_cookie, logs, tmp_path
):
    kept_id = int(psql(insert_sql(PPE, camera=4)))
    dump = tmp_path / "whole.dump"
    version = server_version_num(psql)
    run(pg_dump_binary(version), "-Fc", f"--file={dump}", stack_env["DATABASE_URL"])

    run(pg_restore_binary(version), "--exit-on-error", "-d", scratch_database_url, str(dump))

    # A channel-layer prefix of its own: the session's Daphne must not hear this database's
    # events (README: several projects on one Redis each need their own prefix).
    restored_env = stack_env | {
        "DATABASE_URL": scratch_database_url,
        "CHANNEL_LAYER_PREFIX": f"{stack_env['CHANNEL_LAYER_PREFIX']}restored",
    }
    listener = Listener(restored_env, logs / "restored-listener.log").start()
    daphne = Daphne(restored_env, logs / "restored-daphne.log").start()
    try:
        with ExitStack() as stack:
            # The session (restored with the rest) logs the same viewer in.
            feed = stack.enter_context(
                connect(
                    daphne.ws_url + "/ws/violations/",
                    origin=daphne.http_url,
                    additional_headers={"Cookie": session_cookie},
                    open_timeout=5,
                )
            )

            def restored_psql(sql: str) -> str:
                return run(
                    psql_binary(), scratch_database_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql
                ).strip()

            assert restored_psql(f"SELECT id FROM {PPE};") == str(kept_id)
            new_id = int(restored_psql("SET search_path = ''; " + insert_sql(f"public.{PPE}")))
            restored_psql(f"TRUNCATE {PPE};")

            events = [receive_json(feed, timeout=5) for _ in range(2)]
            assert [(e["table"], e["op"], e["id"]) for e in events] == [
                (PPE, "INSERT", new_id),
                (PPE, "TRUNCATE", None),
            ]
            assert events[1]["seq"] == events[0]["seq"] + 1
    finally:
        daphne.stop()
        listener.stop()
