"""Test settings with caps small enough to reach and short leases (tests/test_socket_caps.py)."""

from config.settings.test import *  # noqa: F403

DASHBOARD_SOCKETS_PER_SESSION = 3
DASHBOARD_SOCKETS_PER_USER = 5
DASHBOARD_SOCKET_LEASE_SECONDS = 3.0
