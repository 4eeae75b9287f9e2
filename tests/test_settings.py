"""Production settings, as a server would load them: each case is its own Python process.

The environment is built from nothing (no DJANGO_* leaking in from the test run), so a
setting that only works because the suite set something cannot pass here.
"""

import os
import secrets
import subprocess
import sys

import pytest

from tests.processes import PROJECT_ROOT

PRODUCTION = "config.settings.production"


def production_env(**overrides: str | None) -> dict[str, str]:
    """What a deployment sets: a real key, its host name, its database. None removes one."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": PRODUCTION,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "dashboard.example.com",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def setting(name: str, env: dict[str, str]) -> str:
    result = run(
        [
            "-c",
            f"import django; django.setup(); from django.conf import settings; "
            f"print(settings.{name})",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_deploy_passes_with_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_debug_is_switched_on():
    """The check above has teeth: the same run with DEBUG on fails."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(DJANGO_DEBUG="true"),
    )

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # "You should not have DEBUG set to True"


def test_debug_is_off_unless_asked_for():
    assert setting("DEBUG", production_env()) == "False"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_SECRET_KEY": "  "}, "DJANGO_SECRET_KEY must be set"),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-development-only-key"},
            "DJANGO_SECRET_KEY is a development key",
        ),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS must be set"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS must be set"),
        ({"DJANGO_ALLOWED_HOSTS": "dashboard.example.com,*"}, "'*' would accept any WebSocket"),
    ],
    ids=["no-key", "blank-key", "dev-key", "no-hosts", "empty-hosts", "wildcard-host"],
)
def test_the_server_refuses_to_start_without_a_real_key_and_hosts(overrides, message):
    # Daphne, as a deployment starts it: config.asgi defaults to production settings.
    env = production_env(DJANGO_SETTINGS_MODULE=None, **overrides)
    result = run(["-m", "daphne", "-b", "127.0.0.1", "-p", "0", "config.asgi:application"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_hosts_are_read_as_a_comma_separated_list():
    env = production_env(DJANGO_ALLOWED_HOSTS=" dashboard.example.com , 10.0.0.5 ,")
    assert setting("ALLOWED_HOSTS", env) == "['dashboard.example.com', '10.0.0.5']"


def test_health_checks_over_plain_http_are_not_redirected_to_https():
    env = production_env(DJANGO_ALLOWED_HOSTS="localhost")
    result = run(
        [
            "-c",
            "import django; django.setup(); from django.test import Client; "
            "c = Client(SERVER_NAME='localhost'); "
            "print(c.get('/healthz').status_code, c.get('/accounts/login/').status_code)",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "301"]
