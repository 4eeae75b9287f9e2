"""The dashboard owns no data; this module only gives its permission a home."""

from django.db import models


class Dashboard(models.Model):  # noqa: DJ008 (never instantiated, so never shown)
    """No table (`managed = False`): the content type that `dashboard.view_dashboard` hangs on.

    Django permissions belong to a model. Declaring the permission here lets Django create
    it the usual way (after `migrate`) and keeps it safe from `remove_stale_contenttypes`,
    which deletes permissions whose content type has no model. Putting it on a violation
    model would make the data app know about a screen. Never query this model.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_dashboard", "Can view the live dashboard and its feeds")]
