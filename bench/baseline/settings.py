"""The recipe's settings, reduced to its WebSocket path (no login: that costs it nothing)."""

import os
import secrets

SECRET_KEY = os.environ.get("BENCH_BASELINE_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "bench.baseline.urls"
ASGI_APPLICATION = "bench.baseline.asgi.application"
DATABASES: dict = {}
USE_TZ = True

# The recipe's channel layer: channels-redis's core layer with its defaults.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ["REDIS_URL"]],
            "prefix": os.environ.get("BENCH_BASELINE_PREFIX", "bench-baseline"),
        },
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
