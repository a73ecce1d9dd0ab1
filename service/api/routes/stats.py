"""Per-agency handling statistics (analysts and admins)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from service.deps import Staff, State
from service.exports import download, stats_tables
from service.schemas.stats import StatsOut
from service.views import stats_view
from triage.cases.calendar import to_local_date
from triage.cases.exports import MEDIA_TYPES, check_format

router = APIRouter(prefix="/api/v1", tags=["reports"])
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


StartQuery = Annotated[date | None, Query(description="First day (local); default: the 1st of this month.")]
EndQuery = Annotated[date | None, Query(description="Last day (local, included); default: today.")]
AgencyQuery = Annotated[str | None, Query(max_length=200, description="One agency (code or name).")]
FieldQuery = Annotated[
    str | None,
    Query(
        max_length=40, description="One programme field code (e.g. 'institutions', 'other'); an unknown code is a 422."
    ),
]


@router.get("/stats", response_model=StatsOut)
def stats(
    who: Staff,
    svc: State,
    start: StartQuery = None,
    end: EndQuery = None,
    agency: AgencyQuery = None,
    programme_field: FieldQuery = None,
) -> StatsOut:
    """Received, answered, on-time %, backlog and overdue per agency and per programme field for a period."""
    return stats_view(who, svc, start, end, agency, programme_field)


@router.get(
    "/stats/export",
    response_class=Response,
    responses={
        200: {"description": "The file", "content": {m: {} for m in MEDIA_TYPES.values()}},
        422: {"description": "Unknown format or table"},
    },
)
def export_stats(
    who: Staff,
    svc: State,
    format: Annotated[str, Query(max_length=10, description="xlsx (every table) or csv (one table).")] = "xlsx",
    table: Annotated[Literal["agencies", "programme_fields"], Query(description="CSV only: which table.")] = "agencies",
    start: StartQuery = None,
    end: EndQuery = None,
    agency: AgencyQuery = None,
    programme_field: FieldQuery = None,
) -> Response:
    """The statistics of GET /api/v1/stats as a spreadsheet (XLSX) or one table as CSV (UTF-8 with BOM)."""
    fmt = check_format(format)
    tables = stats_tables(stats_view(who, svc, start, end, agency, programme_field))
    if fmt == "csv":
        tables = [tables[0] if table == "agencies" else tables[1]]
    return download(tables, fmt, "thong-ke", today=to_local_date(svc.now()))


@router.get("/reports/drift")
def drift(who: Staff, svc: State) -> dict[str, Any]:
    """Weekly drift: reviewed-label distribution (JS divergence, PSI) and suggestion confidence, recent vs reference."""
    from triage.cases.drift import drift_report

    who.require("stats.read")
    with svc.db.read() as s:
        return drift_report(
            s,
            now=svc.now(),
            recent_weeks=svc.settings.drift_recent_weeks,
            reference_weeks=svc.settings.drift_reference_weeks,
        )
