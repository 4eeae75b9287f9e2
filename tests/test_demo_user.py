"""The demo login `make run` creates: generated, printed once, never on a server."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command

from dashboard.access import VIEW_PERMISSION, VIEWERS_GROUP

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def viewers_group():
    """The group a dashboard migration creates (a transactional test's flush removes it)."""
    group, _ = Group.objects.get_or_create(name=VIEWERS_GROUP)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="dashboard", codename="view_dashboard")
    )
    return group


def create_demo_user(**options) -> str:
    from io import StringIO

    out = StringIO()
    call_command("create_demo_user", stdout=out, **options)
    return out.getvalue()


def printed_password(output: str) -> str:
    assert "password: " in output, output
    return output.split("password: ")[1].split()[0]


def test_it_refuses_without_debug(settings):
    settings.DEBUG = False  # production settings, which the suite runs on
    with pytest.raises(CommandError, match="runs only with DEBUG on"):
        create_demo_user()
    assert not get_user_model().objects.filter(username="demo").exists()


def test_the_password_is_generated_printed_once_and_works(settings):
    settings.DEBUG = True
    password = printed_password(create_demo_user())

    user = get_user_model().objects.get(username="demo")
    assert user.check_password(password)
    assert len(password) >= 16
    assert user.has_perm(VIEW_PERMISSION)  # through the viewers group
    assert not user.is_staff
    assert not user.is_superuser

    again = create_demo_user()
    assert password not in again
    assert "password printed when it was created" in again
    assert "changepassword demo" in again
    user.refresh_from_db()
    assert user.check_password(password)  # not reset behind the user's back


def test_every_new_demo_user_gets_a_new_password(settings):
    settings.DEBUG = True
    first = printed_password(create_demo_user())
    get_user_model().objects.filter(username="demo").delete()
    second = printed_password(create_demo_user())
    assert first != second


def test_without_the_viewers_group_it_says_to_migrate_and_creates_nobody(settings, viewers_group):
    settings.DEBUG = True
    viewers_group.delete()
    with pytest.raises(CommandError, match=r"run `manage\.py migrate` first"):
        create_demo_user()
    assert not get_user_model().objects.filter(username="demo").exists()
