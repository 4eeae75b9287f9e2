"""The NOTIFY triggers, as PostgreSQL runs them."""

import json

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from violations.listener import conninfo
from violations.models import ChangeEvent, Violation, violation_models
from violations.notify import NOTIFY_CHANNEL

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ["violation_humandetections", "violation_lotodetections", "violation_ppedetections"]


@pytest.fixture
def notifications(django_db_blocker):
    """Collect what the trigger sends, on a real LISTEN connection."""
    with (
        django_db_blocker.unblock(),
        psycopg.connect(conninfo(connection.settings_dict), autocommit=True) as conn,
    ):
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")

        def received(count: int) -> list[dict]:
            payloads = [n.payload for n in conn.notifies(timeout=2, stop_after=count)]
            return [json.loads(p) for p in payloads]

        yield received


def test_the_three_tables_are_the_violation_models():
    assert sorted(violation_models()) == TABLES


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_a_row_trigger_for_insert_update_and_delete(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_manipulation, action_timing, action_orientation "
            "FROM information_schema.triggers WHERE event_object_table = %s",
            [table],
        )
        rows = cursor.fetchall()
    assert sorted(rows) == [
        ("DELETE", "AFTER", "ROW"),
        ("INSERT", "AFTER", "ROW"),
        ("UPDATE", "AFTER", "ROW"),
    ]


@pytest.mark.parametrize("table", TABLES)
def test_the_recipes_psql_insert_works_and_notifies(table, notifications):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
            "VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg') RETURNING id"
        )
        (row_id,) = cursor.fetchone()
        cursor.execute(f"UPDATE {table} SET camera_id = 3 WHERE id = %s", [row_id])
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row_id])
    received = notifications(3)
    assert [{k: n[k] for k in ("table", "op", "id")} for n in received] == [
        {"table": table, "op": op, "id": row_id} for op in ("INSERT", "UPDATE", "DELETE")
    ]
    # Each names its entry in the event log, which holds the row as each statement left it.
    logged = {e.id: e for e in ChangeEvent.objects.filter(id__in=[n["event_id"] for n in received])}
    assert [(logged[n["event_id"]].op, logged[n["event_id"]].row_id) for n in received] == [
        ("INSERT", row_id),
        ("UPDATE", row_id),
        ("DELETE", row_id),
    ]
    assert logged[received[0]["event_id"]].data["camera_id"] == 2
    assert logged[received[1]["event_id"]].data["camera_id"] == 3
    assert logged[received[2]["event_id"]].data is None


def test_a_row_far_over_the_notify_limit_still_inserts_and_notifies(notifications):
    model = violation_models()["violation_ppedetections"]
    row = model.objects.create(
        camera_id=1,
        violation_date="2025-07-28",
        violation_time="15:00",
        violation_image="/media/" + "é" * 20_000,  # 40 kB of UTF-8
    )
    [notification] = notifications(1)
    assert (notification["table"], notification["op"], notification["id"]) == (
        "violation_ppedetections",
        "INSERT",
        row.id,
    )
    assert ChangeEvent.objects.get(id=notification["event_id"]).data["violation_image"] == (
        "/media/" + "é" * 20_000
    )


def test_a_rolled_back_change_leaves_no_event_and_sends_no_notification(notifications):
    model = violation_models()["violation_humandetections"]
    with transaction.atomic():
        model.objects.create(
            camera_id=1,
            violation_date="2025-07-28",
            violation_time="15:00",
            violation_image="/media/rolled-back.jpg",
        )
        transaction.set_rollback(True)  # the camera system's transaction fails
    assert ChangeEvent.objects.count() == 0
    assert notifications(1) == []


@pytest.mark.usefixtures("listener_paused")  # else the session's listener numbers it first
def test_events_wait_in_the_log_until_a_listener_numbers_them():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO violation_lotodetections"
            "(camera_id, violation_date, violation_time, violation_image) "
            "VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg')"
        )
    event = ChangeEvent.objects.get()
    assert (event.table_name, event.op, event.seq) == ("violation_lotodetections", "INSERT", None)
    assert event.created_at is not None


def test_a_new_violation_type_inherits_the_trigger():
    for model in violation_models().values():
        assert issubclass(model, Violation)
        names = [trigger.name for trigger in model._meta.triggers]
        assert names == ["notify_violation_change"]


def test_migrations_are_up_to_date():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
