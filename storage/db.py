"""Engine, sessions and migrations: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """A database with ftbot's schema applied. Cheap to share; open sessions per unit of work."""

    def __init__(self, url: str, engine: Engine, busy_timeout_s: float = 30.0):
        self.url = url
        self.engine = engine
        self.busy_timeout_s = busy_timeout_s  # how long a statement waits for another's lock before it fails

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def session_waiting(self, wait_s: float) -> Iterator[Session]:
        """session(), where a statement waits at most wait_s for another's lock (not busy_timeout_s): the
        worker's heartbeat must give up while its lease still holds."""
        with self.session() as session:
            ms = max(1, int(wait_s * 1000))
            if self.dialect == "sqlite":
                session.execute(text(f"PRAGMA busy_timeout = {ms}"))
            else:
                session.execute(text(f"SET LOCAL lock_timeout = {ms}"))  # this transaction only
            try:
                yield session
            finally:
                if self.dialect == "sqlite":  # a connection setting: the pool hands the connection on
                    try:
                        session.execute(text(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}"))
                    except Exception:  # noqa: BLE001  (then the pool opens a fresh connection, with the store's timeout)
                        session.connection().invalidate()

    def patiently(self, work: Callable[[Session], T], *, within_s: float) -> T:
        """work(session) in one transaction, tried again after a transient error (a database busy for longer
        than busy_timeout_s, a restarting server) until within_s have passed; then the error is raised."""
        deadline, pause = time.monotonic() + within_s, 0.2
        while True:
            try:
                with self.session() as s:
                    return work(s)
            except OperationalError as exc:
                if not is_transient(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def close(self) -> None:
        self.engine.dispose()


def is_transient(exc: BaseException) -> bool:
    """A database error that waiting may cure: locked or busy, a lock wait timed out, a deadlock, the connection
    dropped. (sqlite3 raises OperationalError for a missing table or a syntax error too: those are not.)"""
    if not isinstance(exc, OperationalError):
        return False
    orig = getattr(exc, "orig", None)
    if type(orig).__module__.startswith("sqlite3"):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    return True


def one_line(exc: BaseException) -> str:
    """An exception as one line: its class and the first line of its message (SQLAlchemy appends SQL and a link)."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {message[0]}" if message else exc.__class__.__name__


class MissingFolder(FileNotFoundError):
    """The SQLite file's folder does not exist, and is not one this process may create."""

    def __init__(self, folder: Path):
        super().__init__(f"{folder} does not exist")
        self.folder = folder


def make_engine(url: str, busy_timeout_s: float = 30.0, *, create_folder: bool = False) -> Engine:
    """create_folder: the SQLite file's folder may be created (ftbot's own data folder); otherwise a missing
    folder raises MissingFolder, as a typo in a path must not become a fresh, empty database."""
    # hide_parameters: a database error (logged with its traceback) never carries a question, an answer or a
    # person's id in its message; erasure could not reach a log line.
    if url.startswith("sqlite"):
        path = make_url(url).database  # None or ":memory:": in memory
        if path and path != ":memory:" and not path.startswith("file:"):
            folder = Path(path).parent
            if create_folder:
                folder.mkdir(parents=True, exist_ok=True)
            elif not folder.is_dir():
                raise MissingFolder(folder)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets the bot read while a worker writes; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _pg_lock_timeout(dbapi_conn, _record):
        # As SQLite's busy timeout: a write that waits this long for a lock fails instead of hanging.
        # Set outside any transaction and committed, so a rollback does not undo it.
        cur = dbapi_conn.cursor()
        cur.execute(f"SET lock_timeout = {max(1, int(busy_timeout_s * 1000))}")
        cur.close()
        dbapi_conn.commit()

    return engine


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision; read from the scripts once per process (alembic executes every script file
    each time it loads them)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent). A database already at the newest costs one query:
    every process that opens the store (the bot, each `ft` command, each job) starts here."""
    from alembic import command
    from alembic.migration import MigrationContext

    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head_revision():
            return
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str, *, upgrade: bool = True, busy_timeout_s: float = 30.0, create_folder: bool = False) -> Store:
    """busy_timeout_s: how long a statement waits for another connection's lock before it fails
    (FT_DB_BUSY_TIMEOUT_S); create_folder: see make_engine."""
    engine = make_engine(url, busy_timeout_s, create_folder=create_folder)
    if upgrade:
        migrate(engine)
    return Store(url, engine, busy_timeout_s)
