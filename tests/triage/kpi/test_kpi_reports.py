"""Reports on SQLite and PostgreSQL: due dates, every move, versions, evidence in the audit trail, scoping,
planted data errors (a part above its total, a falling cumulative count, a tenfold jump), reporting rates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from triage.cases import audit
from triage.cases.accounts import Principal, Role
from triage.cases.calendar import default_calendar
from triage.errors import InvalidInput, InvalidTransition, NotFound, PermissionDenied
from triage.kpi import quality, reports
from triage.kpi.registry import load_registry
from triage.kpi.reports import EvidenceIn, EvidenceStore, ReportFilter
from triage.store.db import Database
from triage.store.kpi_tables import KpiEvidence, KpiReport
from triage.store.tables import Event

REG = load_registry()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HN = Principal(10, "bc-hn", Role.REPORTER, "P-HN")
HCM = Principal(11, "bc-hcm", Role.REPORTER, "P-HCM")
COORD = Principal(12, "dieuphoi", Role.COORDINATOR)
LEADER = Principal(13, "lanhdao", Role.LEADER)
LINK = [EvidenceIn(name="Cổng DVC", url="https://dichvucong.gov.vn/bao-cao")]


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(root=tmp_path / "evidence")


def _due(db: Database, first: str, today: date) -> int:
    return db.transaction(lambda s: reports.make_due(s, REG, today, default_calendar(), first=first))


def _report(db: Database, indicator: str, agency: str, period: str) -> int:
    with db.read() as s:
        return int(
            s.scalar(
                select(KpiReport.id).where(
                    KpiReport.indicator == indicator, KpiReport.agency_code == agency, KpiReport.period == period
                )
            )
        )


def _submit(db: Database, who: Principal, rid: int, value: float, store: EvidenceStore, **kw: object) -> KpiReport:
    kw.setdefault("evidence", LINK)
    kw.setdefault("note", "ghi chú")
    return db.transaction(lambda s: reports.submit(s, who, REG, rid, value=value, store=store, **kw))  # type: ignore[arg-type]


def test_due_reports_full_cycle_versions_and_evidence_in_the_audit_trail(
    empty_db: Database, store: EvidenceStore
) -> None:
    today = date(2025, 4, 20)
    created = _due(empty_db, "2025-Q1", today)
    expected = sum(len(o.agencies) for o in REG.operational if o.period == "quarter")
    assert created == expected and _due(empty_db, "2025-Q1", today) == 0  # idempotent
    rid = _report(empty_db, "O_ONLINE_RATE", "P-HN", "2025-Q1")
    with empty_db.read() as s:
        row = s.get(KpiReport, rid)
        assert row is not None and (row.state, row.due_date) == ("due", date(2025, 4, 15))

    with pytest.raises(InvalidInput, match="minh chứng"):
        _submit(empty_db, HN, rid, 50.0, store, evidence=[])
    _submit(empty_db, HN, rid, 50.0, store, evidence=[EvidenceIn(name="bao-cao.pdf", data=PDF), *LINK])
    with pytest.raises(PermissionDenied):
        empty_db.transaction(lambda s: reports.review(s, HN, rid, "verify"))
    with pytest.raises(InvalidInput, match="reason"):
        empty_db.transaction(lambda s: reports.review(s, COORD, rid, "return"))
    empty_db.transaction(lambda s: reports.review(s, COORD, rid, "return", reason="Thiếu quyết định kèm theo"))
    _submit(empty_db, HN, rid, 52.5, store)  # resubmitted: the earlier evidence still backs it
    with pytest.raises(InvalidTransition):
        empty_db.transaction(lambda s: reports.review(s, COORD, rid, "lock"))
    empty_db.transaction(lambda s: reports.review(s, COORD, rid, "verify"))
    empty_db.transaction(lambda s: reports.review(s, COORD, rid, "lock"))
    with pytest.raises(InvalidInput, match="reason"):
        _submit(empty_db, HN, rid, 53.0, store)
    _submit(empty_db, HN, rid, 53.0, store, reason="Cục Thống kê điều chỉnh số liệu chính thức")
    with empty_db.read() as s:
        row = s.get(KpiReport, rid)
        assert row is not None and (row.state, row.version, row.value) == ("submitted", 3, 53.0)
        hist = reports.versions(s, rid)
        assert [(v.version, v.value, v.reason) for v in hist] == [
            (1, 50.0, None),
            (2, 52.5, None),
            (3, 53.0, "Cục Thống kê điều chỉnh số liệu chính thức"),
        ]
        ev = reports.evidence_of(s, rid)
        assert [(e.kind, e.version) for e in ev] == [("file", 1), ("link", 1), ("link", 2), ("link", 3)] and ev[
            0
        ].media_type == "application/pdf"
        assert Path(ev[0].path or "").read_bytes() == PDF
        actions = [e.action for e in s.scalars(select(Event).order_by(Event.seq))]
        assert actions[-6:] == ["kpi_submit", "kpi_return", "kpi_submit", "kpi_verify", "kpi_lock", "kpi_correct"]
        report = audit.verify(s)
        assert report.ok, report.lines()
        file_row = ev[0]
    Path(file_row.path or "").write_bytes(PDF + b"sua")  # the file is swapped on disk
    with empty_db.read() as s:
        assert any("was changed" in p.detail for p in audit.verify(s).problems)
    with empty_db.session() as s:
        s.execute(update(KpiEvidence).where(KpiEvidence.id == ev[1].id).values(sha256="0" * 64))
    with empty_db.read() as s:
        assert any(f"evidence {ev[1].id}: its hash was edited" in p.detail for p in audit.verify(s).problems)


def test_scoping_other_agency_is_not_found_and_roles_are_enforced(empty_db: Database, store: EvidenceStore) -> None:
    _due(empty_db, "2025-Q1", date(2025, 4, 20))
    rid = _report(empty_db, "O_ONLINE_RATE", "P-HN", "2025-Q1")
    with pytest.raises(NotFound):
        _submit(empty_db, HCM, rid, 40.0, store)
    with empty_db.read() as s, pytest.raises(NotFound):
        reports.get_report(s, HCM, rid)
    with pytest.raises(PermissionDenied):
        _submit(empty_db, COORD, rid, 40.0, store)
    with pytest.raises(PermissionDenied):
        _submit(empty_db, LEADER, rid, 40.0, store)
    with empty_db.read() as s:
        assert reports.get_report(s, LEADER, rid).id == rid  # leaders read
        with pytest.raises(PermissionDenied):
            reports.get_report(s, Principal(1, "clerk", Role.CLERK), rid)


def test_planted_errors_are_flagged_not_refused(empty_db: Database, store: EvidenceStore) -> None:
    today = date(2026, 10, 20)
    _due(empty_db, "2025-Q1", today)
    quarters = ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]
    for i, q in enumerate(quarters[:-1]):
        _submit(empty_db, HN, _report(empty_db, "O_DOSSIERS_TOTAL", "P-HN", q), 1000 + 10 * i, store)
        _submit(empty_db, HN, _report(empty_db, "O_FULL_ONLINE_PROCS", "P-HN", q), 300 + 20 * i, store)
    last = quarters[-1]
    jump = _submit(empty_db, HN, _report(empty_db, "O_DOSSIERS_TOTAL", "P-HN", last), 10_600, store)
    assert jump.flags and jump.flags["outlier"]["median"] == 1025.0 and jump.state == "submitted"
    part = _submit(empty_db, HN, _report(empty_db, "O_DOSSIERS_ONLINE", "P-HN", last), 12_000, store)
    assert part.flags and [v["rule"] for v in part.flags["violations"]] == ["VR_ONLINE_LE_TOTAL"]
    fall = _submit(empty_db, HN, _report(empty_db, "O_FULL_ONLINE_PROCS", "P-HN", last), 350, store)
    assert fall.flags and [v["rule"] for v in fall.flags["violations"]] == ["VR_PROCS_NON_DECREASING"]
    assert fall.flags["outlier"] is not None  # the increment -50 is far from +20 every quarter
    normal = _submit(empty_db, HN, _report(empty_db, "O_ONLINE_RATE", "P-HN", last), 50, store)
    assert normal.flags is None
    with empty_db.read() as s:
        found = {(a, v.rule, v.period) for a, v in quality.validate_all(s, REG)}
    assert ("P-HN", "VR_ONLINE_LE_TOTAL", last) in found and ("P-HN", "VR_PROCS_NON_DECREASING", last) in found


def test_reporting_rates_and_overdue_escalation(empty_db: Database, store: EvidenceStore) -> None:
    today = date(2025, 7, 25)  # Q1 and Q2 due (15/04 and 14/07)
    _due(empty_db, "2025-Q1", today)
    on_time = _report(empty_db, "O_ONLINE_RATE", "P-HN", "2025-Q1")
    late = _report(empty_db, "O_ONLINE_RATE", "P-HN", "2025-Q2")
    _submit(empty_db, HN, on_time, 50, store, now=_at(date(2025, 4, 10)))
    _submit(empty_db, HN, late, 51, store, now=_at(date(2025, 7, 20)))
    with empty_db.read() as s:
        rates = quality.reporting_rates(s, today)[("P-HN", "*")]
        per_hn = sum(1 for o in REG.operational if "P-HN" in o.agencies and o.period == "quarter")
        assert (rates.expected, rates.complete, rates.on_time, rates.late) == (2 * per_hn, 2, 1, 1)
        assert rates.missing == 2 * per_hn - 2
    first = empty_db.transaction(lambda s: [r.id for r in reports.escalate(s, today)])
    again = empty_db.transaction(lambda s: reports.escalate(s, today))
    assert on_time not in first and late not in first and len(first) > 0 and again == []
    with empty_db.read() as s:
        assert s.scalar(select(Event).where(Event.action == "kpi_overdue").limit(1)) is not None


def test_evidence_files_are_checked(tmp_path: Path) -> None:
    from triage.kpi.evidence import EVIDENCE_TYPES, link_digest, store_evidence
    from triage.store.files import UploadPolicy

    policy = UploadPolicy(max_file_bytes=1024, types=EVIDENCE_TYPES)
    one = store_evidence(PDF, name="a.pdf", root=tmp_path, policy=policy)
    assert one.media_type == "application/pdf"
    assert store_evidence(PDF, name="b.pdf", root=tmp_path, policy=policy).path == one.path  # stored once
    with pytest.raises(InvalidInput, match="không phải loại tệp"):
        store_evidence(b"MZ\x90\x00 a program", name="bao-cao.pdf", root=tmp_path, policy=policy)
    with pytest.raises(InvalidInput, match="vượt quá"):
        store_evidence(PDF * 100, name="a.pdf", root=tmp_path, policy=policy)
    with pytest.raises(InvalidInput, match="liên kết"):
        link_digest("javascript:alert(1)")
    assert len(link_digest("https://example.gov.vn/a")) == 64


def test_find_reports_scopes_to_the_agency_and_filters(empty_db: Database, store: EvidenceStore) -> None:
    _due(empty_db, "2025-Q1", date(2025, 4, 20))
    rid = _report(empty_db, "O_ONLINE_RATE", "P-HN", "2025-Q1")
    _submit(empty_db, HN, rid, 50.0, store)
    with empty_db.read() as s:
        total_hn, rows_hn = reports.find_reports(s, HN)
        total_all, _ = reports.find_reports(s, COORD, limit=1)
        submitted = reports.find_reports(s, COORD, ReportFilter(state="submitted"))
        other = reports.find_reports(s, HN, ReportFilter(agency="P-HCM"))
        page = reports.find_reports(s, COORD, ReportFilter(period="2025-Q1"), limit=2, offset=1)
        with pytest.raises(InvalidInput):
            reports.find_reports(s, COORD, ReportFilter(period="quý một"))
    assert total_hn == len(rows_hn) > 0 and {r.agency_code for r in rows_hn} == {"P-HN"}
    assert total_all > total_hn  # the coordinator sees every agency's, counted beyond the page
    assert submitted[0] == 1 and [r.id for r in submitted[1]] == [rid]
    assert other == (0, [])  # a reporter asking for another agency gets nothing, not that agency's
    assert page[0] == total_all and len(page[1]) == 2
