"""Production settings, as a server would load them: each case is its own Python process.

The environment is built from nothing (no DJANGO_* leaking in from the test run), so a
setting that only works because the suite set something cannot pass here.
"""

import os
import secrets
import shutil
import subprocess
import sys

import pytest

from tests.processes import PROJECT_ROOT

pytestmark = pytest.mark.slow

PRODUCTION = "config.settings.production"
PLACEHOLDER = "DJANGO_SECRET_KEY is a placeholder"


def env_example_value(name: str) -> str:
    """`name`'s value in .env.example, the file the compose quick start starts from."""
    for line in (PROJECT_ROOT / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.partition("=")[2]
    raise AssertionError(f"{name} is not in .env.example")


ENV_EXAMPLE_KEY = env_example_value("DJANGO_SECRET_KEY")


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
        ({"DJANGO_SECRET_KEY": ENV_EXAMPLE_KEY}, PLACEHOLDER),
        ({"DJANGO_SECRET_KEY": "change-me"}, PLACEHOLDER),
        ({"DJANGO_SECRET_KEY": "Placeholder-" + "x" * 50}, PLACEHOLDER),
        ({"DJANGO_SECRET_KEY": "an-insecure-key-" + "x" * 50}, PLACEHOLDER),
        (
            {"DJANGO_SECRET_KEY": ENV_EXAMPLE_KEY, "DJANGO_ALLOWED_HOSTS": "localhost,10.0.0.5"},
            PLACEHOLDER,
        ),
        ({"DJANGO_ALLOWED_HOSTS": "dashboard.example.com,.com"}, "'.com' is a whole top-level"),
        ({"DJANGO_ALLOWED_HOSTS": "."}, "'.' is a whole top-level"),
        ({"DJANGO_ALLOWED_HOSTS": ".org."}, "'.org.' is a whole top-level"),
        ({"DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.com"}, "trusts a whole top-level domain"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1,*"}, "FORWARDED_ALLOW_IPS must name the proxies"),
    ],
    ids=[
        *("no-key", "blank-key", "dev-key", "no-hosts", "empty-hosts", "wildcard-host"),
        *("env-example-key", "change-me-key", "placeholder-key", "insecure-key"),
        "env-example-key-on-a-lan-address",
        *("tld-host", "dot-host", "tld-host-with-trailing-dot", "tld-trusted-origin"),
        "any-proxy",
    ],
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


@pytest.mark.parametrize("hosts", ["localhost,127.0.0.1", "localhost", "127.0.0.1,[::1]"])
def test_a_placeholder_key_is_tolerated_while_only_this_machine_is_served(hosts):
    """`docker compose up` from .env.example, published on 127.0.0.1 only, still starts."""
    env = production_env(DJANGO_SECRET_KEY=ENV_EXAMPLE_KEY, DJANGO_ALLOWED_HOSTS=hosts)
    assert setting("SECRET_KEY", env) == ENV_EXAMPLE_KEY


def test_a_subdomain_wildcard_of_your_own_domain_is_accepted():
    env = production_env(DJANGO_ALLOWED_HOSTS=".example.com")
    assert setting("ALLOWED_HOSTS", env) == "['.example.com']"


def test_hsts_preload_is_opt_in():
    """Preloading is hard to undo, so only DJANGO_SECURE_HSTS_PRELOAD asks for it; check
    --deploy passes either way (test_check_deploy_passes_with_production_settings)."""
    assert setting("SECURE_HSTS_PRELOAD", production_env()) == "False"
    assert setting("SECURE_HSTS_PRELOAD", production_env(DJANGO_SECURE_HSTS_PRELOAD="on")) == "True"
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(DJANGO_SECURE_HSTS_PRELOAD="on"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_quick_start_writes_a_fresh_key_and_never_overwrites(tmp_path):
    """README's `python3 scripts/new_env.py` (make env): .env is .env.example with a new
    random key, which production settings accept for a real host name."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(PROJECT_ROOT / "scripts" / "new_env.py", tmp_path / "scripts")
    shutil.copy2(PROJECT_ROOT / ".env.example", tmp_path)
    script = [str(tmp_path / "scripts" / "new_env.py")]
    clean_env = {"PATH": os.environ["PATH"]}

    assert run(script, clean_env).returncode == 0
    written = (tmp_path / ".env").read_text()
    key = next(line for line in written.splitlines() if line.startswith("DJANGO_SECRET_KEY="))
    key = key.partition("=")[2]
    assert key != ENV_EXAMPLE_KEY
    assert len(key) >= 50
    assert written.replace(key, ENV_EXAMPLE_KEY) == (tmp_path / ".env.example").read_text()

    again = run(script, clean_env)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert (tmp_path / ".env").read_text() == written

    env = production_env(DJANGO_SECRET_KEY=key, DJANGO_ALLOWED_HOSTS="dashboard.example.com")
    assert setting("SECRET_KEY", env) == key
