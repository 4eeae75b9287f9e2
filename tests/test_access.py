"""Who may watch: the dashboard.view_dashboard permission, its group, and login throttling.

Through a real Daphne, logging in with the real form, as a wall screen would.
"""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from dashboard.access import VIEWERS_GROUP
from tests.web_client import WebClient, close_code, still_open

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password"
SOCKETS = ["/ws/dashboard/", "/ws/violations/"]


def make_user(username: str, **fields):
    return get_user_model().objects.create_user(username, password=PASSWORD, **fields)


def logged_in(daphne, username: str) -> WebClient:
    client = WebClient(daphne.http_url)
    response = client.log_in(username, PASSWORD)
    assert (response.status, response.location) == (302, "/"), response.text
    return client


def test_a_logged_in_account_without_the_permission_gets_a_403_saying_why(daphne):
    make_user("visitor")
    client = logged_in(daphne, "visitor")

    response = client.get("/")

    assert response.status == 403
    assert "may not view the dashboard" in response.text
    assert "Dashboard viewers" in response.text
    assert 'id="dashboard"' not in response.text


@pytest.mark.parametrize("path", SOCKETS)
def test_sockets_of_an_account_without_the_permission_close_with_4403(daphne, path):
    make_user("visitor")
    client = logged_in(daphne, "visitor")

    with client.open_socket(daphne.ws_url, path) as socket:
        assert close_code(socket) == 4403


def test_an_anonymous_visit_is_sent_to_log_in_not_refused(daphne):
    response = WebClient(daphne.http_url).get("/")
    assert (response.status, response.location) == (302, "/accounts/login/?next=/")


@pytest.mark.parametrize("path", SOCKETS)
def test_anonymous_sockets_close_with_4401(daphne, path):
    with WebClient(daphne.http_url).open_socket(daphne.ws_url, path) as socket:
        assert close_code(socket) == 4401


def test_a_superuser_needs_no_grant(daphne):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = logged_in(daphne, "root")

    assert client.get("/").status == 200
    with client.open_socket(daphne.ws_url, "/ws/dashboard/") as dashboard:
        assert "widget-violation_humandetections" in dashboard.recv(timeout=10)
    with client.open_socket(daphne.ws_url, "/ws/violations/") as feed:
        assert still_open(feed)


def test_the_viewers_group_from_the_migration_lets_a_non_staff_account_watch(daphne):
    # Run the data migration backwards and forwards: the group is the migration's doing.
    call_command("migrate", "dashboard", "0001", verbosity=0)
    assert not Group.objects.filter(name=VIEWERS_GROUP).exists()
    call_command("migrate", "dashboard", verbosity=0)
    group = Group.objects.get(name=VIEWERS_GROUP)
    assert [p.natural_key() for p in group.permissions.all()] == [
        ("view_dashboard", "dashboard", "dashboard")
    ]

    wall_screen = make_user("wall-screen")
    wall_screen.groups.add(group)
    assert not wall_screen.is_staff
    client = logged_in(daphne, "wall-screen")

    page = client.get("/")
    assert page.status == 200
    assert 'id="dashboard"' in page.text
    with client.open_socket(daphne.ws_url, "/ws/dashboard/") as dashboard:
        assert "widget-violation_humandetections" in dashboard.recv(timeout=10)
    with client.open_socket(daphne.ws_url, "/ws/violations/") as feed:
        assert still_open(feed)


def test_repeated_bad_logins_lock_out_even_the_right_password(daphne):
    make_user("officer-on-duty")
    make_user("colleague")
    client = WebClient(daphne.http_url)

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = client.log_in("officer-on-duty", "wrong-password")
        assert refused.status == 200
        assert "didn't match" in refused.text
    locked = client.log_in("officer-on-duty", "wrong-password")
    assert locked.status == 429
    assert "Too many failed log-in attempts" in locked.text

    right_password = client.log_in("officer-on-duty", PASSWORD)
    assert right_password.status == 429
    assert "sessionid" not in client.cookie_values
    assert client.get("/").status == 302  # still not logged in

    # The lock is on this username from this address, not on everyone here.
    assert WebClient(daphne.http_url).log_in("colleague", PASSWORD).status == 302

    # How an administrator lifts it (SECURITY.md).
    call_command("axes_reset_username", "officer-on-duty", verbosity=0)
    assert client.log_in("officer-on-duty", PASSWORD).status == 302
    assert "sessionid" in client.cookie_values
