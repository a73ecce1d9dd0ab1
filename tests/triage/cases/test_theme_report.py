"""The theme report read from a real database (SQLite and PostgreSQL): period, masking, agencies, HTML.

The vectors here are built around three fixed directions (one per theme) so the test checks what the
report does with stored rows; clustering quality on real text is tested in test_themes.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.web.theme_page import render_report
from tests.db import minimal_submission
from triage.cases.theme_report import (
    EmergingReport,
    ThemeReport,
    build_report,
    emerging_only,
    keep_themes,
    known_themes,
    load_period,
    period_version,
    report_for_period,
)
from triage.errors import InvalidInput
from triage.nlp.themes import ThemeModel
from triage.store.db import Database, init_db, sync_agencies
from triage.store.tables import Case
from triage.store.vectors import to_bytes

START = date(2024, 6, 3)  # a Monday; 10 weeks, no other test of this module's database uses 2024
WEEKS = 10
THEMES = {
    "flood": ("Ngập úng đô thị", "Đường phố ngập sâu sau mưa lớn, hệ thống thoát nước quá tải, gọi 0912 345 678"),
    "permit": ("Cấp phép xây dựng", "Thủ tục cấp giấy phép xây dựng nhà ở kéo dài quá hạn quy định"),
    "tax": ("Hoàn thuế chậm", "Hồ sơ hoàn thuế thu nhập cá nhân nộp đã lâu nhưng chưa được giải quyết"),
}


REPORT_KEYS = {
    "since", "until", "generated_at", "submissions", "without_embedding", "weeks", "totals_by_week", "window_weeks",
    "alpha", "min_size", "min_growth", "outliers", "outlier_share", "themes", "emerging", "systemic", "note",
}  # fmt: skip
THEME_KEYS = {
    "id", "label", "keywords", "size", "share", "trend", "agencies", "systemic", "examples", "emerging", "evidence",
}  # fmt: skip


def _as_json(report: ThemeReport) -> dict[str, Any]:
    """The report's fields as JSON, straight from the dataclass (dates as ISO text, tuples as lists)."""
    fields = {k: v for k, v in asdict(report).items() if k != "known"}  # kept for the next report, never shown
    data = json.dumps(fields, default=lambda v: v.isoformat() if isinstance(v, date) else str(v))
    return dict(json.loads(data))


def _stage(db: Database) -> dict[str, list[int]]:
    """Per week: 6 flood, 6 permit, 6 tax; flood x3 in the last two weeks; flood split across two agencies."""
    sync_agencies(db)
    rng = np.random.default_rng(0)
    directions = {k: rng.normal(size=32) for k in THEMES}
    made: dict[str, list[int]] = {k: [] for k in THEMES}
    with db.session() as s:
        n = 0
        for week in range(WEEKS):
            for key, (title, content) in THEMES.items():
                for _ in range(18 if key == "flood" and week >= WEEKS - 2 else 6):
                    n += 1
                    at = datetime.combine(START + timedelta(days=7 * week + n % 7), datetime.min.time(), UTC)
                    at += timedelta(hours=5)
                    agency = {"flood": "BXD" if n % 2 else "BNNMT", "permit": "BXD", "tax": "BTC"}[key]
                    case = Case(state="triaged", kind="phan_anh", received_at=at, updated_at=at, agency_code=agency)
                    s.add(case)
                    s.flush()
                    vec = directions[key] + 0.3 * rng.normal(size=32)
                    s.add(
                        minimal_submission(
                            case.id,
                            f"PAKN-THEME{n:05d}",
                            title=title,
                            content=f"{content} (lần {n})",
                            embedding=to_bytes(vec / np.linalg.norm(vec)),
                            created_at=at,
                        )
                    )
                    made[key].append(case.id)
        # outside the period, and a rejected case inside it: neither counts
        outside = datetime(2024, 5, 1, 5, tzinfo=UTC)
        for at, state in ((outside, "triaged"), (datetime(2024, 6, 5, 5, tzinfo=UTC), "rejected")):
            case = Case(state=state, kind="phan_anh", received_at=at, updated_at=at)
            s.add(case)
            s.flush()
            s.add(minimal_submission(case.id, f"PAKN-THEMEX{case.id}", created_at=at, embedding=to_bytes(np.ones(32))))
    return made


@pytest.fixture(scope="module")
def staged(db: Database) -> dict[str, list[int]]:
    return _stage(db)


def test_report_reads_the_period_and_finds_the_burst(db: Database, staged: dict[str, list[int]]) -> None:
    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    with db.read() as s:
        items = load_period(s, START, until)
        report = report_for_period(s, START, until, min_submissions=10, model=ThemeModel(n_themes=3))
    assert len(items) == sum(len(v) for v in staged.values())  # nothing outside, nothing rejected
    assert report.submissions == len(items) and len(report.weeks) == WEEKS
    assert sum(report.totals_by_week) == len(items)
    assert len(report.themes) == 3
    flood = next(t for t in report.themes if "ngập" in " ".join(t.keywords).lower())
    assert report.emerging == (flood.id,)  # only the tripled theme, and it is significant
    assert flood.emerging is not None
    assert flood.emerging.significant and flood.emerging.growth > 1.5  # share 1/3 -> 3/5
    assert flood.trend[-1] >= 2 * flood.trend[0]
    assert flood.systemic and {a.code for a in flood.agencies} == {"BXD", "BNNMT"}
    assert report.systemic == (flood.id,)
    assert all(a.name and a.name != a.code for a in flood.agencies)
    for theme in report.themes:
        for example in theme.examples:
            assert "0912" not in example.text
        assert len(theme.examples) == 3
    assert any("[SĐT]" in ex.text for ex in flood.examples)  # the phone number is masked, not dropped


def test_report_version_changes_with_the_data(db: Database, staged: dict[str, list[int]]) -> None:
    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    with db.read() as s:
        before = period_version(s, START, until)
    with db.session() as s:
        case = s.get(Case, staged["tax"][0])
        assert case is not None
        case.agency_code = "BYT"  # a re-routed case changes what the report says about agencies
    with db.read() as s:
        after = period_version(s, START, until)
    assert before[:2] == after[:2] and before != after


def test_small_periods_and_bad_periods(db: Database, staged: dict[str, list[int]]) -> None:
    with db.read() as s:
        few = report_for_period(s, START, START + timedelta(days=1))
        assert few.themes == () and few.note is not None and "quá ít phản ánh" in few.note
        with pytest.raises(InvalidInput):
            report_for_period(s, START, START - timedelta(days=1))
        with pytest.raises(InvalidInput):
            report_for_period(s, START, START + timedelta(days=800))


def test_html_is_self_contained_and_shows_the_themes(db: Database, staged: dict[str, list[int]]) -> None:
    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    with db.read() as s:
        report = report_for_period(s, START, until, min_submissions=10, model=ThemeModel(n_themes=3))
    page = render_report(report)
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 2 + len(report.themes)
    assert "<script" not in page and not re.search(r"(src|href)=", page)  # nothing fetched: opens offline
    assert "đang nổi lên" in page and "liên ngành" in page and "[SĐT]" in page and "0912" not in page
    empty = render_report(build_report([], START, until))
    assert "Chưa đủ dữ liệu" in empty


def test_the_report_is_one_frozen_value_and_the_emerging_cut_is_its_subset(
    db: Database, staged: dict[str, list[int]]
) -> None:
    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    with db.read() as s:
        report = report_for_period(s, START, until, min_submissions=10, model=ThemeModel(n_themes=3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.note = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.themes[0].size = 0  # type: ignore[misc]
    assert report.generated_at.microsecond == 0 and report.since == START and report.weeks[0] == START
    assert [t.id for t in report.ordered()][: len(report.emerging)] == list(report.emerging)
    assert sorted(t.id for t in report.ordered()) == sorted(t.id for t in report.themes)
    cut = emerging_only(report)
    assert isinstance(cut, EmergingReport) and cut.themes == tuple(report.theme(i) for i in report.emerging)
    assert cut.tested == sum(t.emerging is not None for t in report.themes) and cut.submissions == report.submissions
    assert set(_as_json(cut)) == REPORT_KEYS | {"tested"}


def test_the_file_and_the_analyst_page_render_one_template(db: Database, staged: dict[str, list[int]]) -> None:
    """The theme list and the size chart are the same markup in the HTML file and on the page."""
    from service.web.render import templates

    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    with db.read() as s:
        report = report_for_period(s, START, until, min_submissions=10, model=ThemeModel(n_themes=3))
    page = templates.get_template("staff/reports.html").render(**_page_context(report), max_themes=30)
    file = render_report(report, max_themes=30)

    def themes_list(html: str) -> str:
        section = html[html.index('<ol class="themes">') : html.index("</ol>", html.index('<ol class="themes">'))]
        section = re.sub(r"<blockquote.*?</blockquote>", "", section)  # the file quotes 3 examples, the page 2
        return re.sub(r'<p class="evidence-export">.*?</p>', "", section)  # download links: on the page only

    def chart(html: str) -> str:
        return html[
            html.index('<svg class="chart" id="chart-themes"') : html.index("</svg>", html.index("chart-themes"))
        ]

    assert themes_list(page) == themes_list(file) and chart(page) == chart(file)
    assert all(t.label in page for t in report.themes) and 'class="bar s-overdue"' in chart(page)  # emerging: red
    assert page.count("<blockquote") == 2 * len(report.themes) and file.count("<blockquote") == 3 * len(report.themes)


def _page_context(report: ThemeReport | None) -> dict[str, object]:
    return {
        "who": None,
        "csrf_token": "t",
        "rows": [],
        "charts": [],
        "totals": dict.fromkeys(("received", "answered", "on_time", "backlog", "overdue", "on_time_pct"), 0),
        "start": START,
        "end": START,
        "as_of": START,
        "presets": [],
        "errors": [],
        "theme_report": report,
    }


def test_cli_writes_html_and_json(tmp_path: Path) -> None:
    """`triage themes` on a SQLite file: both report formats, and a clear error for a bad --out."""
    from typer.testing import CliRunner

    from triage.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database(url)
    init_db(db)
    _stage(db)
    db.dispose()
    runner = CliRunner()
    period = ["--since", START.isoformat(), "--until", (START + timedelta(weeks=WEEKS, days=-1)).isoformat()]
    res = runner.invoke(app, ["themes", *period, "--database", url, "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["submissions"] == 6 * 3 * WEEKS + 12 * 2 and report["emerging"]
    # the file is the core's ThemeReport, field for field, in the JSON shape the command always wrote
    db = Database(url)
    with db.read() as s:
        items = load_period(s, START, START + timedelta(weeks=WEEKS, days=-1))
    db.dispose()
    again = build_report(items, START, START + timedelta(weeks=WEEKS, days=-1))
    assert {**report, "generated_at": None} == {**_as_json(again), "generated_at": None}
    assert set(report) == REPORT_KEYS and set(report["themes"][0]) == THEME_KEYS
    res = runner.invoke(app, ["themes", *period, "--database", url, "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<svg" in html and 'id="chart-themes"' in html and 'id="chart-weeks"' in html
    res = runner.invoke(app, ["themes", *period, "--database", url, "--out", str(tmp_path / "r.pdf")])
    assert res.exit_code == 2 and ".html or .json" in res.output
    res = runner.invoke(app, ["themes", "--since", "2024-99-01", "--database", url, "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_a_theme_keeps_its_id_and_label_in_the_next_overlapping_report(
    db: Database, staged: dict[str, list[int]]
) -> None:
    """Weeks 1-8 reported and kept; weeks 3-10 then find the same three themes under the same ids and labels."""
    until = START + timedelta(weeks=WEEKS) - timedelta(days=1)
    first_until, second_since = until - timedelta(weeks=2), START + timedelta(weeks=2)
    with db.read() as s:
        first = report_for_period(s, START, first_until, min_submissions=10, model=ThemeModel(n_themes=3))
    with db.session() as s:
        assert keep_themes(s, first) == 3
    with db.read() as s:
        known = known_themes(s, second_since, until)
        second = report_for_period(s, second_since, until, min_submissions=10, model=ThemeModel(n_themes=3))
    assert {t.id for t in first.themes} <= {k.key for k in known}

    def by_subject(report: ThemeReport) -> dict[str, Any]:
        return {
            key: next(t for t in report.themes if {ex.case_id for ex in t.examples} <= set(staged[key]))
            for key in THEMES
        }

    before, after = by_subject(first), by_subject(second)
    for key in THEMES:
        assert after[key].id == before[key].id and after[key].label == before[key].label, key
    assert len({t.id for t in second.themes}) == 3
    # a period far from every kept theme starts afresh
    with db.read() as s:
        assert known_themes(s, date(2020, 1, 6), date(2020, 3, 29)) == []
