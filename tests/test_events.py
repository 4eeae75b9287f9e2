"""Notifications and events: plain functions, no servers."""

import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from violations.contract import (
    EVENTS_MESSAGE_TYPE,
    NOTIFY_CHANNEL,
    Event,
    listener_lock_key,
    wire_json,
)
from violations.event_log import parse_duration
from violations.events import (
    CUT_MARKER,
    MAX_DATA_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_VALUE_CHARS,
    SHORT_VALUE_CHARS,
    InvalidNotification,
    build_event,
    channel_layer_messages,
    event_from_log_row,
    parse_notification,
)

AT = datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)


def payload(**fields) -> str:
    defaults = {"table": "violation_humandetections", "op": "INSERT"}
    return json.dumps(defaults | fields)


def test_a_trigger_notification_names_a_table_and_an_operation():
    assert parse_notification(payload()) == ("violation_humandetections", "INSERT")
    # As the trigger writes it (json_build_object's spacing).
    text = '{"table" : "violation_ppedetections", "op" : "TRUNCATE"}'
    assert parse_notification(text) == ("violation_ppedetections", "TRUNCATE")


def test_nothing_else_in_a_payload_is_read():
    assert parse_notification(payload(event_id=-1, id="x", data={"x": 1})) == (
        "violation_humandetections",
        "INSERT",
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("garbage", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ("42", "not a JSON object"),
        (payload(table="x; DROP TABLE y"), "not a plain identifier"),
        (payload(table=7), "not a plain identifier"),
        (payload(table=None), "not a plain identifier"),
        (payload(op="DROP"), "op 'DROP' is not one of"),
        (payload(op=None), "op None is not one of"),
        ('{"event_id": 42}', "not a plain identifier"),
        ("[" * 100_000, "too long"),
        ("[" * 1000, "not JSON"),
    ],
)
def test_other_payloads_are_rejected_with_a_reason(text, reason):
    with pytest.raises(InvalidNotification, match=reason):
        parse_notification(text)


def test_an_event_is_the_log_entry_in_the_documented_shape():
    row = {
        "seq": 5,
        "table_name": "violation_ppedetections",
        "op": "INSERT",
        "row_id": 7,
        "data": {"id": 7, "camera_id": 2},
        "created_at": AT,
    }
    event = event_from_log_row(row)
    assert event.to_wire() == {
        "seq": 5,
        "table": "violation_ppedetections",
        "op": "INSERT",
        "id": 7,
        "data": {"id": 7, "camera_id": 2},
        "at": "2026-11-21T10:00:00+00:00",
    }
    assert json.loads(event.to_json()) == event.to_wire()
    assert Event.from_wire(event.to_wire()) == event


def test_a_delete_carries_no_data():
    event = build_event(
        seq=1, table="violation_lotodetections", op="DELETE", row_id=3, data=None, created_at=AT
    )
    assert event.data is None
    assert event.to_wire()["data"] is None


def big_event(seq: int, size: int) -> Event:
    """An event of about `size` characters of row data, in columns short enough to stay whole."""
    columns = {f"c{i}": "x" * min(size, 1000) for i in range(max(1, size // 1000))}
    return build_event(seq=seq, table="t", op="INSERT", row_id=seq, data=columns, created_at=AT)


def test_channel_layer_messages_keep_order_and_bound_their_size():
    events = [big_event(seq, 30_000) for seq in range(1, 30)]
    messages = list(channel_layer_messages(events))
    assert len(messages) > 1
    assert all(m["type"] == EVENTS_MESSAGE_TYPE for m in messages)
    assert [e["seq"] for m in messages for e in m["events"]] == list(range(1, 30))
    for message in messages:
        size = sum(len(wire_json(e)) for e in message["events"])
        assert size <= MAX_MESSAGE_BYTES or len(message["events"]) == 1


def test_small_events_share_one_message():
    events = [big_event(seq, 10) for seq in range(1, 101)]
    assert len(list(channel_layer_messages(events))) == 1
    assert list(channel_layer_messages([])) == []


def row_event(data: dict) -> dict:
    """The event for one INSERT of `data`, as it goes on the wire."""
    return build_event(
        seq=1, table="violation_humandetections", op="INSERT", row_id=1, data=data, created_at=AT
    ).to_wire()


def test_a_long_text_value_is_cut_with_a_marker_and_its_length_said():
    image = "/media/" + "x" * 1_100_000
    event = row_event({"id": 1, "camera_id": 2, "violation_image": image})
    assert event["data"]["violation_image"] == image[:MAX_VALUE_CHARS] + CUT_MARKER
    assert event["cut"] == {"violation_image": len(image)}
    assert event["data"]["camera_id"] == 2
    assert len(wire_json(event)) < 3 * MAX_VALUE_CHARS


def test_an_event_with_nothing_cut_says_nothing_about_cutting():
    event = row_event({"id": 1, "violation_image": "x" * MAX_VALUE_CHARS})
    assert event["data"]["violation_image"] == "x" * MAX_VALUE_CHARS
    assert "cut" not in event


def test_a_large_json_value_becomes_its_cut_json_text():
    event = row_event({"id": 1, "boxes": [[i, i, 10, 10] for i in range(5000)]})
    assert event["data"]["boxes"].startswith("[[0,0,10,10],[1,1,10,10]")
    assert event["data"]["boxes"].endswith(CUT_MARKER)
    assert event["cut"]["boxes"] > MAX_VALUE_CHARS


def test_a_row_of_many_long_columns_is_cut_further_largest_first():
    data = {f"note_{i:03}": "n" * (MAX_VALUE_CHARS - i) for i in range(100)}
    event = row_event(data)
    assert len(wire_json(event)) < MAX_DATA_CHARS + 1000
    assert event["data"]["note_000"] == "n" * SHORT_VALUE_CHARS + CUT_MARKER
    assert event["data"]["note_099"] == data["note_099"]  # the shortest stayed whole


values = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5000),
    st.lists(st.integers(), max_size=800),
)


@given(st.dictionaries(st.text(min_size=1, max_size=63), values, max_size=60))
def test_any_row_makes_a_bounded_event_that_cuts_only_what_it_says(data):
    event = row_event(data)
    assert len(wire_json(event)) <= MAX_DATA_CHARS + 60 * 140 + 200
    cut = event.get("cut", {})
    for column, value in data.items():
        sent = event["data"][column]
        if column in cut:
            original = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            assert cut[column] == len(original)
            assert sent.endswith(CUT_MARKER)
            assert original.startswith(sent[: -len(CUT_MARKER)])
        else:
            assert sent == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime.timedelta(days=7)),
        ("12h", datetime.timedelta(hours=12)),
        ("30m", datetime.timedelta(minutes=30)),
        ("90s", datetime.timedelta(seconds=90)),
        ("2w", datetime.timedelta(weeks=2)),
        (" 3 d ", datetime.timedelta(days=3)),
    ],
)
def test_retention_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7y", "-1d", "1.5h", "7 days"])
def test_bad_durations_say_what_is_accepted(text):
    with pytest.raises(ValueError, match=r"e\.g\. 7d, 12h"):
        parse_duration(text)


def test_the_listener_lock_is_per_channel_and_a_positive_bigint():
    key = listener_lock_key(NOTIFY_CHANNEL)
    assert 0 < key < 2**63
    assert key == listener_lock_key(NOTIFY_CHANNEL)
    assert key != listener_lock_key("other_channel")
