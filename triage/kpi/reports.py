"""Periodic reports: make them due, submit figures with evidence, verify, return, lock, correct, escalate.

Every function runs inside the caller's transaction and writes one audit event per action, with the
figure, the version and the SHA-256 of each piece of evidence, so ``triage audit verify`` can tell
whether an evidence row or file was changed later. A reporter acts on its own agency's reports only:
another agency's report does not exist for it (NotFound, as for cases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.accounts import Principal
from triage.cases.calendar import WorkingCalendar, to_local_date
from triage.errors import InvalidInput, NotFound
from triage.kpi import quality
from triage.kpi.evidence import EVIDENCE_TYPES, link_digest, store_evidence
from triage.kpi.periods import Period, closed_periods
from triage.kpi.registry import Registry
from triage.kpi.workflow import PERMISSION, ReportAction, ReportState, apply, report_deadline
from triage.store.files import UploadPolicy
from triage.store.kpi_tables import KpiEvidence, KpiReport, KpiReportVersion
from triage.store.tables import utcnow

MAX_NOTE = 4000


@dataclass(frozen=True)
class EvidenceIn:
    """One piece of evidence as sent: a file's bytes (with its name) or a link."""

    name: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class EvidenceStore:
    """Where evidence files go (the upload store's folder) and what is taken (the upload policy)."""

    root: Path
    policy: UploadPolicy = field(default_factory=lambda: UploadPolicy(max_files=5, types=EVIDENCE_TYPES))


def get_report(session: Session, who: Principal, report_id: int, *, for_update: bool = False) -> KpiReport:
    """The report if this account may see it; NotFound otherwise (also for another agency's report)."""
    who.require("kpi.read")
    stmt = select(KpiReport).where(KpiReport.id == report_id)
    if for_update:
        stmt = stmt.with_for_update()
    report = session.scalar(stmt)
    if report is None or not who.sees(report.agency_code):
        raise NotFound(f"no report {report_id}")
    return report


def make_due(
    session: Session, registry: Registry, today: date, calendar: WorkingCalendar, *, first: str | None = None
) -> int:
    """Create the reports due for every closed period since the programme started (or ``first``); idempotent."""
    existing = set(session.execute(select(KpiReport.indicator, KpiReport.agency_code, KpiReport.period)).tuples())
    created = 0
    for op in registry.operational:
        start = Period.parse(first) if first else Period.containing(registry.programme.issued, op.period).shift(1)
        if start.frequency != op.period:
            start = Period.containing(start.first_day(), op.period)
        for period in closed_periods(op.period, start, today):
            due = report_deadline(period, registry.programme.report_days, calendar)
            for agency in op.agencies:
                if (op.code, agency, str(period)) in existing:
                    continue
                session.add(
                    KpiReport(
                        indicator=op.code,
                        agency_code=agency,
                        period=str(period),
                        state=ReportState.DUE.value,
                        due_date=due,
                        version=0,
                    )
                )
                created += 1
    if created:
        audit.record(session, actor="system", action="kpi_due", after={"created": created, "today": today})
    return created


def _check_value(registry: Registry, indicator: str, value: float) -> float:
    op = registry.operational_by_code(indicator)
    if not math.isfinite(value):
        raise InvalidInput("giá trị phải là một số hữu hạn")
    if op.aggregation == "all_done" and value not in (0.0, 1.0):
        raise InvalidInput("chỉ tiêu dạng hoàn thành/chưa hoàn thành: nhập 1 (đã xong) hoặc 0 (chưa xong)")
    if value < 0 and op.direction == "higher" and op.unit not in ("%",):
        raise InvalidInput("giá trị không được âm")
    return float(value)


def _add_evidence(
    session: Session, report: KpiReport, items: list[EvidenceIn], store: EvidenceStore, actor: str
) -> list[KpiEvidence]:
    rows: list[KpiEvidence] = []
    for item in items:
        name = (item.name or "").strip()[:255] or "minh-chung"
        if (item.data is None) == (item.url is None):
            raise InvalidInput("mỗi minh chứng là một tệp hoặc một liên kết")
        if item.data is not None:
            stored = store_evidence(item.data, name=name, root=store.root, policy=store.policy)
            row = KpiEvidence(
                report_id=report.id,
                version=report.version,
                kind="file",
                name=name,
                path=str(stored.path),
                media_type=stored.media_type,
                size=stored.size,
                sha256=stored.sha256,
                added_by=actor,
            )
        else:
            url = (item.url or "").strip()
            row = KpiEvidence(
                report_id=report.id,
                version=report.version,
                kind="link",
                name=name or url[:255],
                url=url,
                sha256=link_digest(url),
                added_by=actor,
            )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _key(report: KpiReport) -> dict[str, Any]:
    return {
        "report_id": report.id,
        "indicator": report.indicator,
        "agency": report.agency_code,
        "period": report.period,
        "version": report.version,
        "state": report.state,
    }


def _evidence_refs(rows: list[KpiEvidence]) -> list[dict[str, Any]]:
    return [{"evidence_id": e.id, "kind": e.kind, "name": e.name, "sha256": e.sha256} for e in rows]


def submit(
    session: Session,
    who: Principal,
    registry: Registry,
    report_id: int,
    *,
    value: float,
    note: str | None,
    evidence: list[EvidenceIn],
    store: EvidenceStore,
    reason: str | None = None,
    outlier_z: float = 3.5,
    now: datetime | None = None,
) -> KpiReport:
    """Enter (or re-enter after a return, or correct after locking) a figure with its evidence.

    A new version is written each time; the rules and the outlier check run on entry and their
    findings are kept on the report (flagged, not refused). A figure needs evidence: attached now, or
    already on the report from an earlier version.
    """
    report = get_report(session, who, report_id, for_update=True)
    action = ReportAction.CORRECT if report.state == ReportState.LOCKED.value else ReportAction.SUBMIT
    who.require(PERMISSION[action])
    new_state = apply(report.state, action, reason=reason)
    the_value = _check_value(registry, report.indicator, value)
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"ghi chú tiến độ tối đa {MAX_NOTE} ký tự")
    had_evidence = session.scalar(select(KpiEvidence.id).where(KpiEvidence.report_id == report.id).limit(1))
    if not evidence and had_evidence is None:
        raise InvalidInput("mỗi số liệu cần ít nhất một minh chứng (tệp hoặc liên kết)")
    at = now or utcnow()
    before = _key(report)
    report.version += 1
    report.state, report.value, report.note = new_state.value, the_value, text or None
    report.submitted_at, report.updated_at, report.returned_reason = at, at, None
    if report.first_submitted_at is None:
        report.first_submitted_at = at
    session.add(
        KpiReportVersion(
            report_id=report.id,
            version=report.version,
            value=the_value,
            note=text or None,
            reason=(reason or "").strip() or None,
            author=who.username,
            at=at,
        )
    )
    rows = _add_evidence(session, report, evidence, store, who.username)
    violations = quality.validate(session, registry, report.agency_code, report.indicator, report.period)
    flag = quality.outlier(session, registry, report.agency_code, report.indicator, report.period, the_value, outlier_z)
    report.flags = {"violations": [v.as_dict() for v in violations], "outlier": flag} if violations or flag else None
    late = to_local_date(at) > report.due_date
    audit.record(
        session,
        actor=who.username,
        action=f"kpi_{action.value}",
        before=before,
        after={
            **_key(report),
            "value": the_value,
            "note": text or None,
            "reason": reason,
            "evidence": _evidence_refs(rows),
            "late": late,
            "flags": report.flags,
        },
        at=at,
    )
    return report


def add_evidence(
    session: Session, who: Principal, report_id: int, items: list[EvidenceIn], store: EvidenceStore
) -> list[KpiEvidence]:
    """Attach more evidence to the current version (before it is verified)."""
    report = get_report(session, who, report_id, for_update=True)
    who.require("kpi.submit")
    if report.state not in (ReportState.DUE.value, ReportState.SUBMITTED.value, ReportState.RETURNED.value):
        raise InvalidInput("chỉ bổ sung minh chứng khi báo cáo chưa được xác minh")
    rows = _add_evidence(session, report, items, store, who.username)
    audit.record(
        session, actor=who.username, action="kpi_evidence", after={**_key(report), "evidence": _evidence_refs(rows)}
    )
    return rows


def review(
    session: Session,
    who: Principal,
    report_id: int,
    action: ReportAction | str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> KpiReport:
    """Verify, return (with what to fix) or lock a report: the coordinating office's moves."""
    act = ReportAction(action)
    if act not in (ReportAction.VERIFY, ReportAction.RETURN, ReportAction.LOCK):
        raise InvalidInput(f"{act.value} is not a review action")
    report = get_report(session, who, report_id, for_update=True)
    who.require(PERMISSION[act])
    new_state = apply(report.state, act, reason=reason)
    before = _key(report)
    at = now or utcnow()
    report.state, report.updated_at = new_state.value, at
    if act is ReportAction.RETURN:
        report.returned_reason = (reason or "").strip()
    audit.record(
        session,
        actor=who.username,
        action=f"kpi_{act.value}",
        before=before,
        after={**_key(report), "value": report.value, "reason": reason},
        at=at,
    )
    return report


def versions(session: Session, report_id: int) -> list[KpiReportVersion]:
    return list(
        session.scalars(
            select(KpiReportVersion).where(KpiReportVersion.report_id == report_id).order_by(KpiReportVersion.version)
        )
    )


@dataclass(frozen=True)
class ReportFilter:
    """Which reports a list shows (None: any); ``period`` as written ("2025-Q3"), parsed by ``find_reports``."""

    agency: str | None = None
    period: str | None = None
    state: str | None = None
    indicator: str | None = None


def find_reports(
    session: Session, who: Principal, where: ReportFilter = ReportFilter(), *, limit: int = 100, offset: int = 0
) -> tuple[int, list[KpiReport]]:
    """Reports ``who`` may see (a reporter: its agency's), latest deadline first, and how many match in all.

    One query for the API's list and the report pages, so both scope and filter alike. A malformed
    ``where.period`` is InvalidInput.
    """
    stmt = select(KpiReport)
    if who.scoped:
        stmt = stmt.where(KpiReport.agency_code == who.agency_code)
    if where.agency:
        stmt = stmt.where(KpiReport.agency_code == where.agency)
    if where.period:
        stmt = stmt.where(KpiReport.period == str(Period.parse(where.period)))
    if where.state:
        stmt = stmt.where(KpiReport.state == where.state)
    if where.indicator:
        stmt = stmt.where(KpiReport.indicator == where.indicator)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(stmt.order_by(KpiReport.due_date.desc(), KpiReport.id).limit(limit).offset(offset))
    return total, list(rows)


def evidence_of(session: Session, report_id: int) -> list[KpiEvidence]:
    return list(session.scalars(select(KpiEvidence).where(KpiEvidence.report_id == report_id).order_by(KpiEvidence.id)))


def overdue(session: Session, today: date) -> list[KpiReport]:
    """Reports past their deadline with no figure yet (due) or still waiting to be fixed (returned)."""
    stmt = select(KpiReport).where(
        KpiReport.state.in_([ReportState.DUE.value, ReportState.RETURNED.value]), KpiReport.due_date < today
    )
    return list(session.scalars(stmt.order_by(KpiReport.due_date, KpiReport.id)))


def escalate(session: Session, today: date, *, now: datetime | None = None) -> list[KpiReport]:
    """Mark newly overdue reports escalated (once each), one audit event per report for the coordinator."""
    at = now or utcnow()
    out = []
    for report in overdue(session, today):
        if report.escalated_at is not None:
            continue
        report.escalated_at = at
        days = (today - report.due_date).days
        audit.record(
            session,
            actor="system",
            action="kpi_overdue",
            after={**_key(report), "due": report.due_date, "days_late": days},
            at=at,
        )
        out.append(report)
    return out
