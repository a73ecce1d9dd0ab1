"""Themes and emerging topics of a period (analysts and admins): JSON of the same report as `triage themes`.

The handlers are ``async``: the report is built by the theme cache's own thread and awaited, so a
long clustering holds no request thread (``service.theme_cache``).
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from service.deps import Staff, State
from service.schemas.themes import ThemeReportOut
from service.theme_cache import default_period, period_report_async
from triage.cases.theme_report import emerging_only

router = APIRouter(prefix="/api/v1", tags=["reports"])

_SINCE = Query(default=None, description="First day (local); default: 12 weeks before `until`.")
_UNTIL = Query(default=None, description="Last day (local, included); default: today.")


@router.get("/themes", response_model=ThemeReportOut)
async def themes(who: Staff, svc: State, since: date | None = _SINCE, until: date | None = _UNTIL) -> ThemeReportOut:
    """Themes of the submissions received in the period: keywords, size, weekly trend, agencies, examples.

    Examples have personal data masked; themes spanning several agencies are marked `systemic`.
    """
    who.require("stats.read")
    start, end = default_period(svc, since, until)
    report = await period_report_async(svc, start, end)  # built by the cache's thread; no request thread held
    return ThemeReportOut.model_validate(report, from_attributes=True)


@router.get("/reports/emerging", response_model=ThemeReportOut)
async def emerging(who: Staff, svc: State, since: date | None = _SINCE, until: date | None = _UNTIL) -> ThemeReportOut:
    """The themes growing significantly in the last weeks of the period, best first (same report, cut)."""
    who.require("stats.read")
    start, end = default_period(svc, since, until)
    report = await period_report_async(svc, start, end)
    return ThemeReportOut.model_validate(emerging_only(report), from_attributes=True)
