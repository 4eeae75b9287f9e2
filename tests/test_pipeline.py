"""End to end: a row written any way reaches a WebSocket client through real servers.

PostgreSQL trigger -> NOTIFY -> `manage.py listen_notify` (its own process) -> Redis
channel layer -> Daphne (its own process) -> `/ws/violations/`.
"""

import datetime
import re
import signal

import pytest

from devstack.ports import wait_until
from tests.conftest import receive_json
from tests.processes import Listener
from violations.contract import NOTIFY_CHANNEL
from violations.events import CUT_MARKER, MAX_VALUE_CHARS
from violations.models import HumanDetection, LotoDetection, PpeDetection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("listener")]

PSQL_INSERT = (
    "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
    "violation_image) VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg') RETURNING id;"
)


def new_row(model=HumanDetection, **fields):
    values = {
        "camera_id": 7,
        "violation_date": datetime.date(2025, 7, 28),
        "violation_time": datetime.time(15, 0),
        "violation_image": "/media/cam7.jpg",
    }
    return model.objects.create(**(values | fields))


def test_psql_insert_reaches_the_websocket(open_feed, psql):
    feed = open_feed()

    row_id = int(psql(PSQL_INSERT))

    event = receive_json(feed)
    assert event["table"] == "violation_humandetections"
    assert event["op"] == "INSERT"
    assert event["id"] == row_id
    data = event["data"]
    assert data["id"] == row_id
    assert data["camera_id"] == 2
    assert data["violation_date"] == "2025-07-28"
    assert data["violation_time"] == "15:00:00"
    assert data["violation_image"] == "/media/x.jpg"
    assert data["created_at"]  # filled in by the database default


def test_orm_create_update_and_delete_are_announced(open_feed):
    feed = open_feed()

    row = new_row(PpeDetection, camera_id=3)
    inserted = receive_json(feed)
    assert (inserted["table"], inserted["op"], inserted["id"]) == (
        "violation_ppedetections",
        "INSERT",
        row.id,
    )

    PpeDetection.objects.filter(pk=row.pk).update(camera_id=4)
    updated = receive_json(feed)
    assert (updated["op"], updated["id"], updated["data"]["camera_id"]) == ("UPDATE", row.id, 4)

    row_id = row.id
    row.delete()
    deleted = receive_json(feed)
    assert (deleted["op"], deleted["id"], deleted["data"]) == ("DELETE", row_id, None)


def test_bulk_create_announces_every_row_in_order(open_feed):
    feed = open_feed()

    rows = LotoDetection.objects.bulk_create(
        LotoDetection(
            camera_id=camera,
            violation_date=datetime.date(2025, 7, 28),
            violation_time=datetime.time(9, camera),
            violation_image=f"/media/loto-{camera}.jpg",
        )
        for camera in range(1, 26)
    )

    received = [receive_json(feed) for _ in rows]
    assert [e["id"] for e in received] == [row.id for row in rows]
    assert {e["table"] for e in received} == {"violation_lotodetections"}
    assert [e["data"]["camera_id"] for e in received] == list(range(1, 26))


def test_queryset_update_and_delete_announce_each_row(open_feed):
    rows = [new_row(camera_id=camera) for camera in (1, 2, 3)]
    feed = open_feed()

    HumanDetection.objects.filter(pk__in=[r.pk for r in rows]).update(camera_id=9)
    updates = [receive_json(feed) for _ in rows]
    assert sorted(e["id"] for e in updates) == sorted(r.id for r in rows)
    assert {(e["op"], e["data"]["camera_id"]) for e in updates} == {("UPDATE", 9)}

    HumanDetection.objects.filter(pk__in=[r.pk for r in rows]).delete()
    deletes = [receive_json(feed) for _ in rows]
    assert sorted(e["id"] for e in deletes) == sorted(r.id for r in rows)
    assert {e["op"] for e in deletes} == {"DELETE"}


def test_a_20_kb_row_inserts_and_is_announced(open_feed, psql):
    feed = open_feed()
    long_path = "/media/" + "x" * 20_000 + ".jpg"

    row_id = int(
        psql(
            "INSERT INTO violation_ppedetections(camera_id, violation_date, violation_time, "
            f"violation_image) VALUES (5, '2025-07-28', '15:00:00', '{long_path}') RETURNING id;"
        )
    )

    event = receive_json(feed)
    assert event["id"] == row_id
    # Announced, with the long value cut on the wire (tests/test_large_rows.py).
    assert event["data"]["violation_image"] == long_path[:MAX_VALUE_CHARS] + CUT_MARKER
    assert event["cut"] == {"violation_image": len(long_path)}


@pytest.mark.parametrize(
    "payload",
    [
        "garbage",
        "",
        "[1, 2, 3]",
        '{"table": "auth_user", "op": "INSERT", "id": 1}',
        '{"table": "violation_humandetections", "op": "INSERT", "id": 999999999}',
        '{"table": "violation_humandetections", "op": "DROP", "id": 1}',
        '{"table": "violation_humandetections", "op": "INSERT", "id": "1; DROP TABLE x"}',
    ],
    ids=["text", "empty", "array", "other-table", "forged-id", "bad-op", "sql-id"],
)
def test_bad_notifications_send_nothing_and_the_listener_carries_on(
    open_feed, psql, listener, payload
):
    feed = open_feed()

    psql(f"NOTIFY {NOTIFY_CHANNEL}, '{payload.replace(chr(39), chr(39) * 2)}';")
    row_id = int(psql(PSQL_INSERT))

    # Notifications are handled in order: had the bad one produced anything, it would
    # arrive first. The real row arriving first proves nothing false was sent.
    event = receive_json(feed)
    assert (event["op"], event["id"]) == ("INSERT", row_id)
    assert listener.running()


def test_a_forged_notification_of_a_real_row_announces_nothing(open_feed, psql):
    row = new_row(camera_id=11)
    feed = open_feed()
    forged_event_id = 10**12

    psql(
        f"NOTIFY {NOTIFY_CHANNEL}, "
        f'\'{{"event_id": {forged_event_id}, "table": "violation_humandetections", '
        f'"op": "UPDATE", "id": {row.id}, "data": {{"camera_id": 666}}}}\';'
    )
    real = new_row(camera_id=12)

    # The forged notification found nothing in the log; the next real change comes first.
    event = receive_json(feed)
    assert (event["op"], event["id"], event["data"]["camera_id"]) == ("INSERT", real.id, 12)


def test_listener_reconnects_after_its_connection_is_terminated(open_feed, psql, listener):
    feed = open_feed()
    log_before = len(listener.log())

    terminated = psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'listen_notify' AND datname = current_database();"
    )
    assert int(terminated) >= 1

    # The listener says when it is back; then a new row must come through.
    wait_until(
        lambda: re.search("not connected.*listening on channel", listener.log()[log_before:], re.S),
        timeout=10,
        what="the listener to reconnect",
    )
    row_id = int(psql(PSQL_INSERT))
    event = receive_json(feed, timeout=2)
    assert event["id"] == row_id


def test_a_second_listener_waits_on_standby_and_stops_cleanly_on_sigterm(stack_env, logs):
    process = Listener(stack_env, logs / "listener-sigterm.log").start(wait=False)
    process.wait_for_log(Listener.STANDBY_LINE)
    process.signal(signal.SIGTERM)
    assert process.process.wait(timeout=10) == 0
    assert "stopped" in process.log(since_start=True)
    assert "Traceback" not in process.log(since_start=True)
