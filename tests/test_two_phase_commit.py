"""A documented limit (README, "Not guaranteed"): a transaction that writes a violation
row NOTIFYs, and PostgreSQL refuses to PREPARE a transaction that has NOTIFYed.

Two-phase commit is off on the suite's servers (max_prepared_transactions = 0 makes every
PREPARE fail for that reason first), so the test starts a server of its own with it on.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import EmbeddedPostgres, pg_dump_binary, psql_binary
from tests.processes import PROJECT_ROOT

# The error README quotes, word for word.
NOTIFY_PREPARE_ERROR = "cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY"

INSERT = (
    "INSERT INTO violation_humandetections(camera_id, violation_date, violation_time, "
    "violation_image) VALUES (2, '2025-07-28', '15:00:00', '/media/x.jpg')"
)


@pytest.fixture
def two_phase_server_url(stack_env):
    """A server with prepared transactions on, holding the test database's schema."""
    folder = Path(tempfile.mkdtemp(prefix="safety-2pc-"))
    server = EmbeddedPostgres(folder / "data")
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_prepared_transactions = 2")
        server.stop()  # the setting takes a restart
        server = EmbeddedPostgres(folder / "data", delete_on_stop=True)
        with psycopg.connect(stack_env["DATABASE_URL"]) as conn:
            (version,) = conn.execute("SHOW server_version_num").fetchone()
        schema = subprocess.run(
            [pg_dump_binary(int(version)), "--schema-only", stack_env["DATABASE_URL"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        subprocess.run(
            [psql_binary(), server.url(), "-v", "ON_ERROR_STOP=1", "-q"],
            input=schema,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_writing_a_violation_cannot_be_prepared(two_phase_server_url):
    with psycopg.connect(two_phase_server_url, autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute(INSERT)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=NOTIFY_PREPARE_ERROR):
            conn.execute("PREPARE TRANSACTION 'camera-batch'")
        conn.execute("ROLLBACK")  # (the failed PREPARE already ended the transaction)
        # Nothing was written, and nothing is left prepared.
        assert conn.execute("SELECT count(*) FROM violation_humandetections").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)
        # What README says to do instead: write the violation rows in an ordinary
        # transaction, then the two-phase one holds no NOTIFY and prepares.
        conn.execute(INSERT)
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE other_work (id int)")
        conn.execute("PREPARE TRANSACTION 'other-work'")
        conn.execute("COMMIT PREPARED 'other-work'")
        assert conn.execute("SELECT count(*) FROM violation_humandetections").fetchone() == (1,)


def test_the_readme_quotes_the_error():
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    assert f"`{NOTIFY_PREPARE_ERROR}`" in readme
