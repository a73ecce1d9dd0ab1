"""The evidence panel of a systemic theme, from a real database (SQLite and PostgreSQL) and the real
catalogue: agencies and their cases, provinces, fields, masked texts, and the CSV / Markdown exports.

Vectors are built around three fixed directions (one per theme) so the test checks what the panel
says about stored rows; clustering of real text is tested in tests/triage/nlp/test_themes.py.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from tests.db import minimal_submission
from triage.cases.theme_evidence import SPANS_AGENCIES, SPANS_PROVINCES, UTF8_BOM, ThemeEvidence, to_csv
from triage.cases.theme_report import (
    ThemeReport,
    ThemeSummary,
    evidence_panel,
    export_evidence,
    report_for_period,
)
from triage.errors import InvalidInput, NotFound
from triage.nlp.agencies import default_registry
from triage.nlp.agency_router import shared_procedure_router
from triage.nlp.themes import ThemeModel
from triage.store.db import Database, sync_agencies
from triage.store.tables import Case
from triage.store.vectors import to_bytes

START = date(2023, 1, 2)  # a Monday; no other test of this module's database uses early 2023
WEEKS = 4
UNTIL = START + timedelta(weeks=WEEKS) - timedelta(days=1)
PHONE = "0912 345 678"
# key: title, content, agency per n, province code given per n, routed field per n
THEMES = {
    # several ministries and provinces: the systemic theme; the citizen gave a province
    "flood": (
        "Ngập úng đô thị",
        f"Ông Nguyễn Văn Hùng phản ánh đường phố ngập sâu sau mưa lớn, cống thoát nước quá tải, gọi {PHONE}",
        lambda n: "BXD" if n % 2 else "BNNMT",
        lambda n: "P-HN" if n % 3 else "P-HCM",
        lambda n: "Hạ tầng kỹ thuật" if n % 2 else None,
    ),
    # one ministry, one province: no panel
    "permit": (
        "Cấp phép xây dựng",
        "Thủ tục cấp giấy phép xây dựng nhà ở kéo dài quá hạn quy định",
        lambda n: "BXD",
        lambda n: "P-DN",
        lambda n: "Hoạt động xây dựng",
    ),
    # not routed yet, provinces named in the text only: spans provinces; fields from the catalogue
    "tax": (
        "Hoàn thuế thu nhập cá nhân",
        "Hồ sơ đề nghị hoàn thuế thu nhập cá nhân nộp tại {place} đã lâu nhưng chưa được giải quyết",
        lambda n: None,
        lambda n: None,
        lambda n: None,
    ),
}


def _stage(db: Database) -> None:
    sync_agencies(db)
    rng = np.random.default_rng(1)
    directions = {k: rng.normal(size=32) for k in THEMES}
    with db.session() as s:
        n = 0
        for week in range(WEEKS):
            for key, (title, content, agency, province, field) in THEMES.items():
                for _ in range(8):
                    n += 1
                    at = datetime.combine(START + timedelta(days=7 * week + n % 7), datetime.min.time(), UTC)
                    at += timedelta(hours=5)
                    case = Case(
                        state="triaged",
                        kind="phan_anh",
                        received_at=at,
                        updated_at=at,
                        agency_code=agency(n),
                        field=field(n),
                    )
                    s.add(case)
                    s.flush()
                    vec = directions[key] + 0.3 * rng.normal(size=32)
                    text = content.format(place="Hà Nội" if n % 2 else "Đà Nẵng") + f" (lần {n})"
                    s.add(
                        minimal_submission(
                            case.id,
                            f"PAKN-EVID{n:05d}",
                            title=title,
                            content=text,
                            province_code=province(n),
                            embedding=to_bytes(vec / np.linalg.norm(vec)),
                            created_at=at,
                        )
                    )


@pytest.fixture(scope="module")
def report(db: Database) -> ThemeReport:
    _stage(db)
    catalogue = shared_procedure_router(None, default_registry())  # the real catalogue, words only
    with db.read() as s:
        return report_for_period(s, START, UNTIL, min_submissions=10, model=ThemeModel(n_themes=3), catalogue=catalogue)


def _theme(report: ThemeReport, word: str) -> ThemeSummary:
    return next(t for t in report.themes if word in " ".join(t.keywords).lower())


def test_a_theme_across_agencies_and_provinces_gets_its_panel(report: ThemeReport) -> None:
    flood = _theme(report, "ngập")
    e = flood.evidence
    assert isinstance(e, ThemeEvidence)
    assert set(e.spans) == {SPANS_AGENCIES, SPANS_PROVINCES} and e.cases == flood.size >= 28  # a few outliers
    agencies = {a.code: a.count for a in e.agencies}
    assert set(agencies) == {"BXD", "BNNMT"} and sum(agencies.values()) == e.cases and e.unassigned == 0
    assert all(a.name and a.name != a.code for a in e.agencies)  # names, not codes
    provinces = {p.code: p.count for p in e.provinces}
    assert set(provinces) == {"P-HN", "P-HCM"} and sum(provinces.values()) == e.cases
    # routed cases keep their field; the others take the nearest catalogue procedure's (urban flooding)
    fields = {f.name: f.count for f in e.fields}
    assert fields["Hạ tầng kỹ thuật"] == e.fields_routed == agencies["BXD"]
    assert sum(fields.values()) == e.fields_routed + e.fields_from_catalogue <= e.cases
    # one representative per agency first, each masked as analysts see it: no name, no phone
    assert {t.agency for t in e.texts} == {a.name for a in e.agencies} and 2 <= len(e.texts) <= 6
    for t in e.texts:
        assert "0912" not in t.text and "Hùng" not in t.text and "[SĐT]" in t.text


def test_provinces_named_in_the_text_and_fields_from_the_catalogue(report: ThemeReport) -> None:
    tax = _theme(report, "thuế")
    e = tax.evidence
    assert e is not None and e.spans == (SPANS_PROVINCES,)  # no agency yet, two provinces named
    provinces = {p.code: p.count for p in e.provinces}
    assert set(provinces) == {"P-HN", "P-DN"} and sum(provinces.values()) == e.cases == tax.size >= 28
    assert e.unassigned == e.cases and e.agencies == ()
    assert e.fields_routed == 0 and e.fields_from_catalogue == e.cases  # every case matched a procedure
    assert e.procedures and "thuế" in e.procedures[0].name.lower()
    assert any("thuế" in f.name.lower() for f in e.fields), e.fields


def test_a_theme_of_one_agency_and_one_province_has_none(report: ThemeReport) -> None:
    permit = _theme(report, "phép")
    assert permit.evidence is None and not permit.systemic
    with pytest.raises(NotFound):
        evidence_panel(report, permit.id)
    with pytest.raises(NotFound):
        evidence_panel(report, 999)


def test_exports_for_a_memo(report: ThemeReport) -> None:
    flood = _theme(report, "ngập")
    content, media, name = export_evidence(report, flood.id, "csv")
    assert content.startswith(UTF8_BOM) and media.startswith("text/csv") and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(content.removeprefix(UTF8_BOM))))
    assert rows[0][0] == "Mục" and rows[1][2] == flood.label
    agencies = {r[1]: int(r[3]) for r in rows if r[0] == "Cơ quan"}
    assert flood.evidence is not None and agencies == {a.code: a.count for a in flood.evidence.agencies}
    texts = [r for r in rows if r[0] == "Phản ánh tiêu biểu"]
    assert texts and all("0912" not in r[-1] and "[SĐT]" in r[-1] for r in texts)
    assert content.encode("utf-8").decode("utf-8-sig") == content.removeprefix(UTF8_BOM)  # what Excel reads
    # A citizen's text that would start a formula in Excel is written as text.
    crafted = replace(flood.evidence, texts=(replace(flood.evidence.texts[0], text='=HYPERLINK("http://x")'),))
    cell = next(
        r
        for r in csv.reader(io.StringIO(to_csv(flood.label, [], START, START, crafted).removeprefix(UTF8_BOM)))
        if r[0] == "Phản ánh tiêu biểu"
    )[-1]
    assert cell == '\'=HYPERLINK("http://x")'
    md, media, name = export_evidence(report, flood.id, "md")
    assert media.startswith("text/markdown") and name.endswith(".md")
    bxd = next(a.count for a in flood.evidence.agencies if a.code == "BXD")
    assert md.startswith(f"## Chủ đề liên ngành: {flood.label}") and f"| Bộ Xây dựng | {bxd} |" in md
    quoted = md[md.index("Phản ánh tiêu biểu") :]
    assert "0912" not in md and "Hùng" not in quoted and "\\[SĐT\\]" in quoted  # tags escaped, not links
    with pytest.raises(InvalidInput):
        export_evidence(report, flood.id, "pdf")
