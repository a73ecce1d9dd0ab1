"""`triage users create`, `triage escalate`, `triage db upgrade` against a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from triage.cases.accounts import authenticate
from triage.cli import app
from triage.config import get_settings
from triage.store.db import Database
from triage.store.tables import Case, Event


@pytest.fixture
def env_db(empty_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", empty_db.url)
    get_settings.cache_clear()
    yield empty_db
    get_settings.cache_clear()


def test_users_create(env_db: Database) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "cli-h",
            "--role",
            "handler",
            "--agency",
            "BTC",
            "--password",
            "password-123",
        ],
    )
    assert r.exit_code == 0, r.output
    prompted = runner.invoke(
        app, ["users", "create", "--username", "cli-a", "--role", "analyst"], input="password-456\npassword-456\n"
    )
    assert prompted.exit_code == 0, prompted.output
    with env_db.read() as s:
        assert authenticate(s, "cli-h", "password-123").agency_code == "BTC"
        assert authenticate(s, "cli-a", "password-456").role.value == "analyst"
    again = runner.invoke(app, ["users", "create", "--username", "cli-h", "--role", "clerk", "--password", "x" * 12])
    assert again.exit_code == 2 and "already exists" in again.output
    no_agency = runner.invoke(
        app, ["users", "create", "--username", "cli-z", "--role", "handler", "--password", "x" * 12]
    )
    assert no_agency.exit_code == 2 and "--agency" in no_agency.output


def test_escalate_lists_per_agency_and_records_once(env_db: Database) -> None:
    received = datetime(2026, 1, 5, 2, tzinfo=UTC)
    with env_db.session() as s:
        case = Case(
            state="in_progress",
            kind="phan_anh",
            agency_code="BXD",
            received_at=received,
            updated_at=received,
            forward_due=date(2026, 1, 12),
            answer_due=date(2026, 1, 26),
        )
        s.add(case)
        s.flush()
        cid = case.id
    runner = CliRunner()
    first = runner.invoke(app, ["escalate", "--today", "2026-02-02"])
    assert first.exit_code == 0, first.output
    assert "BXD: 1 overdue, 0 due soon" in first.output and f"case {cid}" in first.output
    assert "[escalated now]" in first.output
    second = runner.invoke(app, ["escalate", "--today", "2026-02-02", "--json"])
    out = json.loads(second.output[: second.output.rindex("}") + 1])
    assert out["recorded"] == 0 and out["agencies"]["BXD"][0]["status"] == "overdue"
    with env_db.read() as s:
        assert list(s.scalars(select(Event.action).where(Event.case_id == cid))) == ["escalate"]
    assert runner.invoke(app, ["escalate", "--today", "2 Feb"]).exit_code == 2


def test_db_upgrade(env_db: Database) -> None:
    r = CliRunner().invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0 and "schema up to date" in r.output


def test_index_rebuild(env_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`triage index rebuild` indexes every case with an embedding and saves it where the service loads it."""
    import numpy as np

    from tests.triage.store.test_case_index import add
    from triage.store.case_index import CaseIndex, index_folder

    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    empty = runner.invoke(app, ["index", "rebuild"])
    assert empty.exit_code == 0 and "indexed 0 cases" in empty.output
    vectors = np.eye(4, dtype=np.float32)
    ids = [add(env_db, v) for v in vectors]
    r = runner.invoke(app, ["index", "rebuild"])
    assert r.exit_code == 0, r.output
    assert "indexed 4 cases (flat)" in r.output
    loaded = CaseIndex(env_db, folder=index_folder(get_settings()))
    assert loaded.load() and len(loaded) == 4
    assert [loaded.search(v, 1)[0][0] for v in vectors] == ids
