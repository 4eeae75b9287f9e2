"""Violation tables written by camera systems.

Table and column names are the public recipe's, so its literal psql INSERT works:
every column but the four a camera writes has a database-level default.
"""

from django.db import models
from django.db.models.functions import Now

from violations.triggers import notify_on_change


class Violation(models.Model):
    """Abstract base: one concrete subclass per violation type, each with its own table.

    The NOTIFY trigger is declared here, so a new subclass plus `makemigrations` gets it.
    """

    camera_id = models.IntegerField(db_index=True)
    violation_date = models.DateField()
    violation_time = models.TimeField()
    violation_image = models.TextField(help_text="Path or URL of the camera's snapshot.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        abstract = True
        ordering = ["-violation_date", "-violation_time", "-id"]
        triggers = [notify_on_change()]

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
