"""The NOTIFY triggers, as PostgreSQL runs them."""

import json

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from violations.conninfo import conninfo
from violations.contract import NOTIFY_CHANNEL
from violations.models import ChangeEvent, Violation, violation_models

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


def test_a_new_violation_type_inherits_the_triggers():
    for model in violation_models().values():
        assert issubclass(model, Violation)
        names = [trigger.name for trigger in model._meta.triggers]
        assert names == ["notify_violation_change", "notify_violation_truncate"]


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_a_statement_trigger_for_truncate(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgname LIKE %s",
            [table, "pgtrigger_notify_violation_truncate_%"],
        )
        [(definition,)] = cursor.fetchall()
    assert f" AFTER TRUNCATE ON public.{table} FOR EACH STATEMENT " in definition


def test_a_truncate_of_several_tables_logs_one_event_per_table(notifications):
    for table in TABLES:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
                "VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg')"
            )
    notifications(len(TABLES))

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES[:2])}")

    received = notifications(3)
    assert sorted((n["table"], n["op"], n["id"]) for n in received) == [
        (table, "TRUNCATE", None) for table in TABLES[:2]
    ]
    logged = ChangeEvent.objects.filter(op="TRUNCATE").order_by("id")
    assert sorted(logged.values_list("table_name", "row_id", "data")) == [
        (table, None, None) for table in TABLES[:2]
    ]
    assert logged[0].id > ChangeEvent.objects.filter(op="INSERT").latest("id").id  # in order


def writer(search_path: str) -> psycopg.Connection:
    """A writer of its own, with its own search_path (as pg_dump's restore scripts set)."""
    conn = psycopg.connect(conninfo(connection.settings_dict), autocommit=True)
    conn.execute(f"SET search_path = {search_path}")
    return conn


@pytest.mark.parametrize("search_path", ["pg_catalog", "''"], ids=["pg_catalog", "empty"])
def test_a_writer_without_public_in_its_search_path_is_logged(search_path, notifications):
    table = "public.violation_humandetections"
    with writer(search_path) as conn:
        (row_id,) = conn.execute(
            f"INSERT INTO {table}(camera_id, violation_date, violation_time, violation_image) "
            "VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg') RETURNING id"
        ).fetchone()
        conn.execute(f"UPDATE {table} SET camera_id = 3 WHERE id = %s", [row_id])
        conn.execute(f"DELETE FROM {table} WHERE id = %s", [row_id])
        conn.execute(f"TRUNCATE {table}")
    received = notifications(4)
    assert [(n["op"], n["id"]) for n in received] == [
        ("INSERT", row_id),
        ("UPDATE", row_id),
        ("DELETE", row_id),
        ("TRUNCATE", None),
    ]


def test_the_log_is_named_in_the_schema_pgtrigger_is_told_about(settings):
    """A fork whose tables live in another schema sets PGTRIGGER_SCHEMA; `makemigrations`
    then writes its triggers naming the log there."""
    model = violation_models()["violation_ppedetections"]
    sql = str(model._meta.triggers[0].compile(model).sql)
    assert 'INSERT INTO "public".violation_events ' in sql
    settings.PGTRIGGER_SCHEMA = "plant_7"
    for trigger in model._meta.triggers:
        sql = str(trigger.compile(model).sql)
        assert 'INSERT INTO "plant_7".violation_events ' in sql
        assert "INSERT INTO violation_events" not in sql


def test_a_primary_key_change_logs_a_delete_of_the_old_id_then_an_insert_of_the_new(
    notifications,
):
    model = violation_models()["violation_lotodetections"]
    row = model.objects.create(
        camera_id=4, violation_date="2025-07-28", violation_time="15:00", violation_image="/m.jpg"
    )
    notifications(1)
    new_id = row.id + 1000

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE violation_lotodetections SET id = %s, camera_id = 5 WHERE id = %s",
            [new_id, row.id],
        )

    received = notifications(3)
    assert [(n["op"], n["id"]) for n in received] == [("DELETE", row.id), ("INSERT", new_id)]
    delete, insert = ChangeEvent.objects.filter(id__in=[n["event_id"] for n in received]).order_by(
        "id"
    )
    assert (delete.op, delete.row_id, delete.data) == ("DELETE", row.id, None)
    assert (insert.op, insert.row_id, insert.data["id"], insert.data["camera_id"]) == (
        "INSERT",
        new_id,
        new_id,
        5,
    )
    assert insert.id > delete.id


def test_migrations_are_up_to_date():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
