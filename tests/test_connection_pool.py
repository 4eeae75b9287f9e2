"""A web process keeps its database connections (Django's pool) rather than opening one per
socket handshake: a thousand wall screens reconnecting after a deploy must not each wait
for a new PostgreSQL backend.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.conftest import grant_dashboard_view
from tests.web_client import WebClient

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 30


def sessions_started() -> int:
    """Connections PostgreSQL has accepted to this database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_socket_handshakes_reuse_the_web_processes_database_connections(daphne):
    grant_dashboard_view(get_user_model().objects.create_user("screen", password="a-long-pw-1"))
    client = WebClient(daphne.http_url)
    assert client.log_in("screen", "a-long-pw-1").status == 302
    before = sessions_started()

    # Each handshake reads the session, the user and the permissions: without a pool that
    # is a new connection (or several) per socket.
    for _ in range(SOCKETS):
        with client.open_socket(daphne.ws_url, "/ws/violations/") as socket:
            socket.ping().wait(timeout=10)  # the handshake, and its queries, are done

    opened = sessions_started() - before
    assert opened < SOCKETS / 3, f"{opened} new database connections for {SOCKETS} handshakes"
