"""`manage.py prune_events`: retention of the event log."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from violations.event_log import head_seq
from violations.models import ChangeEvent

pytestmark = pytest.mark.django_db(transaction=True)


def logged(days_ago: float, seq: int | None) -> ChangeEvent:
    event = ChangeEvent.objects.create(
        table_name="violation_humandetections",
        op="INSERT",
        row_id=1,
        data={},
        seq=seq,
        created_at=timezone.now() - datetime.timedelta(days=days_ago),
    )
    if seq is not None:
        # Move the head with it, as the listener's numbering statement does: the session's
        # listener and Daphne are live, and a seq past the head would later be handed out
        # again, to a real event that Daphne's stream then drops as a repeat.
        with connection.cursor() as cursor:
            cursor.execute("UPDATE violation_events_head SET seq = GREATEST(seq, %s)", [seq])
    return event


def test_old_delivered_events_go_and_everything_else_stays(capsys):
    base = head_seq()
    old = logged(10, base + 1)
    recent = logged(1, base + 2)
    undelivered = logged(30, None)  # not delivered yet: never pruned, however old

    call_command("prune_events", "--older-than", "7d")

    assert set(ChangeEvent.objects.values_list("id", flat=True)) == {recent.id, undelivered.id}
    assert not ChangeEvent.objects.filter(id=old.id).exists()
    assert "Deleted 1 delivered events older than 7d." in capsys.readouterr().out


def test_seq_never_goes_back_after_the_log_is_pruned_empty():
    base = head_seq()
    logged(20, base + 1)
    with connection.cursor() as cursor:  # as the listener's numbering statement does
        cursor.execute("UPDATE violation_events_head SET seq = %s", [base + 1])
    call_command("prune_events", "--older-than", "1d")
    assert ChangeEvent.objects.count() == 0
    assert head_seq() == base + 1


def test_the_default_retention_comes_from_settings(settings):
    settings.EVENT_LOG_RETENTION = "30d"
    base = head_seq()
    logged(40, base + 1)
    logged(10, base + 2)
    call_command("prune_events")
    assert list(ChangeEvent.objects.values_list("seq", flat=True)) == [base + 2]


def test_a_bad_duration_is_a_clear_error():
    with pytest.raises(CommandError, match=r"use a number and a unit, e\.g\. 7d"):
        call_command("prune_events", "--older-than", "a week")
