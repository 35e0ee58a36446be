"""Real databases: every store test runs on SQLite and on this machine's PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from storage import open_store

# The property tests draw the same examples on every run, so that CI passes or fails on the code and not on the
# draw; `pytest --hypothesis-profile=explore` draws new ones, to look for what they have not found yet.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")

PG_URL = os.environ.get("FT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"  # beside the clone, as in CI
QUILLMATE_EXPORT = SHARED / "data" / "quillmate-slack-export"

_pg_error: str | None = None


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not (the skip reason)."""
    global _pg_error
    if _pg_error is None:
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect():
                pass
            engine.dispose()
            _pg_error = ""
        except Exception as exc:  # noqa: BLE001  (any failure to connect skips the PostgreSQL tests, saying why)
            _pg_error = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
    return _pg_error or None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ftbot.db'}"
        return
    reason = _postgres_reachable()
    if reason and os.environ.get("CI", "").lower() in ("true", "1"):
        # In CI a missing server must not halve the database coverage and stay green.
        pytest.fail(f"{reason} (CI=true: start PostgreSQL or point FT_TEST_POSTGRES_URL at one)", pytrace=False)
    if reason:
        pytest.skip(reason)
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def store(db_url):
    st = open_store(db_url)
    yield st
    st.close()


@pytest.fixture
def ft_env(db_url, tmp_path, monkeypatch):
    """Environment for `ft` commands: this test's database and data dir, with one curator."""
    monkeypatch.setenv("FT_DATABASE_URL", db_url)
    monkeypatch.setenv("FT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FT_CURATORS", "UCURATOR")
    monkeypatch.setenv("FT_ADMINS", "UADMIN")
    return db_url


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """`ft` commands run in-process set up logging as a user's process would (ftbot.logs.setup); the next test starts
    with the root logger as it found it, so INFO lines of one test never land in another's output."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
