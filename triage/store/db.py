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
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Settings
from triage.errors import TriageError
from triage.nlp.agencies import default_registry
from triage.store.tables import Agency

log = logging.getLogger(__name__)
T = TypeVar("T")
AUDIT_KEY_FILE = "audit.key"
MIN_AUDIT_KEY = 32
# PostgreSQL: serialization_failure, deadlock_detected; SQLite: a busy timeout that ran out.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})

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


def audit_key(settings: Settings) -> bytes:
    """The HMAC key of the audit chain: ``TRIAGE_AUDIT_KEY``, else one generated once in ``data_dir/audit.key``.

    The key never goes into the database, so a database writer cannot re-sign a rewritten tail. The
    file is created atomically (written aside, then hard-linked into place: the first worker wins and
    every other worker reads the same key). Production mode accepts only an explicit key of 32+
    characters, the same on every host.
    """
    if settings.audit_key is not None:
        key = settings.audit_key.get_secret_value()
        if settings.env == "production" and len(key) < MIN_AUDIT_KEY:
            raise TriageError(f"TRIAGE_AUDIT_KEY must have at least {MIN_AUDIT_KEY} characters in production")
        return key.encode()
    if settings.env == "production":
        raise TriageError(
            "production mode needs TRIAGE_AUDIT_KEY (at least 32 random characters, the same on every host)"
        )
    return _key_file(Path(settings.data_dir) / AUDIT_KEY_FILE)


def audit_anchor_file(settings: Settings) -> Path:
    """Where the chain head is anchored outside the database (``TRIAGE_AUDIT_ANCHOR_FILE``)."""
    return settings.audit_anchor_file or Path(settings.data_dir) / "audit-anchors.log"


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another worker was first: then its key is the key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_AUDIT_KEY:
        raise TriageError(f"the audit key in {path} is shorter than {MIN_AUDIT_KEY} characters")
    return key.encode()


def is_transient(exc: BaseException) -> bool:
    """A write that lost a race and may simply be run again: deadlock, serialization failure, SQLite busy."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in TRANSIENT_SQLSTATES or getattr(orig, "pgcode", None) in TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(orig).lower()


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

    def __init__(self, url: str, *, audit_key: bytes | None = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.audit_key = audit_key
        self.engine = make_engine(url, **engine_kwargs)
        # The audit key travels with every session (``session.info``): ``triage.cases.audit`` signs and checks with it.
        info = {"audit_key": audit_key}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        # SQLite: reads skip the write lock; PostgreSQL: the same engine (MVCC reads never block).
        self.read_engine = (
            make_engine(url, immediate=False, **engine_kwargs) if url.startswith("sqlite") else self.engine
        )
        self.readers = sessionmaker(self.read_engine, expire_on_commit=False, info=info)
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
        return cls(database_url(settings), audit_key=audit_key(settings))

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

    def transaction(self, work: Callable[[Session], T], *, attempts: int = 4) -> T:
        """``work(session)`` in one write transaction, run again (a bounded number of times) if it lost a race.

        Deadlocks and serialization failures (PostgreSQL 40P01 / 40001) and an exhausted SQLite busy
        timeout roll the whole transaction back, so running ``work`` again from the start is safe; it
        must not have effects outside the database. The last failure is raised as it is.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as s:
                    return work(s)
            except DBAPIError as exc:
                if attempt == attempts or not is_transient(exc):
                    raise
                log.warning("write transaction lost a race (%s); retrying (%d/%d)", exc.orig, attempt, attempts)
                time.sleep(0.01 * attempt * (1 + secrets.randbelow(10)))  # back off, out of step with the other
        raise AssertionError("unreachable")

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
