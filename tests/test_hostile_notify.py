"""Hostile NOTIFY traffic: anyone who can connect to the database can NOTIFY our channel.

The listener uses a notification only as a wake-up call and reads events from the log,
so nothing in a payload can reach SQL, a client or a crash.
"""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import receive_json
from violations.contract import OPERATIONS, is_plain_identifier
from violations.events import InvalidNotification, parse_notification

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=50,
)
forged_fields = st.fixed_dictionaries(
    {},
    optional={
        "event_id": json_values | st.integers(min_value=-(2**70), max_value=2**70),
        "table": st.sampled_from(["auth_user", "pg_authid", "violation_events", "x; DROP"])
        | st.text(),
        "op": st.sampled_from(sorted(OPERATIONS)) | st.text(),
        "id": json_values,
        "data": json_values,
    },
)


def check(payload: str) -> None:
    """Either a plain table name and a known operation, or InvalidNotification; nothing
    else, ever."""
    try:
        table, op = parse_notification(payload)
    except InvalidNotification:
        return
    assert is_plain_identifier(table)
    assert op in OPERATIONS


@given(st.text())
def test_random_text(payload):
    check(payload)


@given(st.binary())
def test_random_bytes_as_the_server_would_decode_them(payload):
    check(payload.decode("utf-8", errors="replace"))


@given(json_values)
def test_any_json(value):
    check(json.dumps(value))


@given(forged_fields)
def test_forged_trigger_payloads(fields):
    check(json.dumps(fields))


@settings(max_examples=20)
@given(st.integers(min_value=1, max_value=200_000))
def test_deep_and_huge_payloads(depth):
    check("[" * depth + "]" * depth)
    check(json.dumps({"table": "violation_humandetections", "op": "INSERT", "pad": "x" * depth}))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_a_flood_of_garbage_notifies_leaves_the_listener_delivering(listener, open_feed, psql):
    """1,000 garbage NOTIFYs a second for 10 s, from psql; real rows still arrive, and the
    log gets a summary, not 10,000 lines."""
    feed = open_feed()
    log_before = len(listener.log())
    flood = (
        "DO $$ BEGIN FOR second IN 1..10 LOOP "
        "PERFORM pg_notify('violations_channel', "
        "  CASE WHEN n % 3 = 0 THEN md5(n::text) "
        "       WHEN n % 3 = 1 THEN json_build_object('event_id', -n, 'table', 'pg_authid')::text "
        "       ELSE json_build_object('event_id', 10^12 + n, 'table', 'auth_user')::text END) "
        "  FROM generate_series(1, 1000) n; "
        "COMMIT; PERFORM pg_sleep(1); END LOOP; END $$;"
    )
    psql(flood)
    row_id = int(
        psql(
            "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
            "violation_image) VALUES (2, current_date, '15:00', '/media/after-flood.jpg') "
            "RETURNING id;"
        )
    )
    event = receive_json(feed, timeout=30)
    assert (event["op"], event["id"]) == ("INSERT", row_id)
    assert listener.running()
    warnings = re.findall("ignored notification", listener.log()[log_before:])
    assert 1 <= len(warnings) <= 5, f"{len(warnings)} warning lines for 6,667 bad payloads"
