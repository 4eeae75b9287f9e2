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
def test_every_table_has_a_statement_trigger_with_transition_tables_per_operation(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_manipulation, action_timing, action_orientation, "
            "action_reference_old_table, action_reference_new_table "
            "FROM information_schema.triggers WHERE event_object_table = %s",
            [table],
        )
        rows = cursor.fetchall()
    assert sorted(rows) == [
        ("DELETE", "AFTER", "STATEMENT", "old_rows", None),
        ("INSERT", "AFTER", "STATEMENT", None, "new_rows"),
        ("UPDATE", "AFTER", "STATEMENT", "old_rows", "new_rows"),
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
    assert notifications(3) == [{"table": table, "op": op} for op in ("INSERT", "UPDATE", "DELETE")]
    # The event log holds the row as each statement left it.
    logged = list(ChangeEvent.objects.order_by("id"))
    assert [(e.table_name, e.op, e.row_id) for e in logged] == [
        (table, op, row_id) for op in ("INSERT", "UPDATE", "DELETE")
    ]
    assert logged[0].data["camera_id"] == 2
    assert logged[1].data["camera_id"] == 3
    assert logged[2].data is None


def test_a_row_far_over_the_notify_limit_still_inserts_and_notifies(notifications):
    model = violation_models()["violation_ppedetections"]
    row = model.objects.create(
        camera_id=1,
        violation_date="2025-07-28",
        violation_time="15:00",
        violation_image="/media/" + "é" * 20_000,  # 40 kB of UTF-8
    )
    assert notifications(1) == [{"table": "violation_ppedetections", "op": "INSERT"}]
    assert ChangeEvent.objects.get(row_id=row.id).data["violation_image"] == (
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
        assert names == [
            "notify_violation_insert",
            "notify_violation_update",
            "notify_violation_delete",
            "notify_violation_truncate",
        ]


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
    assert sorted((n["table"], n["op"]) for n in received) == [
        (table, "TRUNCATE") for table in TABLES[:2]
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
    assert [n["op"] for n in notifications(4)] == ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
    assert list(ChangeEvent.objects.order_by("id").values_list("op", "row_id")) == [
        ("INSERT", row_id),
        ("UPDATE", row_id),
        ("DELETE", row_id),
        ("TRUNCATE", None),
    ]


def test_the_log_is_named_in_the_schema_pgtrigger_is_told_about(settings):
    """A fork whose tables live in another schema sets PGTRIGGER_SCHEMA; `makemigrations`
    then writes its triggers naming the log there."""
    model = violation_models()["violation_ppedetections"]
    for trigger in model._meta.triggers:
        assert 'INSERT INTO "public".violation_events ' in str(trigger.compile(model).sql)
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

    assert notifications(2) == [{"table": "violation_lotodetections", "op": "UPDATE"}]
    _, delete, insert = ChangeEvent.objects.order_by("id")
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


def insert_rows_sql(table: str, ids: list[int]) -> str:
    values = ", ".join(f"({i}, 2, '2025-07-28', '15:00:00', '/media/{i}.jpg')" for i in ids)
    return (
        f"INSERT INTO {table}(id, camera_id, violation_date, violation_time, violation_image) "
        f"VALUES {values}"
    )


def logged_events() -> list[tuple[str, int | None, int | None]]:
    """(op, row id, the id in data) of every logged event, in log order."""
    return [(e.op, e.row_id, e.data and e.data["id"]) for e in ChangeEvent.objects.order_by("id")]


def test_one_statement_logs_its_rows_in_statement_order_and_notifies_once(notifications):
    """One INSERT … SELECT into the log per statement: rows keep the order the statement
    wrote them in (not id order), and all carry the transaction's time."""
    ids = [30, 10, 20]
    with connection.cursor() as cursor:
        cursor.execute(insert_rows_sql(TABLES[0], ids))
    assert notifications(2) == [{"table": TABLES[0], "op": "INSERT"}]
    assert logged_events() == [("INSERT", i, i) for i in ids]
    assert len(set(ChangeEvent.objects.values_list("created_at", flat=True))) == 1


def test_a_transaction_of_many_statements_sends_one_notification_per_table_and_operation(
    notifications,
):
    """PostgreSQL drops a repeated NOTIFY within a transaction: the payload names no event,
    so a camera script's 50 INSERTs in one transaction are one wake-up, and 50 events."""
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(1, 51):
            cursor.execute(insert_rows_sql(TABLES[1], [i]))
        cursor.execute(f"UPDATE {TABLES[1]} SET camera_id = 3 WHERE id <= 2")
        cursor.execute(insert_rows_sql(TABLES[2], [1]))
    assert notifications(4) == [
        {"table": TABLES[1], "op": "INSERT"},
        {"table": TABLES[1], "op": "UPDATE"},
        {"table": TABLES[2], "op": "INSERT"},
    ]
    assert [op for op, _, _ in logged_events()] == ["INSERT"] * 50 + ["UPDATE"] * 2 + ["INSERT"]


def test_a_statement_that_changes_no_row_logs_and_sends_nothing(notifications):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLES[0]} SET camera_id = 1 WHERE false")
        cursor.execute(f"DELETE FROM {TABLES[0]} WHERE false")
        cursor.execute(f"INSERT INTO {TABLES[0]} SELECT * FROM {TABLES[0]} WHERE false")
    assert notifications(1) == []
    assert ChangeEvent.objects.count() == 0


def test_an_update_moving_several_ids_logs_what_a_client_needs_to_match_the_table(
    notifications,
):
    """Old and new rows cannot be paired, ids can: every id taken away is a DELETE (first),
    then, in row order, an id that was there is an UPDATE and a new one an INSERT. A
    client applying them by id holds exactly what the table holds."""
    table = TABLES[2]
    with connection.cursor() as cursor:
        cursor.execute(insert_rows_sql(table, [1, 2, 3, 4]))
        notifications(1)
        ChangeEvent.objects.all().delete()
        # 1 and 3 move to new ids, 2 keeps its id, 4 is not touched: one statement.
        cursor.execute(
            f"UPDATE {table} SET camera_id = id, id = CASE id WHEN 1 THEN 101 WHEN 3 THEN 103 "
            "ELSE id END WHERE id <= 3"
        )
        cursor.execute(f"SELECT id, camera_id FROM {table}")
        holds = dict(cursor.fetchall())
    assert notifications(1) == [{"table": table, "op": "UPDATE"}]
    events = logged_events()
    assert sorted(events[:2]) == [("DELETE", 1, None), ("DELETE", 3, None)]
    assert sorted(events[2:]) == [("INSERT", 101, 101), ("INSERT", 103, 103), ("UPDATE", 2, 2)]
    # Replaying the events by id gives the table.
    replayed: dict[int, int] = dict.fromkeys((1, 2, 3, 4), 2)
    for event in ChangeEvent.objects.order_by("id"):
        if event.op == "DELETE":
            del replayed[event.row_id]
        else:
            replayed[event.row_id] = event.data["camera_id"]
    assert replayed == holds == {101: 1, 2: 2, 103: 3, 4: 2}


def test_copy_logs_every_row(notifications, django_db_blocker):
    with (
        django_db_blocker.unblock(),
        psycopg.connect(conninfo(connection.settings_dict), autocommit=True) as conn,
        conn.cursor().copy(
            f"COPY {TABLES[0]} (camera_id, violation_date, violation_time, violation_image) "
            "FROM STDIN"
        ) as copy,
    ):
        for i in range(500):
            copy.write_row((i, "2025-07-28", "15:00", f"/media/copy-{i}.jpg"))
    assert notifications(2) == [{"table": TABLES[0], "op": "INSERT"}]
    images = [e.data["violation_image"] for e in ChangeEvent.objects.order_by("id")]
    assert images == [f"/media/copy-{i}.jpg" for i in range(500)]
