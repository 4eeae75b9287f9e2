"""Notifications and events: plain functions, no servers."""

import datetime
import json

import pytest

from violations.event_log import listener_lock_key, parse_duration
from violations.events import (
    EVENTS_MESSAGE_TYPE,
    MAX_MESSAGE_BYTES,
    InvalidNotification,
    build_event,
    channel_layer_messages,
    encode_event,
    event_from_log_row,
    parse_notification,
)
from violations.notify import NOTIFY_CHANNEL

AT = datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)


def payload(**fields) -> str:
    defaults = {"event_id": 42, "table": "violation_humandetections", "op": "INSERT", "id": 7}
    return json.dumps(defaults | fields)


def test_a_trigger_notification_names_its_event():
    assert parse_notification(payload()) == 42


def test_only_the_event_id_is_read_the_rest_is_not_trusted():
    assert parse_notification(payload(table="auth_user", op="DROP", data={"x": 1})) == 42


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("garbage", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ("42", "not a JSON object"),
        (payload(event_id=0), "not a positive bigint"),
        (payload(event_id=-3), "not a positive bigint"),
        (payload(event_id=2**63), "not a positive bigint"),
        (payload(event_id=1.5), "not an integer"),
        (payload(event_id="7"), "not an integer"),
        (payload(event_id=True), "not an integer"),
        (payload(event_id=None), "not an integer"),
        ('{"table": "violation_humandetections"}', "not an integer"),
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
    assert event == {
        "seq": 5,
        "table": "violation_ppedetections",
        "op": "INSERT",
        "id": 7,
        "data": {"id": 7, "camera_id": 2},
        "at": "2026-11-21T10:00:00+00:00",
    }
    assert json.loads(encode_event(event)) == event


def test_a_delete_carries_no_data():
    event = build_event(
        seq=1, table="violation_lotodetections", op="DELETE", row_id=3, data=None, created_at=AT
    )
    assert event["data"] is None


def big_event(seq: int, size: int) -> dict:
    return build_event(
        seq=seq, table="t", op="INSERT", row_id=seq, data={"blob": "x" * size}, created_at=AT
    )


def test_channel_layer_messages_keep_order_and_bound_their_size():
    events = [big_event(seq, 100_000) for seq in range(1, 8)]
    messages = list(channel_layer_messages(events))
    assert len(messages) > 1
    assert all(m["type"] == EVENTS_MESSAGE_TYPE for m in messages)
    assert [e["seq"] for m in messages for e in m["events"]] == list(range(1, 8))
    for message in messages:
        size = sum(len(encode_event(e)) for e in message["events"])
        assert size <= MAX_MESSAGE_BYTES or len(message["events"]) == 1


def test_small_events_share_one_message():
    events = [big_event(seq, 10) for seq in range(1, 101)]
    assert len(list(channel_layer_messages(events))) == 1
    assert list(channel_layer_messages([])) == []


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
