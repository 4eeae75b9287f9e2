"""The "Dashboard viewers" group, holding dashboard.view_dashboard.

Django creates permissions after all migrations have run (post_migrate), so on a fresh
database the permission does not exist yet here: it is created the way Django would
create it (same content type, codename and name), and Django's own pass later finds it
already there. Names are written out, not imported: a migration records history.
"""

from django.db import migrations

GROUP = "Dashboard viewers"
APP_LABEL = "dashboard"
MODEL = "dashboard"
CODENAME = "view_dashboard"
PERMISSION_NAME = "Can view the live dashboard and its feeds"


def create_viewers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label=APP_LABEL, model=MODEL)
    permission, _ = Permission.objects.using(db).get_or_create(
        content_type=content_type, codename=CODENAME, defaults={"name": PERMISSION_NAME}
    )
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_viewers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_viewers_group, remove_viewers_group)]
