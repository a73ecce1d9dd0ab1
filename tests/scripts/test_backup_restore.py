"""Backups and the restore drill (issue 24, item 4): scripts/backup.sh then scripts/restore_drill.sh on the
local PostgreSQL (a database of its own, as production has) and on the default SQLite install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.db import PG_DSN, _pg_parts
from triage.cases.audit import write_anchor
from triage.cases.intake import NewSubmission, receive
from triage.config import Settings
from triage.store.db import Database, audit_anchor_file, init_db

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def petition(i: int) -> NewSubmission:
    return NewSubmission(
        kind="kien_nghi", submitter_type="citizen", title=f"Đèn đường hỏng số {i}", content=f"Đèn đường ở ngõ {i} hỏng."
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A whole database (pg_dump backs up a database, not the tests' per-schema copies); dropped after."""
    name = f"triage_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    p = _pg_parts()
    yield f"postgresql://{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{name}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate(settings: Settings, n: int) -> None:
    db = Database.from_settings(settings)
    init_db(db)
    for i in range(n):
        receive(db, petition(i))
    with db.read() as s:
        write_anchor(s, audit_anchor_file(settings))  # as the periodic job does
    db.dispose()


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHON": sys.executable, **env}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *args], env=full, capture_output=True, text=True, timeout=300
    )


def counts(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [str(BIN / "triage"), "db", "counts", "--json"], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def drill_admin() -> str:
    p = _pg_parts()
    return (
        f"postgresql://{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p['dbname']}"
    )


@pytest.mark.slow
def test_postgresql_backup_restores_and_verifies(pg_database: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = pg_database.replace("postgresql:", "postgresql+psycopg:")
    populate(Settings(database_url=url, data_dir=data), 4)
    env = {"TRIAGE_DATABASE_URL": url, "TRIAGE_DATA_DIR": str(data)}
    backup = tmp_path / "backup"
    made = run("backup.sh", str(backup), env=env)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in backup.iterdir()} == {"db.dump", "data.tar.gz", "SHA256SUMS"}

    drill = run("restore_drill.sh", str(backup), env={"TRIAGE_DRILL_PG": drill_admin()})
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert "drill passed" in drill.stdout
    source = counts(env)
    assert source["cases"] == 4 and f"cases: {source['cases']}" in drill.stdout
    assert f"events: {source['events']}" in drill.stdout
    with psycopg.connect(PG_DSN, autocommit=True) as conn:  # the scratch database is gone
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'triage_restore_drill_%'").fetchone()
    assert left is not None and left[0] == 0


@pytest.mark.slow
def test_the_drill_refuses_a_damaged_or_cut_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(Settings(data_dir=data), 3)  # the default install: SQLite in the data folder
    env = {"TRIAGE_DATA_DIR": str(data)}
    backup = tmp_path / "backup"
    assert run("backup.sh", str(backup), env=env).returncode == 0
    good = run("restore_drill.sh", str(backup), env={})
    assert good.returncode == 0 and "cases: 3" in good.stdout, good.stdout + good.stderr

    # A backup whose database lost its newest events no longer matches the anchors it carries.
    import sqlite3

    conn = sqlite3.connect(backup / "triage.db")
    with conn:
        conn.execute("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)")
    conn.close()  # checkpoints the write-ahead log into the file the drill copies
    (backup / "SHA256SUMS").write_text(
        subprocess.run(["sha256sum", "triage.db", "data.tar.gz"], cwd=backup, capture_output=True, text=True).stdout
    )
    cut = run("restore_drill.sh", str(backup), env={})
    assert cut.returncode != 0 and "does not verify" in cut.stderr, cut.stdout + cut.stderr

    with (backup / "data.tar.gz").open("ab") as f:  # bytes changed after the sums were taken
        f.write(b"x")
    damaged = run("restore_drill.sh", str(backup), env={})
    assert damaged.returncode != 0 and "checksums differ" in damaged.stderr
