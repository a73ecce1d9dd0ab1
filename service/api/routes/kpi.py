"""Resolution-57 monitoring: the indicator registry, agencies' periodic reports, and the dashboard data.

A reporter sees and enters its own agency's reports only: another agency's report answers 404, as a
case of another agency does. Evidence files travel base64 in JSON (within the request body limit):
no multipart parser is opened for them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from service import kpi as monitoring
from service.deps import Staff, State
from service.exports import download
from service.schemas.kpi import (
    MAX_ID,
    DashboardOut,
    EvidenceIn,
    IndicatorOut,
    RegistryOut,
    ReportDetail,
    ReportList,
    ReportOut,
    ReviewIn,
    ValueIn,
)
from service.schemas.kpi import EvidenceIn as EvidenceBody
from triage.cases.exports import MEDIA_TYPES, check_format
from triage.kpi.export import all_tables
from triage.kpi.reports import EvidenceIn as CoreEvidence
from triage.kpi.reports import ReportFilter

router = APIRouter(prefix="/api/v1/kpi", tags=["kpi"])
ReportId = Annotated[int, Path(ge=1, le=MAX_ID, description="The report's number.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such report for this account"},
    409: {"description": "Not allowed in this state"},
}


def _evidence(body: EvidenceIn | ValueIn) -> list[CoreEvidence]:
    items = [CoreEvidence(name=f.name, data=f.data()) for f in body.files]
    items += [CoreEvidence(name=link.name or link.url, url=link.url) for link in body.links]
    return items


@router.get("/indicators", response_model=RegistryOut)
def indicators(who: Staff, svc: State) -> RegistryOut:
    """The indicator registry: task groups, strategic indicators with targets and sources, their operational ones."""
    who.require("kpi.read")
    reg = monitoring.registry(svc)
    return RegistryOut(
        programme=reg.programme.model_dump(mode="json"),
        groups=[g.model_dump() for g in reg.groups],
        strategic=[
            IndicatorOut(
                code=s.code,
                group=s.group,
                name=s.name,
                unit=s.unit,
                direction=s.direction,
                target=s.target,
                deadline=s.deadline,
                illustrative=s.illustrative,
                source=reg.sources.get(s.source, s.source),
                baseline=s.baseline.value,
                operational=[o.model_dump(mode="json") for o in reg.children(s.code)],
            )
            for s in reg.strategic
        ],
        validation_rules=[r.model_dump(mode="json") for r in reg.validation_rules],
    )


@router.get("/reports", response_model=ReportList)
def list_reports(
    who: Staff,
    svc: State,
    agency: Annotated[str | None, Query(max_length=16, description="Agency code.")] = None,
    period: Annotated[str | None, Query(max_length=10, description="Period, e.g. 2025-Q3.")] = None,
    state: Annotated[
        str | None, Query(max_length=16, description="due, submitted, returned, verified, locked.")
    ] = None,
    indicator: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ReportList:
    """Reports this account may see (a reporter: its agency's), latest deadline first."""
    who.require("kpi.read")
    where = ReportFilter(agency=agency, period=period, state=state, indicator=indicator)
    total, rows = monitoring.report_list(svc, who, where, limit=limit, offset=offset)
    items = [ReportOut(**r) for r in rows]
    return ReportList(total=total, items=items)


@router.get("/reports/{report_id}", response_model=ReportDetail, responses=_ERRORS)
def get_report(report_id: ReportId, who: Staff, svc: State) -> ReportDetail:
    """One report: versions, evidence (with SHA-256), data-quality findings, difficulties and their cases."""
    return ReportDetail(**monitoring.detail(svc, who, report_id))


@router.post("/reports/{report_id}/values", response_model=ReportDetail, responses=_ERRORS)
def submit_value(report_id: ReportId, body: ValueIn, who: Staff, svc: State) -> ReportDetail:
    """Enter the figure (due or returned), or correct a locked one (``reason`` required): a new version."""
    monitoring.submit(
        svc,
        who,
        report_id,
        value=body.value,
        note=body.note,
        reason=body.reason,
        evidence=_evidence(body),
        difficulties=body.difficulties,
    )
    return ReportDetail(**monitoring.detail(svc, who, report_id))


@router.post("/reports/{report_id}/evidence", response_model=ReportDetail, responses=_ERRORS)
def add_evidence(report_id: ReportId, body: EvidenceBody, who: Staff, svc: State) -> ReportDetail:
    """Attach more evidence to the current version (before verification)."""
    monitoring.add_evidence(svc, who, report_id, _evidence(body))
    return ReportDetail(**monitoring.detail(svc, who, report_id))


def _review(action: str) -> Any:
    def handler(report_id: ReportId, body: ReviewIn, who: Staff, svc: State) -> ReportDetail:
        monitoring.review(svc, who, report_id, action, body.reason)
        return ReportDetail(**monitoring.detail(svc, who, report_id))

    handler.__doc__ = {
        "verify": "The coordinating office accepts the figure.",
        "return": "The coordinating office sends the report back with what to fix (``reason`` required).",
        "lock": "Close a verified report; a later change is a correction with a reason (a new version).",
    }[action]
    return handler


for _action in ("verify", "return", "lock"):
    router.add_api_route(
        f"/reports/{{report_id}}/{_action}",
        _review(_action),
        methods=["POST"],
        response_model=ReportDetail,
        responses=_ERRORS,
        name=f"kpi_{_action}",
    )


@router.get("/dashboard", response_model=DashboardOut)
def dashboard(who: Staff, svc: State) -> DashboardOut:
    """Per strategic indicator: latest vs target, completion, forecast with interval and traffic light, risk in
    words, bottlenecks (indicators and agencies ranked); reporting rates per agency."""
    monitoring.ensure_due(svc)
    return DashboardOut(**monitoring.dashboard_data(svc, who))


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"description": "The file", "content": {m: {} for m in MEDIA_TYPES.values()}}},
)
def export(
    who: Staff,
    svc: State,
    format: Annotated[str, Query(max_length=10, description="xlsx (every table) or csv (the indicators).")] = "xlsx",
    table: Annotated[str, Query(max_length=20, description="For csv: indicators, rates or reports.")] = "indicators",
) -> Response:
    """The dashboard, reporting rates and reports as XLSX, or one of them as CSV (UTF-8 with BOM)."""
    who.require("kpi.dashboard")
    fmt = check_format(format)
    reg, day = monitoring.registry(svc), monitoring.today(svc)
    with svc.db.read() as s:
        tables = all_tables(s, reg, day)
    if fmt == "csv":
        names = {"indicators": 0, "rates": 1, "reports": 2}
        tables = [tables[names.get(table, 0)]]
    return download(tables, fmt, "chi-so-nq57", today=day)
