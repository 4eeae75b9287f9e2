"""docs/forking.md, tried: a fourth violation type, and several web processes over Redis.

The fourth type lives in an app made for the test in a temporary folder, exactly as the
guide writes it; `makemigrations` and `migrate` are the real commands, on a database of
its own, and its events go through a real listener and Daphne started with that app.
"""

import re
import subprocess
import sys
from contextlib import ExitStack

import pytest
from websockets.sync.client import connect

from devstack.postgres import psql_binary
from tests.conftest import receive_fragment, receive_json
from tests.processes import PROJECT_ROOT, Daphne, Listener
from violations.contract import NOTIFY_CHANNEL

FORKLIFT_MODELS = '''
from violations.models import Violation


class ForkliftDetection(Violation):
    """A forklift driven too fast or through a pedestrian zone."""

    class Meta(Violation.Meta):
        db_table = "violation_forkliftdetections"
        verbose_name = "forklift violation"
        verbose_name_plural = "forklift violations"
'''

FORK_SETTINGS = """
from config.settings.test import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "forklift"]  # noqa: F405
"""

INSERT = (
    "INSERT INTO violation_forkliftdetections "
    "(camera_id, violation_date, violation_time, violation_image) "
    "VALUES (9, '2025-07-28', '15:00:00', '/media/forklift.jpg') RETURNING id;"
)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


LOGGED_IN = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from dashboard.access import VIEWERS_GROUP

user = get_user_model().objects.create_user("forker")
user.groups.add(Group.objects.get(name=VIEWERS_GROUP))
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value)
"""


@pytest.fixture
def fork_env(stack_env, scratch_database_url, tmp_path) -> dict[str, str]:
    """The project plus a `forklift` app, on a database of its own, migrated."""
    app = tmp_path / "forklift"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(FORKLIFT_MODELS)
    (tmp_path / "fork_settings.py").write_text(FORK_SETTINGS)
    return stack_env | {
        "DATABASE_URL": scratch_database_url,
        "PYTHONPATH": f"{tmp_path}:{PROJECT_ROOT}",
        "DJANGO_SETTINGS_MODULE": "fork_settings",
    }


def test_a_fourth_type_in_a_new_app_is_announced_and_gets_its_own_widget(fork_env, logs, tmp_path):
    manage(fork_env, "makemigrations", "forklift")
    migration = (tmp_path / "forklift" / "migrations" / "0001_initial.py").read_text()
    assert "violation_forkliftdetections" in migration
    assert "pgtrigger.migrations.AddTrigger" in migration
    assert "pgtrigger_notify_violation_truncate_" in migration
    # (repr escapes the quotes when the SQL also holds a double quote: `"public".…`)
    assert re.search(rf"\\?'{NOTIFY_CHANNEL}\\?'", migration)
    manage(fork_env, "migrate", "-v0")
    cookie = "sessionid=" + manage(fork_env, "shell", "-c", LOGGED_IN).split()[-1]

    listener = Listener(fork_env, logs / "fork-listener.log").start()
    daphne = Daphne(fork_env, logs / "fork-daphne.log").start()
    try:
        with ExitStack() as stack:
            feed, dashboard = (
                stack.enter_context(
                    connect(
                        daphne.ws_url + path,
                        origin=daphne.http_url,
                        additional_headers={"Cookie": cookie},
                    )
                )
                for path in ("/ws/violations/", "/ws/dashboard/")
            )
            first_screen = receive_fragment(dashboard)
            assert 'id="widget-violation_forkliftdetections"' in first_screen
            assert "Forklift violations" in first_screen  # a look derived from the model

            inserted = subprocess.run(
                [psql_binary(), fork_env["DATABASE_URL"], "-qAt", "-c", INSERT],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            row_id = int(inserted.stdout)

            event = receive_json(feed, timeout=5)
            assert (event["table"], event["op"], event["id"]) == (
                "violation_forkliftdetections",
                "INSERT",
                row_id,
            )
            assert event["data"]["camera_id"] == 9
            update = receive_fragment(dashboard)
            assert 'id="widget-violation_forkliftdetections"' in update
            assert 'data-inserted="violation_forkliftdetections"' in update  # its sound plays

            # Its TRUNCATE is an event too, from a writer with pg_dump's empty search_path.
            subprocess.run(
                [
                    psql_binary(),
                    fork_env["DATABASE_URL"],
                    "-qAt",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    "SET search_path = ''; TRUNCATE public.violation_forkliftdetections;",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            event = receive_json(feed, timeout=5)
            assert (event["table"], event["op"], event["id"]) == (
                "violation_forkliftdetections",
                "TRUNCATE",
                None,
            )
    finally:
        daphne.stop()
        listener.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("listener")
def test_every_web_process_delivers_every_event_through_redis(
    daphne, stack_env, logs, psql, session_cookie
):
    second = Daphne(stack_env, logs / "second-daphne.log").start()
    try:
        headers = {"Cookie": session_cookie}
        with ExitStack() as stack:
            sockets = [
                stack.enter_context(
                    connect(
                        web.ws_url + "/ws/violations/",
                        origin=web.http_url,
                        additional_headers=headers,
                    )
                )
                for web in (daphne, second, daphne, second)
            ]
            row_id = int(
                psql(
                    "INSERT INTO violation_ppedetections(camera_id, violation_date, "
                    "violation_time, violation_image) "
                    "VALUES (4, '2025-07-28', '15:00:00', '/media/x.jpg') RETURNING id;"
                )
            )
            assert [receive_json(s, timeout=5)["id"] for s in sockets] == [row_id] * 4
    finally:
        second.stop()


def test_the_model_tested_here_is_the_one_the_guide_shows():
    guide = (PROJECT_ROOT / "docs" / "forking.md").read_text()
    assert FORKLIFT_MODELS.strip() in guide
