"""Difficulties and recommendations raised in a report become PAKN cases, through the one intake.

Each is filed as a *kiến nghị* from an organisation (the reporting agency), so routing, duplicate
detection, campaigns and themes treat it like any other feedback; the case is linked back to the
report (``kpi_difficulties``), and the report page shows the case's state and answer. Filing runs
outside the report's transaction (intake has its own, with the models run before it); an
Idempotency-Key per (report, version, text) makes a retry file nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.accounts import Principal
from triage.cases.intake import NewSubmission, Receipt
from triage.errors import InvalidInput
from triage.kpi.periods import Period
from triage.kpi.registry import Registry
from triage.kpi.reports import get_report
from triage.store.db import Database
from triage.store.kpi_tables import KpiDifficulty
from triage.store.tables import Case, Response

MAX_TEXT = 5000
Filer = Callable[[NewSubmission, str], Receipt]  # (submission, idempotency key) -> receipt


def _submission(
    registry: Registry, indicator: str, agency: str, agency_label: str, period: str, text: str, province: str | None
) -> NewSubmission:
    op = registry.operational_by_code(indicator)
    label = Period.parse(period).label
    return NewSubmission(
        kind="kien_nghi",
        submitter_type="organisation",
        title=f"Kiến nghị của {agency_label} khi báo cáo chỉ tiêu {op.name} ({label})",
        content=text,
        province=province,
        contact_name=agency_label,
    )


def file_difficulties(
    db: Database, who: Principal, registry: Registry, report_id: int, texts: list[str], file: Filer
) -> list[KpiDifficulty]:
    """File each text as a PAKN case and link it to the report's current version (audited)."""
    cleaned = [t.strip() for t in texts if t and t.strip()]
    if any(len(t) > MAX_TEXT for t in cleaned):
        raise InvalidInput(f"mỗi khó khăn, kiến nghị tối đa {MAX_TEXT} ký tự")
    if not cleaned:
        return []
    with db.read() as s:
        report = get_report(s, who, report_id)
        who.require("kpi.submit")
        key = (report.indicator, report.agency_code, report.period, report.version)
    from triage.nlp.agencies import default_registry

    agency = default_registry().get(key[1])
    province = agency.name if agency.is_local else None
    receipts: list[tuple[str, Receipt]] = []
    for text in cleaned:
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        new = _submission(registry, key[0], key[1], agency.name, key[2], text, province)
        receipts.append((text, file(new, f"kpi-{report_id}-{key[3]}-{digest}")))

    def link(s: Session) -> list[KpiDifficulty]:
        rows = []
        for text, receipt in receipts:
            known = s.scalar(
                select(KpiDifficulty).where(
                    KpiDifficulty.report_id == report_id, KpiDifficulty.case_id == receipt.case_id
                )
            )
            if known is not None:
                rows.append(known)
                continue
            row = KpiDifficulty(
                report_id=report_id,
                version=key[3],
                text=text,
                case_id=receipt.case_id,
                tracking_code=receipt.tracking_code,
                added_by=who.username,
            )
            s.add(row)
            s.flush()
            audit.record(
                s,
                actor=who.username,
                action="kpi_difficulty",
                case_id=receipt.case_id,
                after={
                    "report_id": report_id,
                    "version": key[3],
                    "difficulty_id": row.id,
                    "tracking_code": receipt.tracking_code,
                    "text_sha256": audit.text_digest(content=text),
                },
            )
            rows.append(row)
        return rows

    return db.transaction(link)


@dataclass(frozen=True)
class DifficultyView:
    id: int
    text: str
    case_id: int | None
    tracking_code: str | None
    case_state: str | None
    agency_code: str | None
    answer: str | None
    answered_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def difficulties_of(session: Session, report_id: int) -> list[DifficultyView]:
    """The report's difficulties with their cases' state, agency and latest answer."""
    out = []
    rows = session.scalars(select(KpiDifficulty).where(KpiDifficulty.report_id == report_id).order_by(KpiDifficulty.id))
    for d in rows:
        case = session.get(Case, d.case_id) if d.case_id is not None else None
        answer = None
        if case is not None:
            answer = session.scalar(
                select(Response).where(Response.case_id == case.id).order_by(Response.at.desc(), Response.id.desc())
            )
        out.append(
            DifficultyView(
                id=d.id,
                text=d.text,
                case_id=d.case_id,
                tracking_code=d.tracking_code,
                case_state=None if case is None else case.state,
                agency_code=None if case is None else case.agency_code,
                answer=None if answer is None else answer.body,
                answered_at=None if answer is None else answer.at,
            )
        )
    return out
