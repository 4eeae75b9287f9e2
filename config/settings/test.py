"""The test suite: production settings, served over plain http on 127.0.0.1.

Only what plain http forces is relaxed; everything else (DEBUG off, a real key, explicit
hosts, hashed static files) is production's, so the suite exercises the deployed code path.
"""

from config.settings.production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# Hashing passwords slowly protects nothing in a test database.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
