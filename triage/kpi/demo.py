"""A living dashboard in one command: two years of quarterly reports for a dozen agencies (deterministic).

The figures follow simple trends chosen so the dashboard has something to say: some strategic goals
on track, some off track; one agency (Cần Thơ) stops reporting, one (Bộ Y tế) reports late and its
disbursement stalls; one figure is a tenfold jump (an outlier), one online count exceeds its total (a
validation rule breaks), one report is returned. Everything goes through ``reports.submit`` and
``reports.review``, so the audit trail and the checks are the real ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from triage.cases.accounts import Principal, Role
from triage.cases.calendar import WorkingCalendar
from triage.kpi import reports
from triage.kpi.periods import Period
from triage.kpi.registry import Registry
from triage.kpi.reports import EvidenceIn, EvidenceStore
from triage.kpi.workflow import ReportAction, ReportState
from triage.store.db import Database
from triage.store.kpi_tables import KpiReport

QUARTERS = 8
SILENT = "P-CT"  # stops reporting for the last two quarters
LATE = "BYT"  # reports a week after the deadline
OUTLIER = ("O_DOSSIERS_TOTAL", "P-DN")  # tenfold jump in the last quarter
BROKEN = ("O_DOSSIERS_ONLINE", "P-HP")  # online above total in the last quarter
RETURNED = ("O_SCHOLARS", "P-HN")  # returned by the coordinator in the last quarter

# indicator -> f(agency, t, rng) with t = quarters since the first one
_BASE: dict[str, float] = {
    "BKHCN": 1.4,
    "BGDDT": 1.0,
    "BYT": 0.8,
    "BCT": 0.7,
    "P-HN": 1.2,
    "P-HCM": 1.5,
    "P-DN": 0.5,
    "P-HP": 0.6,
    "P-CT": 0.4,
    "BCA": 1.3,
    "BTC": 1.1,
    "VPCP": 0.9,
}


def _series(code: str, agency: str, t: int, rng: random.Random) -> float:
    b = _BASE.get(agency, 1.0)
    noise = rng.gauss(0, 1)
    match code:
        case "O_RD_GDP":
            return round(0.45 + 0.03 * t + 0.01 * noise, 3)
        case "O_RD_DISBURSED":
            growth = 0.0 if agency == LATE else 0.06
            return round(400 * b * (1 + growth * t) + 15 * noise, 1)
        case "O_BUDGET_SHARE":
            return round(1.6 + 0.1 * t + 0.03 * noise, 2)
        case "O_DIGITAL_ECONOMY":
            return round(18.5 + 0.3 * t + 0.1 * noise, 2)
        case "O_DIGITAL_FIRMS":
            step = 2 if agency == SILENT else 40
            return float(round(800 * b + step * b * t))
        case "O_INNOVATIVE_FIRMS":
            return round(min(99.0, 26 + 0.6 * t + 0.8 * noise + 2 * (b - 1)), 1)
        case "O_FIRMS_SURVEYED":
            return float(round(300 * b))
        case "O_DOSSIERS_TOTAL":
            return float(round(120_000 * b + 3_000 * t + 2_000 * noise))
        case "O_ONLINE_RATE":
            return round(min(99.0, 46 + 1.6 * t + 0.8 * noise), 1)
        case "O_FULL_ONLINE_PROCS":
            return float(round(300 * b + 25 * t))
        case "O_RD_STAFF":
            return round(7.9 + 0.12 * t + 0.02 * noise, 2)
        case "O_SCHOLARS":
            return float(max(0, round(6 * b + 0.5 * t + noise)))
        case "O_LAWS_DONE":
            done_at = {"BKHCN": 2, "BTC": 5}.get(agency)
            return 1.0 if done_at is not None and t >= done_at else 0.0
        case "O_INTL_AGREEMENTS":
            return float(round(2 * b * (t + 1)))
    return round(b * (1 + 0.05 * t), 2)


@dataclass(frozen=True)
class DemoResult:
    periods: list[str]
    submitted: int
    missing: int
    returned: int


def seed(
    db: Database,
    registry: Registry,
    *,
    today: date,
    calendar: WorkingCalendar,
    evidence_root: Path,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Make reports due for the last ``QUARTERS`` closed quarters and fill them as described above."""
    last = Period.containing(today, "quarter").shift(-1)
    while reports.report_deadline(last, registry.programme.report_days, calendar) >= today:
        last = last.shift(-1)
    first = last.shift(-(QUARTERS - 1))
    db.transaction(lambda s: reports.make_due(s, registry, today, calendar, first=str(first)))
    store = EvidenceStore(root=evidence_root)
    coordinator = Principal(None, "demo-vpTW", Role.COORDINATOR)
    rng = random.Random(57)
    submitted = missing = returned = 0
    quarters = [first.shift(i) for i in range(QUARTERS)]
    for t, q in enumerate(quarters):
        recent = t >= QUARTERS - 1
        with db.session() as s:
            rows = list(
                s.scalars(
                    select(KpiReport)
                    .where(KpiReport.period.in_([str(q), str(q.year)]), KpiReport.state == ReportState.DUE.value)
                    .order_by(KpiReport.indicator, KpiReport.agency_code)
                )
            )
            for report in rows:
                period = Period.parse(report.period)
                if period.frequency == "year" and q.index % 4 != 3:
                    continue  # the yearly figure comes with the fourth quarter
                if report.agency_code == SILENT and t >= QUARTERS - 2:
                    missing += 1
                    continue
                if period.frequency == "year":
                    value: float = float(round(71 - 3 * (period.year - 2024) + rng.gauss(0, 1)))
                else:
                    value = _series(report.indicator, report.agency_code, t, rng)
                if report.indicator == "O_DOSSIERS_ONLINE":
                    total = _series("O_DOSSIERS_TOTAL", report.agency_code, t, random.Random(t))
                    rate = _series("O_ONLINE_RATE", report.agency_code, t, random.Random(t + 1000))
                    value = float(round(total * rate / 100))
                    if recent and report.agency_code == BROKEN[1]:
                        value = float(round(total * 1.2))
                if recent and (report.indicator, report.agency_code) == OUTLIER:
                    value = value * 10
                late = report.agency_code == LATE
                sent_day = report.due_date + timedelta(days=7) if late else report.due_date - timedelta(days=3)
                at = datetime.combine(sent_day, time(9, 0), tzinfo=UTC)
                who = Principal(None, f"demo-{report.agency_code.lower()}", Role.REPORTER, report.agency_code)
                link = f"https://baocao.example.gov.vn/r57/{report.agency_code}/{report.indicator}/{report.period}"
                reports.submit(
                    s,
                    who,
                    registry,
                    report.id,
                    value=value,
                    note=f"Số liệu {period.label} do {report.agency_code} tổng hợp.",
                    evidence=[EvidenceIn(name="Báo cáo kỳ", url=link)],
                    store=store,
                    now=at,
                )
                submitted += 1
                review_at = at + timedelta(days=2)
                if recent and (report.indicator, report.agency_code) == RETURNED:
                    reports.review(
                        s,
                        coordinator,
                        report.id,
                        ReportAction.RETURN,
                        now=review_at,
                        reason="Đề nghị bổ sung danh sách chuyên gia kèm quyết định tiếp nhận.",
                    )
                    returned += 1
                elif not recent:
                    reports.review(s, coordinator, report.id, ReportAction.VERIFY, now=review_at)
                    reports.review(s, coordinator, report.id, ReportAction.LOCK, now=review_at)
        if progress is not None:
            progress(f"{q.label}: xong")
    return DemoResult([str(q) for q in quarters], submitted, missing, returned)
