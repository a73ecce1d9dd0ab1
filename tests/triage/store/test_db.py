"""Schema, migrations and engine settings on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from tests.db import minimal_submission
from triage.config import Settings
from triage.store.db import Database, database_url, init_db
from triage.store.tables import Agency, AuditHead, Base, Case, Submission


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


def test_upgrade_is_idempotent_and_mirrors_the_registry(db: Database) -> None:
    init_db(db)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Agency)) == 71  # 53 top-level bodies + 18 units
        assert s.get(Agency, "BTC").name == "Bộ Tài chính"  # type: ignore[union-attr]
        assert s.get(Agency, "BTC-THUE").parent == "BTC"  # type: ignore[union-attr]
        head = s.get(AuditHead, 1)
        assert head is not None and (head.seq == 0) == (head.hash == "0" * 64)


def test_programme_field_migration_keeps_earlier_cases_and_goes_both_ways(empty_db_url: str) -> None:
    """0003 -> 0004 adds cases.programme_field (NULL for the cases already stored) and its index; downgrade drops it."""
    from alembic import command

    from triage.store.db import alembic_config

    db = Database(empty_db_url)
    try:
        with db.engine.connect() as conn:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
            conn.commit()
            conn.execute(
                text("INSERT INTO cases (state, kind, received_at, updated_at) VALUES ('new', 'phan_anh', :t, :t)"),
                {"t": datetime(2026, 3, 2, 2, 0)},
            )
            conn.commit()
            command.upgrade(cfg, "head")
            conn.commit()
        with db.read() as s:
            [case] = s.scalars(select(Case)).all()
            assert case.programme_field is None
        assert "ix_cases_programme_field" in {i["name"] for i in inspect(db.engine).get_indexes("cases")}
        with db.session() as s:
            s.add(_case(programme_field="digital_government"))
        with db.read() as s:
            assert s.scalar(select(func.count()).where(Case.programme_field == "digital_government")) == 1
        with db.engine.connect() as conn:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
            conn.commit()
        assert "programme_field" not in {c["name"] for c in inspect(db.engine).get_columns("cases")}
    finally:
        db.dispose()


def test_engine_settings(db: Database) -> None:
    """SQLite: WAL, foreign keys, fsync on commit, busy timeout. PostgreSQL: UTF-8 and the test's own schema."""
    if db.is_postgresql:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW server_encoding").scalar() == "UTF8"
            assert conn.exec_driver_sql("SELECT current_schema()").scalar().startswith("triage_test_")
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _case(**kw: object) -> Case:
    now = datetime.now(UTC)
    return Case(state="new", kind="phan_anh", received_at=now, updated_at=now, **kw)  # type: ignore[arg-type]


def test_times_come_back_exactly_as_aware_utc(db: Database) -> None:
    moment = datetime(2026, 2, 16, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=7)))
    with db.session() as s:
        case = _case()
        case.received_at = moment
        s.add(case)
        s.flush()
        cid = case.id
    with db.read() as s:
        back = s.get(Case, cid)
        assert back is not None
        assert back.received_at == moment and back.received_at.tzinfo == UTC
        assert back.received_at.isoformat() == "2026-02-16T16:59:59.123456+00:00"
    with pytest.raises(StatementError, match="naive"), db.session() as s:
        bad = _case()
        bad.received_at = datetime(2026, 1, 1)
        s.add(bad)
        s.flush()


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(_case(agency_code="NO-SUCH-AGENCY"))
        s.flush()


def test_idempotency_key_is_unique(db: Database) -> None:
    def sub(case_id: int, code: str) -> Submission:
        return minimal_submission(case_id, code, idempotency_key="same-key")

    with db.session() as s:
        case = _case()
        s.add(case)
        s.flush()
        s.add(sub(case.id, "PAKN-UNIQ-0000-0001"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(sub(case.id, "PAKN-UNIQ-0000-0002"))
        s.flush()


def test_default_url_is_a_sqlite_file_under_the_data_folder(tmp_path: Path) -> None:
    url = database_url(Settings(data_dir=tmp_path, database_url=None))
    assert url == f"sqlite:///{tmp_path / 'triage.db'}"
    assert database_url(Settings(database_url="postgresql+psycopg://u@h/db")) == "postgresql+psycopg://u@h/db"


def test_fresh_sqlite_file_is_created_with_its_folder(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'triage.db'}")
    init_db(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
    db.dispose()
    assert (tmp_path / "deep" / "er" / "triage.db").exists()


def test_sqlite_writers_in_one_process_take_turns(tmp_path: Path) -> None:
    """Writers queue on the in-process lock (handed over at once) instead of SQLite's sleeping busy handler."""
    import threading

    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    init_db(db)
    inside = 0
    most = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def write(i: int) -> None:
        nonlocal inside, most
        try:
            with db.session() as s:
                with guard:
                    inside += 1
                    most = max(most, inside)
                case = _case()
                s.add(case)
                s.flush()
                s.add(minimal_submission(case.id, f"PAKN-TURN-0000-{i:04d}"))
                s.flush()
                with guard:
                    inside -= 1
        except BaseException as exc:  # collected: a failing thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert most == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 12
    db.dispose()


def test_sqlite_writer_lock_orders_processes_too(tmp_path: Path) -> None:
    """Another process holding the writer lock file makes this process's writer wait, then proceed."""
    import subprocess
    import sys
    import time

    db = Database(f"sqlite:///{tmp_path / 'procs.db'}")
    init_db(db)
    lock_file = tmp_path / "procs.db.writer-lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(1.0)",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    with db.session() as s:
        case = _case()
        s.add(case)
    waited = time.monotonic() - start
    holder.wait(timeout=10)
    assert waited >= 0.3, f"the write did not wait for the other process's lock ({waited:.2f}s)"
    with db.read() as s:
        assert s.get(Case, case.id) is not None
    db.dispose()
