"""Production: refuses to start without a secret key and hosts; HTTPS-only cookies and HSTS.

Assumes a TLS-terminating reverse proxy that sets X-Forwarded-Proto (SECURITY.md).
`python manage.py check --deploy --fail-level WARNING` passes with these settings
(tests/test_settings.py runs it).
"""

from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _refuse(message: str) -> NoReturn:
    raise ImproperlyConfigured(
        f"{message} (for development use DJANGO_SETTINGS_MODULE=config.settings.local)."
    )


def _required(name: str) -> str:
    value = env(name, default="").strip()
    if not value:
        _refuse(f"{name} must be set for production settings")
    return value


SECRET_KEY = _required("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("django-insecure"):
    _refuse("DJANGO_SECRET_KEY is a development key; generate a new one for production")

ALLOWED_HOSTS = [host.strip() for host in _required("DJANGO_ALLOWED_HOSTS").split(",")]
ALLOWED_HOSTS = [host for host in ALLOWED_HOSTS if host]
# ALLOWED_HOSTS is also the WebSocket Origin allow-list (config/asgi.py): "*" would let any
# web page open a socket with a visitor's cookies.
if "*" in ALLOWED_HOSTS:
    _refuse("DJANGO_ALLOWED_HOSTS must name the hosts; '*' would accept any WebSocket Origin")

# --- HTTPS behind a reverse proxy ------------------------------------------------------------
# The proxy must set X-Forwarded-Proto itself and drop any the client sent.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Health checks come from inside (compose, the load balancer) over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Start low and raise once HTTPS is known to work everywhere: a long HSTS on a broken
# certificate locks users out (the same advice as cookiecutter-django's).
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
