"""`triage kpi demo|load|due|remind|export` against a real database on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from triage.cases import audit
from triage.cli import app
from triage.config import get_settings
from triage.store.db import Database
from triage.store.kpi_tables import KpiReport
from triage.store.tables import Event

TODAY = "2026-12-05"


@pytest.fixture
def env_db(empty_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", empty_db.url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield empty_db
    get_settings.cache_clear()


def test_demo_then_due_remind_and_export(env_db: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["kpi", "demo", "--today", TODAY])
    assert r.exit_code == 0, r.output
    assert "2024-Q4..2026-Q3" in r.output and "10 missing, 1 returned" in r.output
    r = runner.invoke(app, ["kpi", "load", "--today", TODAY])
    assert r.exit_code == 0 and "9 strategic" in r.output and "0 report(s) made due" in r.output, r.output
    r = runner.invoke(app, ["kpi", "due", "--today", TODAY, "--json"])
    overdue = json.loads(r.stdout)
    assert {o["agency"] for o in overdue} == {"P-CT", "P-HN"}  # the silent province, the returned report
    r = runner.invoke(app, ["kpi", "remind", "--today", TODAY])
    assert "11 newly escalated" in r.output, r.output
    assert "0 newly escalated" in runner.invoke(app, ["kpi", "remind", "--today", TODAY]).output
    csv, xlsx = tmp_path / "kpi.csv", tmp_path / "kpi.xlsx"
    assert runner.invoke(app, ["kpi", "export", str(csv), "--today", TODAY]).exit_code == 0
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf") and "Chậm tiến độ" in csv.read_text(encoding="utf-8-sig")
    assert runner.invoke(app, ["kpi", "export", str(xlsx), "--today", TODAY]).exit_code == 0
    assert xlsx.read_bytes()[:2] == b"PK"
    with env_db.read() as s:
        assert s.scalar(select(func.count()).select_from(KpiReport).where(KpiReport.state == "locked")) > 400
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "kpi_overdue")) == 11
        assert audit.verify(s).ok


def test_load_refuses_a_broken_registry(env_db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("programme: {code: X}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["kpi", "load", str(bad)])
    assert r.exit_code != 0 and "invalid" in r.output
