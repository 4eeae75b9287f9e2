"""Violation tables written by camera systems.

Table and column names are the public recipe's, so its literal psql INSERT works:
every column but the four a camera writes has a database-level default.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.functions import Now

from violations.contract import EVENT_LOG_TABLE
from violations.triggers import notify_on_change, notify_on_truncate


class Violation(models.Model):
    """Abstract base: one concrete subclass per violation type, each with its own table.

    The NOTIFY triggers are declared here, so a new subclass plus `makemigrations` gets them.
    """

    camera_id = models.IntegerField(db_index=True)
    violation_date = models.DateField()
    violation_time = models.TimeField()
    violation_image = models.TextField(help_text="Path or URL of the camera's snapshot.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        abstract = True
        ordering = ["-violation_date", "-violation_time", "-id"]
        triggers = [*notify_on_change(), notify_on_truncate()]

    def __str__(self) -> str:
        return (
            f"{self._meta.verbose_name} #{self.pk}: camera {self.camera_id} "
            f"at {self.violation_date} {self.violation_time}"
        )


class HumanDetection(Violation):
    """A person detected inside a restricted zone."""

    class Meta(Violation.Meta):
        db_table = "violation_humandetections"
        verbose_name = "human detection"
        verbose_name_plural = "human detections"


class LotoDetection(Violation):
    """Lock-out/tag-out procedure not followed."""

    class Meta(Violation.Meta):
        db_table = "violation_lotodetections"
        verbose_name = "LOTO violation"
        verbose_name_plural = "LOTO violations"


class PpeDetection(Violation):
    """Personal protective equipment missing."""

    class Meta(Violation.Meta):
        db_table = "violation_ppedetections"
        verbose_name = "PPE violation"
        verbose_name_plural = "PPE violations"


class ChangeEvent(models.Model):
    """One committed change to a violation table: the event log.

    Written by the trigger in the change's own transaction. `seq` is the delivery order:
    empty until the active listener takes the event, then 1, 2, 3... without gaps, in the
    order the listener saw the changes commit (ids are handed out at INSERT time, so they
    are not commit order). Clients resume from the last `seq` they applied.
    """

    table_name = models.CharField(max_length=63)
    op = models.CharField(max_length=8)  # INSERT, UPDATE, DELETE or TRUNCATE
    # NULL for a TRUNCATE, which empties the whole table.
    row_id = models.BigIntegerField(null=True)
    # The row as the transaction wrote it (NULL after a DELETE): what every client receives,
    # whether live or catching up later, even if the row has changed since.
    data = models.JSONField(null=True)
    created_at = models.DateTimeField(db_default=Now())
    seq = models.BigIntegerField(null=True)

    class Meta:
        db_table = EVENT_LOG_TABLE
        # Every index is work for every write: a new event touches the primary key and the
        # pending index only (docs/decisions.md).
        indexes = [
            # The listener's work queue: events not yet delivered, in id order.
            models.Index(
                fields=["id"], name="violation_events_pending", condition=models.Q(seq=None)
            ),
            # For pruning by age: created_at grows with id, and a BRIN index costs a write
            # nothing until its pages are summarized.
            BrinIndex(fields=["created_at"], name="violation_events_created_brin"),
        ]
        constraints = [
            # Delivered events by seq (resume, catch-up); pending ones are not in it.
            models.UniqueConstraint(
                fields=["seq"],
                name="violation_events_seq_unique",
                condition=models.Q(seq__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        row = "" if self.row_id is None else f" #{self.row_id}"  # a TRUNCATE has no row
        return f"event {self.seq or '(pending)'}: {self.op} {self.table_name}{row}"


def violation_models() -> dict[str, type[Violation]]:
    """Every installed concrete violation model, by table name.

    The listener announces changes to these tables and no others; a fourth type added in
    any app is picked up here without being listed.
    """
    from django.apps import apps

    return {
        model._meta.db_table: model
        for model in apps.get_models()
        if issubclass(model, Violation) and not model._meta.proxy
    }
