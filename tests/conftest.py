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

# `make test` runs two pytest-xdist workers. Each worker:
# - gets its own share of the CPUs, which its subprocesses (`ft worker`, job processes, vLLM) inherit: training and
#   the engines size their torch threads by the cores a process may use (core.machine.physical_cores), and two
#   workers each running two threads on two cores made a training test 7 times slower than alone;
# - takes back COLUMNS=80 and LINES=24 where pytest itself had neither: `ft`'s rich console, made at import, would
#   stay 80 columns wide whatever width a test's CliRunner asks for.
if os.environ.get("PYTEST_XDIST_WORKER"):
    # (gw0, gw1, …; a worker started in place of a crashed one counts on: gw2 takes gw0's share.)
    _count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    _index = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw") or 0) % max(1, _count)
    if hasattr(os, "sched_setaffinity") and len(_cpus := sorted(os.sched_getaffinity(0))) >= _count > 1:
        os.sched_setaffinity(0, _cpus[_index::_count])
    for _name in os.environ.get("FT_TESTS_UNSET", "").split():
        os.environ.pop(_name, None)
else:
    os.environ["FT_TESTS_UNSET"] = " ".join(name for name in ("COLUMNS", "LINES") if name not in os.environ)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: `-n 2 --dist loadfile`, each file in one worker, files sent in this order)
    the files that start vLLM go first, then those with tests marked slow (they train): a worker that takes one of
    the last files then takes a short one, and the two finish close together."""
    if not hasattr(config, "workerinput"):  # only a worker's order counts (each collects, and all sort alike)
        return

    def rank(marker: str) -> set:
        return {item.path for item in items if item.get_closest_marker(marker)}

    vllm, slow = rank("vllm"), rank("slow")
    items.sort(key=lambda item: (item.path not in vllm, item.path not in slow))


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


def _postgres_or_stop() -> None:
    reason = _postgres_reachable()
    if reason and os.environ.get("CI", "").lower() in ("true", "1"):
        # In CI a missing server must not halve the database coverage and stay green.
        pytest.fail(f"{reason} (CI=true: start PostgreSQL or point FT_TEST_POSTGRES_URL at one)", pytrace=False)
    if reason:
        pytest.skip(reason)


# Migrating costs a test more than most tests cost themselves (alembic runs eight migrations, about 0.15 s on SQLite
# and 0.3 s on PostgreSQL here), so each test process migrates a template once, and each test gets a copy of it.
# tests/storage/test_migrations.py migrates from empty (fresh_db_url).


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file; tmp_path_factory's folder is this process's own (one per xdist worker)."""
    path = tmp_path_factory.mktemp("template") / "ftbot.db"
    open_store(f"sqlite:///{path}").close()
    return path


class _PgTemplate:
    """A migrated schema of this process's own, emptied before each test: every table's rows deleted and every
    sequence restarted, which leaves what a fresh migration leaves (the migrations make tables and sequences
    only; alembic_version keeps its row). Deleting rows from 15 empty or nearly empty tables takes milliseconds,
    where TRUNCATE (new files for each table) or CREATE DATABASE … TEMPLATE take a tenth of a second or more.

    The tests' connections carry the schema's name as application_name; those still open when the next test
    starts (a leaked engine, a job process left running) are ended first, so that nothing of one test can write
    into the next one's rows."""

    def __init__(self):
        import sqlalchemy
        from sqlmodel import SQLModel

        import storage.models  # noqa: F401  (registers every table on SQLModel.metadata)

        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}application_name={self.schema}&options=-csearch_path%3D{self.schema}"
        open_store(self.url).close()
        q = f"'{self.schema}'"
        with self.admin.connect() as conn:
            tables = {r[0] for r in conn.exec_driver_sql(f"SELECT tablename FROM pg_tables WHERE schemaname = {q}")}
            sequences = [r[0] for r in conn.exec_driver_sql(
                f"SELECT sequencename FROM pg_sequences WHERE schemaname = {q}")]
        tables.discard("alembic_version")
        ordered = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]  # rows that refer to others first
        assert set(ordered) == tables, f"the migrated tables are not the models' tables: {set(ordered) ^ tables}"
        self.reset_sql = ";".join(
            [f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = {q}"]
            + [f'DELETE FROM "{self.schema}"."{name}"' for name in ordered]
            + [f'ALTER SEQUENCE "{self.schema}"."{name}" RESTART' for name in sequences])

    def fresh(self) -> str:
        with self.admin.begin() as conn:
            conn.exec_driver_sql(self.reset_sql)
        return self.url

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{self.schema}" CASCADE')
        self.admin.dispose()


_pg_template: _PgTemplate | None = None


@pytest.fixture(scope="session")
def _pg_templates():
    yield
    if _pg_template is not None:
        _pg_template.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, _pg_templates):
    """A database at the newest migration with no rows, this test's alone: a copy of a migrated SQLite file, or
    PostgreSQL's migrated schema emptied."""
    global _pg_template
    if request.param == "sqlite":
        import sqlite3

        path = tmp_path / "ftbot.db"
        src, dst = sqlite3.connect(request.getfixturevalue("_sqlite_template")), sqlite3.connect(path)
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{path}"
    _postgres_or_stop()
    if _pg_template is None:
        _pg_template = _PgTemplate()
    return _pg_template.fresh()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db_url(request, tmp_path):
    """A fresh, empty database URL with no schema at all: a SQLite file, or a new PostgreSQL schema dropped
    afterwards. For the tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ftbot.db'}"
        return
    _postgres_or_stop()
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
