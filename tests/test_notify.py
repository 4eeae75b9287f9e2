"""send_notify: the Python way to NOTIFY, with the checks PostgreSQL would make, made early."""

import pytest
from django.db import connection, transaction

from violations.contract import NOTIFY_CHANNEL, InvalidIdentifier, validate_identifier
from violations.notify import MAX_PAYLOAD_BYTES, NotifyError, encode_payload, send_notify


@pytest.mark.parametrize("name", [NOTIFY_CHANNEL, "_x", "a" * 63, "cam_2"])
def test_plain_identifiers_are_valid_channel_names(name):
    assert validate_identifier(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "2cams", "Violations", "a" * 64, "x;drop table y", 'x"y', "x-y", "x y", None, 5],
)
def test_anything_else_is_refused_with_the_rule(name):
    with pytest.raises(InvalidIdentifier, match=r"\^\[a-z_\]\[a-z0-9_\]\{0,62\}\$"):
        validate_identifier(name)


def test_payloads_over_the_limit_are_refused_before_reaching_postgresql():
    assert encode_payload({"id": 1}) == '{"id":1}'
    assert len(encode_payload("é" * (MAX_PAYLOAD_BYTES // 2))) == MAX_PAYLOAD_BYTES // 2
    with pytest.raises(NotifyError, match="at most 7999"):
        encode_payload("x" * 8000)
    with pytest.raises(NotifyError, match="bytes"):
        encode_payload("é" * 4000)  # 4000 characters, 8000 bytes


@pytest.fixture
def listening(django_db_blocker):
    """A second, real connection LISTENing, as the listener would."""
    import psycopg

    from violations.conninfo import conninfo

    with (
        django_db_blocker.unblock(),
        psycopg.connect(conninfo(connection.settings_dict), autocommit=True) as conn,
    ):
        conn.execute("LISTEN test_channel")

        def received() -> list[str]:
            return [n.payload for n in conn.notifies(timeout=0.5, stop_after=1)]

        yield received


@pytest.mark.django_db(transaction=True)
def test_send_notify_reaches_a_listener_on_commit(listening):
    with transaction.atomic():
        send_notify("test_channel", {"hello": "world"})
    assert listening() == ['{"hello":"world"}']


@pytest.mark.django_db(transaction=True)
def test_a_notify_in_a_rolled_back_transaction_is_never_sent(listening):
    def notify_then_fail() -> None:
        with transaction.atomic():
            send_notify("test_channel", "never")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        notify_then_fail()
    send_notify("test_channel", "after")
    assert listening() == ["after"]
