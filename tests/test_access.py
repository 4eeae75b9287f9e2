"""Who may watch: the dashboard.view_dashboard permission, its group, and login throttling.

Through a real Daphne, logging in with the real form, as a wall screen would; a socket's
refusal in-process, through the application's own middleware and consumers.
"""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from dashboard.access import VIEWERS_GROUP
from devstack.ports import wait_until
from tests.conftest import LOGIN_COOLOFF_S, SCREEN_ADDRESS
from tests.in_process import handshake
from tests.web_client import WebClient, answers_in_order

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
def test_sockets_of_an_account_without_the_permission_close_with_4403(path, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    browser = Client()
    browser.force_login(make_user("visitor"))

    assert handshake(path, cookie=f"sessionid={browser.cookies['sessionid'].value}") == 4403


def test_an_anonymous_visit_is_sent_to_log_in_not_refused(daphne):
    response = WebClient(daphne.http_url).get("/")
    assert (response.status, response.location) == (302, "/accounts/login/?next=/")


@pytest.mark.django_db  # touches no row: no flush to pay for
@pytest.mark.parametrize("path", SOCKETS)
def test_anonymous_sockets_close_with_4401(path):
    # In-process; tests/test_web_servers.py has Daphne and uvicorn deliver it.
    assert handshake(path, cookie=None) == 4401


def test_a_superuser_needs_no_grant(daphne):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = logged_in(daphne, "root")

    assert client.get("/").status == 200
    with client.open_socket(daphne.ws_url, "/ws/dashboard/") as dashboard:
        assert "widget-violation_humandetections" in dashboard.recv(timeout=10)
    with client.open_socket(daphne.ws_url, "/ws/violations/") as feed:
        assert answers_in_order(feed)


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
        assert answers_in_order(feed)


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


def fail_until_locked(client: WebClient, username: str) -> None:
    """Log in as `username` with wrong passwords until the lockout answers (429)."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.log_in(username, "wrong-password").status == 200
    assert client.log_in(username, "wrong-password").status == 429


def test_failures_from_one_address_do_not_lock_the_wall_screen_out_at_another(configured_web):
    """Five wrong passwords for the wall screen's account from address A (a stranger) lock
    that pair only: the screen, at address B, logs in."""
    make_user("wall-screen")
    stranger = WebClient(configured_web.http_url, source_address="127.0.0.1")
    fail_until_locked(stranger, "wall-screen")
    assert stranger.log_in("wall-screen", PASSWORD).status == 429

    screen = WebClient(configured_web.http_url, source_address="127.0.0.4")
    assert screen.log_in("wall-screen", PASSWORD).status == 302


def test_a_wall_screens_own_address_is_never_locked_out(configured_web):
    """DJANGO_LOGIN_NEVER_LOCKOUT_IPS (here 127.0.0.3): a stranger behind the same address
    (a NAT, a guest network) failing as the screen's user cannot keep it logged out."""
    make_user("wall-screen")
    stranger = WebClient(configured_web.http_url, source_address=SCREEN_ADDRESS)
    for _ in range(settings.AXES_FAILURE_LIMIT * 2):
        refused = stranger.log_in("wall-screen", "wrong-password")
        assert refused.status == 200, refused.text
        assert "didn't match" in refused.text

    screen = WebClient(configured_web.http_url, source_address=SCREEN_ADDRESS)
    assert screen.log_in("wall-screen", PASSWORD).status == 302


def test_the_right_password_works_again_after_the_cooloff(configured_web):
    """DJANGO_LOGIN_COOLOFF_SECONDS (here 3 s; 15 minutes by default) after the last failure
    the pair is free again, and attempts during the lock do not restart it."""
    make_user("wall-screen")
    client = WebClient(configured_web.http_url, source_address="127.0.0.1")
    fail_until_locked(client, "wall-screen")
    assert client.log_in("wall-screen", PASSWORD).status == 429

    def logged_in_again() -> bool:
        return client.log_in("wall-screen", PASSWORD).status == 302

    wait_until(logged_in_again, timeout=LOGIN_COOLOFF_S + 10, what="a login after the cool-off")


@pytest.mark.parametrize(
    "path",
    ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"],
)
def test_without_email_there_is_no_password_reset(daphne, path):
    """No anonymous page promises mail that cannot be sent (a reset for a real address
    used to end in a logged traceback)."""
    assert WebClient(daphne.http_url).get(path).status == 404


@pytest.mark.parametrize("path", ["/accounts/password_change/", "/accounts/password_change/done/"])
def test_changing_a_password_needs_a_login(daphne, path):
    response = WebClient(daphne.http_url).get(path)
    assert (response.status, response.location) == (302, f"/accounts/login/?next={path}")

    make_user("officer")
    assert logged_in(daphne, "officer").get(path).status == 200


def test_with_email_password_reset_is_throttled(configured_web):
    """EMAIL_URL set (here consolemail://): the reset form is there, each client address may
    ask for PASSWORD_RESET_LIMIT_PER_HOUR links an hour, then 429; nothing logs an error."""
    make_user("officer", email="officer@example.com")
    log_start = len(configured_web.log(since_start=True))
    client = WebClient(configured_web.http_url, source_address="127.0.0.5")
    for _ in range(settings.PASSWORD_RESET_LIMIT_PER_HOUR):
        sent = client.post_form("/accounts/password_reset/", {"email": "officer@example.com"})
        assert (sent.status, sent.location) == (302, "/accounts/password_reset/done/")

    too_many = client.post_form("/accounts/password_reset/", {"email": "someone@example.com"})
    assert too_many.status == 429
    assert "Too many password reset requests" in too_many.text
    log = configured_web.log(since_start=True)[log_start:]
    assert "officer@example.com" in log  # the console backend "sent" it
    assert "ERROR" not in log
    assert "Traceback" not in log
