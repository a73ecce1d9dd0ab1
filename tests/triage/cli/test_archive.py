"""`triage import`: the error report and nothing written on a bad file; the cases and their labels on a good one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from triage.cases.accounts import create_user
from triage.cli import app
from triage.config import get_settings
from triage.store.db import Database
from triage.store.tables import Case, ReviewedLabel

HEADER = "Mã hồ sơ;Ngày tiếp nhận;Loại;Nội dung;Cơ quan xử lý\n"


@pytest.fixture
def env_db(empty_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", empty_db.url)
    get_settings.cache_clear()
    with empty_db.session() as s:
        create_user(s, username="luutru", password="mat-khau-dai-du", role="admin")
    yield empty_db
    get_settings.cache_clear()


def _cases(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Case)) or 0)


def test_bad_rows_reported_and_nothing_written(env_db: Database, tmp_path: Path) -> None:
    archive = tmp_path / "a.csv"
    archive.write_text(HEADER + "A1;01/02/2024;Phản ánh;Đường hỏng;Bộ Xây dựng\nA2;31/02/2024;Phản ánh;x;Bộ Xây\n")
    report = tmp_path / "errors.jsonl"
    r = CliRunner().invoke(app, ["import", str(archive), "--reviewer", "luutru", "--errors", str(report)])
    assert r.exit_code == 2, r.output
    errors = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert {(e["line"], e["column"]) for e in errors} == {(3, "Ngày tiếp nhận"), (3, "Cơ quan xử lý")}
    assert _cases(env_db) == 0


def test_good_file_imported_once(env_db: Database, tmp_path: Path) -> None:
    archive = tmp_path / "a.csv"
    archive.write_text(HEADER + "A1;01/02/2024;Phản ánh;Đường liên xã hỏng nặng;Bộ Xây dựng\n", encoding="utf-8")
    args = ["import", str(archive), "--reviewer", "luutru", "--no-themes"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{") :])
    assert (out["imported"], out["labels"]) == (1, 1)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout[again.stdout.index("{") :])["skipped"] == 1
    with env_db.read() as s:
        assert _cases(env_db) == 1 and s.scalar(select(func.count()).select_from(ReviewedLabel)) == 1
