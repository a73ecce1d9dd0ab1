"""Per-agency handling statistics (analysts and admins)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query

from service.deps import Staff, State
from service.schemas.stats import AgencyStatsOut, ProgrammeFieldStatsOut, StatsOut
from triage.cases.calendar import to_local_date
from triage.cases.stats import agency_stats, programme_field_stats
from triage.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["reports"])
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


@router.get("/stats", response_model=StatsOut)
def stats(
    who: Staff,
    svc: State,
    start: date | None = Query(default=None, description="First day (local); default: the 1st of this month."),
    end: date | None = Query(default=None, description="Last day (local, included); default: today."),
    agency: str | None = Query(default=None, max_length=200, description="One agency (code or name)."),
    programme_field: str | None = Query(
        default=None,
        max_length=40,
        description="One programme field code (e.g. 'institutions', 'other'); an unknown code is a 422.",
    ),
) -> StatsOut:
    """Received, answered, on-time %, backlog and overdue per agency and per programme field for a period."""
    who.require("stats.read")
    today = to_local_date(svc.now())
    end = end or today
    start = start or end.replace(day=1)
    for day in (start, end):
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"dates must lie between {EARLIEST} and {LATEST}, got {day}")
    code = None
    if agency:
        from triage.nlp.agencies import default_registry

        code = default_registry().resolve(agency).code
    taxonomy = svc.pipeline.programme_taxonomy
    field = taxonomy.check(programme_field) if programme_field else None
    with svc.db.read() as s:
        rows = agency_stats(s, start, end, today=today, agency_code=code, programme_field=field)
        by_field = programme_field_stats(
            s, start, end, today=today, taxonomy=taxonomy, agency_code=code, programme_field=field
        )
    return StatsOut(
        start=start,
        end=end,
        as_of=min(end, today),
        programme_field=field,
        # The core's rows carry exactly the response's fields (on_time_pct is a property of both).
        programme_fields=[ProgrammeFieldStatsOut.model_validate(r, from_attributes=True) for r in by_field],
        agencies=[AgencyStatsOut.model_validate(r, from_attributes=True) for r in rows],
    )


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
