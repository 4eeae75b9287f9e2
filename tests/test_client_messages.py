"""What a client may send over a dashboard socket, and how fast (pure logic, no servers)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.client_messages import (
    MAX_MESSAGE_BYTES,
    MAX_SEQ,
    InvalidClientMessage,
    MessageTooLarge,
    Resume,
    parse_client_message,
    since_from_query,
)
from dashboard.rate_limit import TokenBucket

# The machine is shared and often busy: a slow example is not a failure.
relaxed = settings(deadline=None)


@pytest.mark.parametrize(
    ("frame", "since"),
    [
        ('{"type": "resume", "since": null}', None),
        ('{"type": "resume", "since": 0}', 0),
        ('{"type": "resume", "since": 1234}', 1234),
        (f'{{"type": "resume", "since": {MAX_SEQ}}}', MAX_SEQ),
        ('{"type": "resume", "since": 7, "extra": "ignored"}', 7),
    ],
)
def test_a_resume_message_parses_into_its_seq(frame, since):
    assert parse_client_message(frame) == Resume(since=since)


@pytest.mark.parametrize(
    "frame", ['{"type": "ping"}', '{"type": "subscribe", "tables": ["auth_user"]}', '{"type": ""}']
)
def test_a_message_of_an_unknown_type_is_ignored(frame):
    assert parse_client_message(frame) is None


@pytest.mark.parametrize(
    ("frame", "rule"),
    [
        ("", "must be JSON"),
        ("resume", "must be JSON"),
        ('{"type": "resume", "since": NaN}', "must be JSON"),
        ('{"type": "resume", "since": Infinity}', "must be JSON"),
        ('["resume", 1]', "must be a JSON object"),
        ('"resume"', "must be a JSON object"),
        ("{}", 'needs a string "type"'),
        ('{"type": 1}', 'needs a string "type"'),
        ('{"type": null}', 'needs a string "type"'),
        ('{"type": "resume"}', 'needs "since"'),
        ('{"type": "resume", "since": -1}', '"since" must be null or an integer'),
        ('{"type": "resume", "since": 1.0}', '"since" must be null or an integer'),
        ('{"type": "resume", "since": "12"}', '"since" must be null or an integer'),
        ('{"type": "resume", "since": true}', '"since" must be null or an integer'),
        ('{"type": "resume", "since": [1]}', '"since" must be null or an integer'),
        (f'{{"type": "resume", "since": {MAX_SEQ + 1}}}', '"since" must be null'),
        ("[" * 500 + "]" * 500, "must be a JSON object"),
        (b'{"type": "resume", "since": 1}', "binary frames are not accepted"),
    ],
)
def test_a_malformed_message_is_refused_with_the_rule_it_breaks(frame, rule):
    with pytest.raises(InvalidClientMessage, match=rule):
        parse_client_message(frame)


def test_the_size_limit_counts_bytes_not_characters():
    padding = '{"type": "resume", "since": 1, "pad": "'
    fits = padding + "x" * (MAX_MESSAGE_BYTES - len(padding) - 2) + '"}'
    assert len(fits.encode()) == MAX_MESSAGE_BYTES
    assert parse_client_message(fits) == Resume(since=1)

    # The same number of characters, but "é" is two bytes in UTF-8.
    too_big = padding + "é" * (MAX_MESSAGE_BYTES - len(padding) - 2) + '"}'
    with pytest.raises(MessageTooLarge, match=f"at most {MAX_MESSAGE_BYTES} bytes"):
        parse_client_message(too_big)
    with pytest.raises(MessageTooLarge):
        parse_client_message(b"x" * (MAX_MESSAGE_BYTES + 1))


def test_errors_never_quote_what_the_client_sent():
    secret = "<script>alert(1)</script>"
    for frame in (secret, json.dumps({"type": secret, "x": 1})[:-1], json.dumps([secret])):
        with pytest.raises(InvalidClientMessage) as refused:
            parse_client_message(frame)
        assert "script" not in str(refused.value)


@relaxed
@given(st.text(max_size=2000) | st.binary(max_size=2000))
def test_any_frame_either_parses_or_is_refused_with_a_clear_error(frame):
    try:
        result = parse_client_message(frame)
    except InvalidClientMessage as exc:
        error = str(exc)
        assert error.startswith(("a message", "binary frames", '"resume"', '"since"'))
    else:
        assert result is None or isinstance(result, Resume)


# JSON values only: NaN and infinities are not JSON (json.dumps would write `Infinity`,
# which the parser rightly refuses whatever else the message holds).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@relaxed
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5), json_values)
def test_any_json_object_parses_only_to_a_valid_resume(fields, since):
    message = {**fields, "type": "resume", "since": since}
    frame = json.dumps(message)
    try:
        result = parse_client_message(frame)
    except InvalidClientMessage:
        valid = since is None or (type(since) is int and 0 <= since <= MAX_SEQ)
        assert not valid or len(frame.encode()) > MAX_MESSAGE_BYTES
    else:
        assert result == Resume(since=since)


@relaxed
@given(st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_SEQ)))
def test_every_valid_resume_round_trips(since):
    assert parse_client_message(json.dumps({"type": "resume", "since": since})) == Resume(since)


# --- The feed's `?since=N` ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "since"),
    [
        (b"", None),
        (b"other=1", None),
        (b"since=0", 0),
        (b"since=42&other=x", 42),
        (b"since=007", 7),
        (b"%73ince=5", 5),  # the key percent-encoded is still the key
        (f"since={MAX_SEQ}".encode(), MAX_SEQ),
    ],
)
def test_since_in_the_query_string_is_a_seq_in_ascii_digits(query, since):
    assert since_from_query(query) == since


@pytest.mark.parametrize(
    "query",
    [
        "since=²".encode(),  # str.isdigit() says yes, int() raises: the old HTTP 500
        b"since=%C2%B2",  # the same, percent-encoded
        b"since=\xb2",  # the same byte as latin-1
        "since=١٢".encode(),  # Arabic-Indic digits: int() would take them
        b"since=%D9%A1%D9%A2",
        "since=\uff11\uff12".encode(),  # fullwidth digits
        b"since=-1",
        b"since=+1",
        b"since=1.0",
        b"since=%201",
        b"since=1e3",
        b"since=0x10",
        b"since=",
        b"since",
        b"since=1&since=2",
        f"since={MAX_SEQ + 1}".encode(),
        b"since=" + b"9" * 5000,  # int() would raise on over 4300 digits
    ],
)
def test_anything_else_as_since_is_refused(query):
    with pytest.raises(InvalidClientMessage, match='"since"'):
        since_from_query(query)


@relaxed
@given(st.binary(max_size=200) | st.text(max_size=60).map(lambda t: ("since=" + t).encode()))
def test_any_query_string_gives_a_seq_none_or_a_refusal(query):
    try:
        since = since_from_query(query)
    except InvalidClientMessage as exc:
        error = str(exc)
        assert error.startswith('"since"')
    else:
        assert since is None or 0 <= since <= MAX_SEQ


def test_a_number_in_a_message_is_ascii_digits_whichever_json_scanner_reads_it(monkeypatch):
    """json's pure-Python scanner (used where the C one is missing) reads any Unicode digit."""
    monkeypatch.setattr(json.scanner, "make_scanner", json.scanner.py_make_scanner)
    assert json.JSONDecoder().decode('{"since": 1\u0662}') == {"since": 12}  # it lets it in

    with pytest.raises(InvalidClientMessage, match="must be JSON"):
        parse_client_message('{"type": "resume", "since": 1\u0662}')


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_token_bucket_allows_a_burst_then_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(capacity=10, rate=1.0, clock=clock)

    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]

    clock.now += 2.5  # two and a half tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]

    clock.now += 3600  # never more than the capacity
    assert sum(bucket.take() for _ in range(20)) == 10


def test_a_refused_take_spends_nothing():
    clock = FakeClock()
    bucket = TokenBucket(capacity=1, rate=1.0, clock=clock)
    assert bucket.take()
    for _ in range(100):
        assert not bucket.take()
    clock.now += 1
    assert bucket.take()


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_a_bucket_that_could_never_allow_anything_is_refused(capacity, rate):
    with pytest.raises(ValueError, match="capacity of at least 1 and a positive rate"):
        TokenBucket(capacity, rate)
