"""TRUNCATE and primary-key-change events, and picking the server's own client binaries:
plain functions, no servers."""

import dataclasses
import datetime
import json

import pytest

from dashboard import rendering
from devstack.postgres import choose_client
from violations.contract import OPERATIONS, Event
from violations.events import event_from_log_row

AT = datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)
TABLES = ["violation_humandetections", "violation_lotodetections", "violation_ppedetections"]


def logged(seq: int, table: str, op: str, row_id: int | None, data=None) -> Event:
    return event_from_log_row(
        {
            "seq": seq,
            "table_name": table,
            "op": op,
            "row_id": row_id,
            "data": data,
            "created_at": AT,
        }
    )


def test_a_truncate_event_has_a_null_id_and_null_data():
    event = logged(9, TABLES[0], "TRUNCATE", None)
    assert json.loads(event.to_json()) == {
        "seq": 9,
        "table": TABLES[0],
        "op": "TRUNCATE",
        "id": None,
        "data": None,
        "at": "2026-11-21T10:00:00+00:00",
    }
    assert "TRUNCATE" in OPERATIONS


def test_a_truncate_refreshes_its_table_and_plays_no_sound():
    events = [logged(9, TABLES[0], "TRUNCATE", None), logged(10, TABLES[2], "TRUNCATE", None)]
    assert rendering.tables_to_refresh(events, TABLES) == [TABLES[0], TABLES[2]]
    assert rendering.inserted_tables(events) == []


def test_a_primary_key_change_refreshes_its_table_once():
    events = [
        logged(11, TABLES[1], "DELETE", 4),
        logged(12, TABLES[1], "INSERT", 104, {"id": 104}),
    ]
    assert rendering.tables_to_refresh(events, TABLES) == [TABLES[1]]
    assert rendering.inserted_tables(events) == []  # a row moved: no new violation


def test_an_insert_in_another_transaction_than_a_delete_still_sounds():
    deleted = logged(11, TABLES[1], "DELETE", 4)
    inserted = dataclasses.replace(
        logged(12, TABLES[1], "INSERT", 5, {"id": 5}), at="2026-11-21T10:00:01+00:00"
    )
    elsewhere = logged(13, TABLES[0], "INSERT", 6, {"id": 6})
    assert rendering.inserted_tables([deleted, inserted, elsewhere]) == [TABLES[0], TABLES[1]]


@pytest.mark.parametrize(
    ("candidates", "server_major", "chosen"),
    [
        ({"/usr/bin/pg_dump": 15, "/venv/pg_dump": 18}, 15, "/usr/bin/pg_dump"),
        ({"/usr/bin/pg_dump": 15, "/venv/pg_dump": 18}, 18, "/venv/pg_dump"),
        # No exact match: the oldest newer client (a client reads older servers only).
        ({"/a/pg_dump": 15, "/b/pg_dump": 17, "/c/pg_dump": 18}, 16, "/b/pg_dump"),
    ],
)
def test_the_servers_own_client_is_chosen(candidates, server_major, chosen):
    assert choose_client(candidates, server_major) == chosen


def test_no_client_new_enough_says_what_was_found():
    with pytest.raises(
        LookupError, match=r"no client for PostgreSQL 18; found: /usr/bin/pg_dump \(15\)"
    ):
        choose_client({"/usr/bin/pg_dump": 15}, 18)
