"""Engine, sessions and schema upgrade: a SQLite file by default, PostgreSQL in production.

SQLite is tuned for a service that must not lose acknowledged writes: WAL (readers never block
the writer), ``synchronous=FULL`` (a commit survives power loss), foreign keys on, and a busy
timeout. Every SQLite transaction starts with ``BEGIN IMMEDIATE``: the write lock is taken up
front, so two requests can never both read the audit head and then both append (the deferred
default would fail one of them with SQLITE_BUSY instead of waiting). Writers also queue on a
``WriterLock`` before BEGIN (a thread lock plus ``flock`` on a file beside the database, so threads
and worker processes alike): SQLite's own busy handler polls with sleeps of up to 100 ms, so under
load a waiting writer slept long after the lock was free (the intake fell behind at 50
submissions/s); a blocked lock wakes at once. The busy timeout stays as the safety net.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Settings
from triage.nlp.agencies import default_registry
from triage.store.tables import Agency

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_upgrade_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    """``TRIAGE_DATABASE_URL``, or a SQLite file under the data folder."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{Path(settings.data_dir) / 'triage.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" hook below issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and transaction mode this service relies on.

    ``immediate=False`` gives a SQLite engine for read-only work (plain deferred BEGIN: many readers at once).
    """
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class WriterLock:
    """One SQLite writer at a time across threads (``RLock``) and processes (``flock`` on ``path``).

    Re-entrant within a thread; the file lock is taken by the outermost holder only. Where ``flock``
    is unavailable (not POSIX) the thread lock alone still orders this process's writers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self._lock_file()
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                import fcntl  # POSIX only: see _lock_file

                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _lock_file(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


class Database:
    """An engine plus its session factory; one per process (and per test backend)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: reads skip the write lock; PostgreSQL: the same engine (MVCC reads never block).
        self.read_engine = (
            make_engine(url, immediate=False, **engine_kwargs) if url.startswith("sqlite") else self.engine
        )
        self.readers = sessionmaker(self.read_engine, expire_on_commit=False)
        file = _sqlite_file(url)
        self._writer: contextlib.AbstractContextManager[Any] = (
            WriterLock(file.with_name(file.name + ".writer-lock"))
            if file is not None
            else threading.RLock()
            if url.startswith("sqlite")
            else contextlib.nullcontext()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings))

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends normally, rolls back on any exception."""
        with self._writer, self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (never takes SQLite's write lock); loaded objects stay readable after it."""
        with self.readers() as session:
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision, then mirror the agency registry."""
        init_db(self)

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        if isinstance(self._writer, WriterLock):
            self._writer.close()


def alembic_config(url: str) -> Any:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config  # deferred: Alembic (~0.25 s) is needed only to migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(db: Database) -> None:
    """``alembic upgrade head`` on this database, then upsert the agencies from the packaged registry.

    PostgreSQL: an advisory lock makes concurrent workers starting together take turns.
    """
    from alembic import command  # deferred: see alembic_config

    with _upgrade_lock, db.engine.connect() as conn:
        if db.is_postgresql:
            conn.exec_driver_sql("SELECT pg_advisory_lock(57020251)")
            conn.commit()
        try:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if db.is_postgresql:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(57020251)")
                conn.commit()
    sync_agencies(db)


def sync_agencies(db: Database) -> None:
    """Mirror the packaged registry into the agencies table (adds and renames; never deletes)."""
    with db.session() as s:
        existing = {a.code: a for a in s.scalars(select(Agency))}
        for a in default_registry():
            row = existing.get(a.code)
            if row is None:
                s.add(Agency(code=a.code, name=a.name, kind=a.kind, parent=a.parent, active=True))
            elif (row.name, row.kind, row.parent) != (a.name, a.kind, a.parent):
                row.name, row.kind, row.parent = a.name, a.kind, a.parent
