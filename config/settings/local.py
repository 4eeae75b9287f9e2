"""Development: DEBUG on, a development key, localhost only. Never deploy this module.

Without DATABASE_URL, manage.py uses the embedded PostgreSQL that `make run` started
(devstack), so `manage.py createsuperuser`, `shell` or `changepassword` just work beside
it.
"""

import os

if not os.environ.get("DATABASE_URL"):
    try:
        from devstack.local import NOT_RUNNING, postgres_data_dir, running_embedded_url
    except ImportError:  # no devstack here: DATABASE_URL is required, as base.py says
        pass
    else:
        from django.core.exceptions import ImproperlyConfigured

        _embedded = running_embedded_url(postgres_data_dir())
        if _embedded is None:
            raise ImproperlyConfigured(NOT_RUNNING)
        os.environ["DATABASE_URL"] = _embedded

from config.settings.base import *  # noqa: F403
from config.settings.base import STORAGES, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-development-only-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Static files straight from static/ (whitenoise's runserver_nostatic plus Daphne's
# staticfiles handler), so no collectstatic is needed while developing.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
