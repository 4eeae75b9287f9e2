"""violations.events: how a NOTIFY payload becomes (or does not become) an event."""

import datetime
import decimal
import json
import uuid

import pytest

from violations.events import (
    ChangeHint,
    InvalidHint,
    build_event,
    confirmed_events,
    ids_by_table,
    json_value,
    parse_hint,
)

TABLES = {"violation_humandetections", "violation_ppedetections"}


def hint_payload(**fields) -> str:
    return json.dumps({"table": "violation_humandetections", "op": "INSERT", "id": 7} | fields)


def test_a_trigger_payload_parses_into_a_hint():
    hint = parse_hint(hint_payload(), TABLES)
    assert hint == ChangeHint("violation_humandetections", "INSERT", 7)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("garbage", "not JSON"),
        ("", "not JSON"),
        ("[1]", "not a JSON object"),
        ("null", "not a JSON object"),
        (hint_payload(table="auth_user"), "unknown table 'auth_user'"),
        (hint_payload(table="pg_authid"), "unknown table"),
        (hint_payload(table=["violation_humandetections"]), "unknown table"),
        (hint_payload(op="TRUNCATE"), "unknown operation"),
        (hint_payload(op="insert"), "unknown operation"),
        (hint_payload(id=0), "not a positive bigint"),
        (hint_payload(id=-3), "not a positive bigint"),
        (hint_payload(id=2**63), "not a positive bigint"),
        (hint_payload(id=1.5), "not a positive bigint"),
        (hint_payload(id="7"), "not a positive bigint"),
        (hint_payload(id=True), "not a positive bigint"),
        (hint_payload(id=None), "not a positive bigint"),
        ('{"table": "violation_humandetections", "op": "INSERT"}', "not a positive bigint"),
        ("[" * 100_000, "too long"),
        ("[" * 1000, "not JSON"),
    ],
)
def test_payloads_that_are_not_hints_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(InvalidHint, match=reason):
        parse_hint(payload, TABLES)


def test_extra_payload_fields_are_ignored_not_trusted():
    hint = parse_hint(hint_payload(data={"camera_id": 666}), TABLES)
    assert hint == ChangeHint("violation_humandetections", "INSERT", 7)


def test_ids_are_grouped_by_table_once_each_in_first_seen_order():
    hints = [
        ChangeHint("a", "INSERT", 3),
        ChangeHint("b", "INSERT", 1),
        ChangeHint("a", "UPDATE", 3),
        ChangeHint("a", "INSERT", 2),
    ]
    assert ids_by_table(hints) == {"a": [3, 2], "b": [1]}


def test_values_become_json():
    assert json_value(datetime.date(2025, 7, 28)) == "2025-07-28"
    assert json_value(datetime.time(15, 0, 1)) == "15:00:01"
    moment = datetime.datetime(2025, 7, 28, 15, 0, tzinfo=datetime.UTC)
    assert json_value(moment) == "2025-07-28T15:00:00+00:00"
    assert json_value(decimal.Decimal("1.50")) == "1.50"
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert [json_value(v) for v in (None, True, 3, 1.5, "x")] == [None, True, 3, 1.5, "x"]
    with pytest.raises(TypeError):
        json_value(object())


def test_an_event_carries_the_row_as_read():
    row = {"id": 7, "camera_id": 2, "violation_date": datetime.date(2025, 7, 28)}
    event = build_event(ChangeHint("violation_humandetections", "INSERT", 7), row)
    assert event == {
        "table": "violation_humandetections",
        "op": "INSERT",
        "id": 7,
        "data": {"id": 7, "camera_id": 2, "violation_date": "2025-07-28"},
    }
    json.dumps(event)  # and it is JSON all the way down


def test_the_database_confirms_or_contradicts_each_hint():
    table = "violation_humandetections"
    rows = {table: {1: {"id": 1, "camera_id": 4}}}
    hints = [
        ChangeHint(table, "INSERT", 1),  # row there: confirmed
        ChangeHint(table, "UPDATE", 1),  # row there: confirmed
        ChangeHint(table, "INSERT", 2),  # row missing: forged, or deleted since
        ChangeHint(table, "DELETE", 1),  # row still there: forged
        ChangeHint(table, "DELETE", 3),  # row gone: confirmed
    ]
    events, rejected = confirmed_events(hints, rows)
    assert [(e["op"], e["id"], e["data"]) for e in events] == [
        ("INSERT", 1, {"id": 1, "camera_id": 4}),
        ("UPDATE", 1, {"id": 1, "camera_id": 4}),
        ("DELETE", 3, None),
    ]
    assert rejected == [hints[2], hints[3]]
