"""pytest plugin: real PostgreSQL and Redis for the test session.

Loaded with `-p tests.live_services` so it runs before pytest-django reads the settings.
DATABASE_URL / REDIS_URL, when set, name the servers to use. When unset, this starts an
embedded PostgreSQL and a redis-server of our own: it never probes or borrows a server on
the default ports, which may be someone's real data.
"""

import os
import secrets
import tempfile
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.redis import LocalRedis

_started: list = []


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    # The suite runs the production code path (config.settings.test is production's,
    # over plain http): DEBUG off, a real key, explicit hosts.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.pop("DJANGO_DEBUG", None)
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ.pop("LISTEN_DATABASE_URL", None)
    # Our channel-layer messages stay ours even on a Redis shared with `make run`.
    os.environ["CHANNEL_LAYER_PREFIX"] = f"test{os.getpid()}"
    os.environ["DJANGO_STATIC_ROOT"] = tempfile.mkdtemp(prefix="safety-static-")

    if not os.environ.get("DATABASE_URL"):
        data_dir = Path(tempfile.mkdtemp(prefix="safety-pg-")) / "data"
        postgres = EmbeddedPostgres(data_dir, delete_on_stop=True)
        _started.append(postgres)
        os.environ["DATABASE_URL"] = postgres.url()
        early_config.stash[_services_key] = "embedded PostgreSQL"
    else:
        early_config.stash[_services_key] = "PostgreSQL from DATABASE_URL"

    if not os.environ.get("REDIS_URL"):
        redis = LocalRedis()
        _started.append(redis)
        os.environ["REDIS_URL"] = redis.url
        early_config.stash[_services_key] += ", redis-server started for the tests"
    else:
        early_config.stash[_services_key] += ", Redis from REDIS_URL"


_services_key = pytest.StashKey[str]()


def pytest_report_header(config) -> str:
    return f"services: {config.stash.get(_services_key, '?')}"


def pytest_unconfigure(config) -> None:
    while _started:
        _started.pop().stop()
