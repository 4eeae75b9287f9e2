"""Settings shared by every environment, read once from the environment (django-environ).

Not used directly: `config.settings.local` (make run, manage.py) and
`config.settings.production` (Daphne, Docker) build on it and decide DEBUG, the secret key
and the hosts. Every setting a deployment may change is an environment variable named in
the README; `.env` in the project root is read too when present.
"""

import datetime
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "pgtrigger",
    "django_htmx",
    "csp",
    "axes",
    "violations",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A pool per process: every socket handshake and page needs the database, and a new
# PostgreSQL connection costs ~10 ms, which a thousand wall screens reconnecting after a
# deploy would queue behind. (Django's pooling; persistent connections are not safe under
# ASGI, where requests run in threads of their own.)
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1,
    "max_size": env.int("DATABASE_POOL_SIZE", default=10),
    "timeout": 10,
}  # CONN_HEALTH_CHECKS makes the pool replace a dropped connection rather than hand it out.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The listener holds one long-lived LISTEN connection. Behind a transaction-pooling
# pgbouncer LISTEN does not work, so LISTEN_DATABASE_URL can point it straight at PostgreSQL.
LISTEN_DATABASE = (
    env.db("LISTEN_DATABASE_URL")
    if env("LISTEN_DATABASE_URL", default="")
    else DATABASES["default"]
)

# How long delivered events stay in the log (`manage.py prune_events`): the furthest back a
# reconnecting client can resume from; an older one gets a full refresh instead.
EVENT_LOG_RETENTION = env("EVENT_LOG_RETENTION", default="7d")

# --- Channel layer ---------------------------------------------------------------------------
# Redis is how separate web and listener processes talk. The pub/sub layer was chosen by
# measurement (README, "Channel layer"): one PUBLISH per event whatever the number of
# consumers, and no per-channel capacity that silently drops a burst.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # Several projects (or a test run beside `make run`) may share one Redis.
                "prefix": env("CHANNEL_LAYER_PREFIX", default="safety"),
            },
        }
    }
else:
    # Only reaches consumers in the same process: fine for tests of one process, not for a
    # listener running beside the web server.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Liveness -------------------------------------------------------------------------------
# Not environment variables: protocol constants a deployment has no reason to change (tests
# may). Every socket sent nothing for this long is sent a heartbeat (README, "heartbeat");
# a page that hears nothing, not even a heartbeat, for DASHBOARD_STALE_SECONDS (two
# missed heartbeats and some slack) says it is stale and reconnects.
DASHBOARD_HEARTBEAT_SECONDS = 4.0
DASHBOARD_STALE_SECONDS = 10.0

# --- Socket caps and revocation (dashboard.socket_caps, dashboard.revocation) --------------
# Open sockets a login session and a user may hold, counted across web processes in Redis:
# a browser with a few tabs, and a wall-screen account shared by many screens.
DASHBOARD_SOCKETS_PER_SESSION = env.int("DASHBOARD_SOCKETS_PER_SESSION", default=20)
DASHBOARD_SOCKETS_PER_USER = env.int("DASHBOARD_SOCKETS_PER_USER", default=200)
# How long a crashed process's sockets still count; how often sockets' access is rechecked.
DASHBOARD_SOCKET_LEASE_SECONDS = env.float("DASHBOARD_SOCKET_LEASE_SECONDS", default=30.0)
DASHBOARD_ACCESS_CHECK_SECONDS = env.float("DASHBOARD_ACCESS_CHECK_SECONDS", default=5.0)

# --- Auth ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes) --------------------------------------------------------
# Failed logins are counted per (username, client address): after AXES_FAILURE_LIMIT that
# pair is refused, even with the right password, until AXES_COOLOFF_TIME has passed since
# the last failure or an administrator runs `manage.py axes_reset_username <name>`.
# Counting the pair (not the username alone) keeps an attacker elsewhere from locking a
# wall screen out; the short cool-off keeps a lock from lasting once the guessing stops.
# The address is the TCP peer's, or X-Forwarded-For's from a FORWARDED_ALLOW_IPS proxy.
# Leave AXES_LOCKOUT_CALLABLE and AXES_USERNAME_CALLABLE unset: under ASGI django-axes 8.3
# calls them with the wrong arguments (jazzband/django-axes#1494).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before checking it
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = datetime.timedelta(
    seconds=env.int("DJANGO_LOGIN_COOLOFF_SECONDS", default=15 * 60)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lock do not restart it: guessing on cannot keep an account locked forever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Wall screens' own addresses (exact IPs): never locked out, so a stranger sharing one (a
# NAT, a guest network) cannot keep a screen logged out by failing as its user there.
AXES_IP_WHITELIST = env.list("DJANGO_LOGIN_NEVER_LOCKOUT_IPS", default=[])
AXES_NEVER_LOCKOUT_WHITELIST = True

# --- Proxies and origins -------------------------------------------------------------------
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or networks,
# uvicorn's syntax; config/asgi.py applies it under Daphne and uvicorn alike). Empty: the
# client address is the TCP peer's and the headers are ignored.
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=[])
# Pages on these origins (scheme://host[:port], or https://*.example.com) may post forms
# and open WebSockets besides the page's own origin (dashboard/origins.py).
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Email ---------------------------------------------------------------------------------
# Password reset by email exists only when EMAIL_URL names a way to send (django-environ's
# syntax: smtp+tls://user:password@host:587, consolemail://); without it, no anonymous page
# sends or promises mail (config/urls.py).
EMAIL_CONFIGURED = bool(env("EMAIL_URL", default=""))
if EMAIL_CONFIGURED:
    vars().update(env.email_url("EMAIL_URL"))
    DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="webmaster@localhost")
# Requests for a reset link per client address and hour, and per email address and hour.
PASSWORD_RESET_LIMIT_PER_HOUR = 3

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files ----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names and precompressed files; local.py swaps in the plain storage so
        # `make run` needs no collectstatic.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")

# --- Content-Security-Policy (django-csp) -----------------------------------------------
# No inline script or style anywhere: everything is a static file from this origin.
# 'self' in connect-src covers the page's own ws:// and wss:// URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "media-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Logging -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "violations": {"level": env("VIOLATIONS_LOG_LEVEL", default="INFO")},
        "dashboard": {"level": "INFO"},
    },
}
