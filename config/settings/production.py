"""Production: refuses to start without a secret key and hosts; HTTPS-only cookies and HSTS.

Assumes a TLS-terminating reverse proxy that sets X-Forwarded-Proto (SECURITY.md).
`python manage.py check --deploy --fail-level WARNING` passes with these settings
(tests/test_settings.py runs it).
"""

from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import CSRF_TRUSTED_ORIGINS, FORWARDED_ALLOW_IPS, env

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


# Hosts a development machine answers to: a placeholder key is tolerated only for these.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
# Words that mark a key as an example to replace (.env.example's says "replace-me").
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "placeholder", "insecure", "example")

ALLOWED_HOSTS = [host.strip() for host in _required("DJANGO_ALLOWED_HOSTS").split(",")]
ALLOWED_HOSTS = [host for host in ALLOWED_HOSTS if host]
# ALLOWED_HOSTS also decides which Host a WebSocket's page may have (dashboard/origins.py):
# "*" would accept any, and a bare top-level domain (".com", ".") every site under it.
if "*" in ALLOWED_HOSTS:
    _refuse("DJANGO_ALLOWED_HOSTS must name the hosts; '*' would accept any WebSocket Origin")
for _host in ALLOWED_HOSTS:
    if _host.startswith(".") and "." not in _host[1:].strip("."):
        _refuse(
            f"DJANGO_ALLOWED_HOSTS entry {_host!r} is a whole top-level domain: name your "
            "host (dashboard.example.com) or your own domain (.example.com)"
        )

SECRET_KEY = _required("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("django-insecure"):
    _refuse("DJANGO_SECRET_KEY is a development key; generate a new one for production")
if any(marker in SECRET_KEY.lower() for marker in PLACEHOLDER_MARKERS) and not (
    set(ALLOWED_HOSTS) <= LOCAL_HOSTS
):
    _refuse(
        "DJANGO_SECRET_KEY is a placeholder, accepted only while DJANGO_ALLOWED_HOSTS is "
        "localhost/127.0.0.1; generate one with "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

for _origin in CSRF_TRUSTED_ORIGINS:
    if "://*." in _origin and "." not in _origin.partition("://*.")[2].strip("."):
        _refuse(f"DJANGO_CSRF_TRUSTED_ORIGINS entry {_origin!r} trusts a whole top-level domain")
if "*" in FORWARDED_ALLOW_IPS:
    _refuse("FORWARDED_ALLOW_IPS must name the proxies; '*' lets any client choose its address")

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
# Preloading is hard to undo (browsers ship the list): only when asked for.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # check --deploy's "not preloaded" warning: declining preload is this project's default.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
