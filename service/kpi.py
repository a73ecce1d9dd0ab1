"""The monitoring as the service runs it, shared by the API and the pages: one call per thing a user does.

It binds the core (``triage.kpi``) to the service's settings, database, clock and intake: evidence
goes under ``data_dir/kpi_evidence`` within ``TRIAGE_KPI_EVIDENCE_MAX_BYTES``; difficulties are filed
through ``file_submission`` (the same intake as the public form, auto-routing and metrics included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from service.intake import file_submission
from service.state import ServiceState
from service.uploads import file_store, upload_policy
from triage.cases.accounts import Principal
from triage.cases.calendar import to_local_date
from triage.cases.intake import NewSubmission, Receipt
from triage.kpi import quality, reports
from triage.kpi.difficulties import difficulties_of, file_difficulties
from triage.kpi.evidence import EVIDENCE_TYPES
from triage.kpi.forecast import STATUS_LABELS
from triage.kpi.monitor import IndicatorView, agency_name, dashboard
from triage.kpi.periods import Period
from triage.kpi.registry import Registry, default_kpi_registry
from triage.kpi.reports import EvidenceIn, EvidenceStore, ReportFilter
from triage.kpi.workflow import LABELS, PERMISSION, allowed_actions
from triage.store.kpi_tables import KpiReport


def registry(svc: ServiceState) -> Registry:
    return default_kpi_registry(svc.settings.kpi_registry_path)


def evidence_store(svc: ServiceState) -> EvidenceStore:
    """The upload store and policy of the service (TRIAGE_UPLOAD_*), narrowed to the evidence types."""
    policy = upload_policy(svc.settings)
    types = tuple(t for t in policy.types if t in EVIDENCE_TYPES)
    return EvidenceStore(root=file_store(svc.settings).root, policy=replace(policy, types=types))


def today(svc: ServiceState) -> date:
    return to_local_date(svc.now())


def ensure_due(svc: ServiceState) -> int:
    """Make the reports of every closed period due (idempotent, cheap when nothing is new)."""
    reg = registry(svc)
    return svc.db.transaction(lambda s: reports.make_due(s, reg, today(svc), svc.calendar))


@dataclass(frozen=True)
class Submitted:
    report_id: int
    cases: list[int]


def submit(
    svc: ServiceState,
    who: Principal,
    report_id: int,
    *,
    value: float,
    note: str | None,
    reason: str | None,
    evidence: list[EvidenceIn],
    difficulties: list[str],
) -> Submitted:
    """Enter a figure with its evidence, then file its difficulties as PAKN cases (after the commit)."""
    reg, store = registry(svc), evidence_store(svc)
    svc.db.transaction(
        lambda s: reports.submit(
            s,
            who,
            reg,
            report_id,
            value=value,
            note=note,
            evidence=evidence,
            store=store,
            reason=reason,
            outlier_z=svc.settings.kpi_outlier_z,
            now=svc.now(),
        )
    )

    def filer(new: NewSubmission, key: str) -> Receipt:
        return file_submission(svc, new, idempotency_key=key)

    rows = file_difficulties(svc.db, who, reg, report_id, difficulties, filer)
    return Submitted(report_id, [r.case_id for r in rows if r.case_id is not None])


def review(svc: ServiceState, who: Principal, report_id: int, action: str, reason: str | None) -> None:
    svc.db.transaction(lambda s: reports.review(s, who, report_id, action, reason=reason, now=svc.now()))


def add_evidence(svc: ServiceState, who: Principal, report_id: int, items: list[EvidenceIn]) -> None:
    store = evidence_store(svc)
    svc.db.transaction(lambda s: reports.add_evidence(s, who, report_id, items, store))


def actions_for(who: Principal, state: str) -> list[str]:
    """The moves this account may make on a report in ``state`` (what the page offers)."""
    out = []
    for act in allowed_actions(state):
        if who.may(PERMISSION[act]):
            out.append(act.value)
    return out


def summary(r: KpiReport, reg: Registry) -> dict[str, Any]:
    op = reg.operational_by_code(r.indicator)
    return {
        "id": r.id,
        "indicator": r.indicator,
        "indicator_name": op.name,
        "unit": op.unit,
        "agency": r.agency_code,
        "agency_name": agency_name(r.agency_code),
        "period": r.period,
        "period_label": Period.parse(r.period).label,
        "state": r.state,
        "state_label": LABELS.get(r.state, r.state),
        "version": r.version,
        "value": r.value,
        "due_date": r.due_date,
        "submitted_at": r.submitted_at,
        "flagged": bool(r.flags),
    }


def report_list(
    svc: ServiceState, who: Principal, where: ReportFilter, *, limit: int = 100, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The reports ``who`` may see, as summaries, and how many match (``reports.find_reports``)."""
    ensure_due(svc)
    reg = registry(svc)
    with svc.db.read() as s:
        total, rows = reports.find_reports(s, who, where, limit=limit, offset=offset)
        return total, [summary(r, reg) for r in rows]


def detail(svc: ServiceState, who: Principal, report_id: int) -> dict[str, Any]:
    """A report with its versions, evidence, findings and difficulties (with their cases' state and answer)."""
    reg = registry(svc)
    with svc.db.read() as s:
        r = reports.get_report(s, who, report_id)
        out = summary(r, reg)
        out.update(
            note=r.note,
            returned_reason=r.returned_reason,
            flags=r.flags,
            first_submitted_at=r.first_submitted_at,
            actions=actions_for(who, r.state),
            versions=[
                {
                    "version": v.version,
                    "value": v.value,
                    "note": v.note,
                    "reason": v.reason,
                    "author": v.author,
                    "at": v.at,
                }
                for v in reports.versions(s, r.id)
            ],
            evidence=[
                {
                    "id": e.id,
                    "version": e.version,
                    "kind": e.kind,
                    "name": e.name,
                    "url": e.url,
                    "media_type": e.media_type,
                    "size": e.size,
                    "sha256": e.sha256,
                    "added_by": e.added_by,
                    "added_at": e.added_at,
                }
                for e in reports.evidence_of(s, r.id)
            ],
            difficulties=[d.as_dict() for d in difficulties_of(s, r.id)],
        )
    return out


def view_dict(v: IndicatorView, reg: Registry) -> dict[str, Any]:
    s, f = v.strategic, v.forecast
    return {
        "code": s.code,
        "group": s.group,
        "name": s.name,
        "unit": s.unit,
        "target": s.target,
        "deadline": s.deadline,
        "latest": v.latest,
        "latest_period": None if v.latest_period is None else str(v.latest_period),
        "completion": v.completion,
        "stale": v.stale,
        "risk": v.risk_text(),
        "forecast": {
            "status": f.status,
            "status_label": STATUS_LABELS[f.status],
            "light": v.light,
            "predicted": f.predicted,
            "low": f.low,
            "high": f.high,
            "slope_per_year": f.slope,
            "required_per_year": f.required_slope,
        },
        "series": [(str(p), val) for p, val in v.series],
        "problems": v.problems,
        "bottlenecks": v.bottlenecks,
        "agencies": v.agencies,
    }


def rates_list(svc: ServiceState, day: date) -> list[dict[str, Any]]:
    with svc.db.read() as s:
        rates = quality.reporting_rates(s, day)
    return [{"agency": code, "agency_name": agency_name(code), **r.as_dict()} for (code, _), r in sorted(rates.items())]


def dashboard_data(svc: ServiceState, who: Principal) -> dict[str, Any]:
    """Every strategic indicator's view and the reporting rates (leaders, coordinators, analysts, admins)."""
    who.require("kpi.dashboard")
    reg, day = registry(svc), today(svc)
    with svc.db.read() as s:
        views = dashboard(s, reg, day)
    return {"today": day, "indicators": [view_dict(v, reg) for v in views], "rates": rates_list(svc, day)}
