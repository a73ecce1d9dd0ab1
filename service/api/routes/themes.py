"""Themes and emerging topics of a period (analysts and admins): JSON of the same report as `triage themes`.

The handlers are ``async``: the report is built by the theme cache's own thread and awaited, so a
long clustering holds no request thread (``service.theme_cache``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response

from service.deps import Staff, State
from service.exports import download, theme_tables
from service.schemas.themes import ThemeEvidenceOut, ThemeEvidencePanelOut, ThemeReportOut
from service.theme_cache import default_period, period_report_async
from triage.cases.exports import MEDIA_TYPES, check_format
from triage.cases.theme_report import emerging_only, evidence_panel, export_evidence

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


@router.get(
    "/themes/export",
    response_class=Response,
    responses={200: {"description": "The file", "content": {m: {} for m in MEDIA_TYPES.values()}}},
)
async def export_themes(
    who: Staff,
    svc: State,
    format: Annotated[
        str, Query(max_length=10, description="xlsx (themes and weekly counts) or csv (themes).")
    ] = "xlsx",
    since: date | None = _SINCE,
    until: date | None = _UNTIL,
) -> Response:
    """The theme report of GET /api/v1/themes as a spreadsheet, for an analyst's memo."""
    who.require("stats.read")
    fmt = check_format(format)
    start, end = default_period(svc, since, until)
    report = ThemeReportOut.model_validate(await period_report_async(svc, start, end), from_attributes=True)
    tables = theme_tables(report)
    return download(tables[:1] if fmt == "csv" else tables, fmt, "chu-de", today=end)


@router.get("/reports/emerging", response_model=ThemeReportOut)
async def emerging(who: Staff, svc: State, since: date | None = _SINCE, until: date | None = _UNTIL) -> ThemeReportOut:
    """The themes growing significantly in the last weeks of the period, best first (same report, cut)."""
    who.require("stats.read")
    start, end = default_period(svc, since, until)
    report = await period_report_async(svc, start, end)
    return ThemeReportOut.model_validate(emerging_only(report), from_attributes=True)


@router.get(
    "/themes/{theme_id}/evidence",
    response_model=ThemeEvidencePanelOut,
    responses={200: {"content": {"text/csv": {}, "text/markdown": {}}}},
)
async def theme_evidence(
    who: Staff,
    svc: State,
    theme_id: int,
    since: date | None = _SINCE,
    until: date | None = _UNTIL,
    format: Literal["json", "csv", "md"] = Query(
        default="json", description="json, csv (UTF-8 with BOM, opens in Excel) or md (Markdown for a memo)."
    ),
) -> ThemeEvidencePanelOut | Response:
    """The evidence panel of a theme spanning several agencies or provinces (same report as `/themes`).

    Agencies and their case counts, provinces, catalogue fields, nearest procedures and representative
    texts with personal data masked. 404 when the theme spans one agency and one province.
    """
    who.require("stats.read")
    start, end = default_period(svc, since, until)
    report = await period_report_async(svc, start, end)
    if format == "json":
        theme, evidence = evidence_panel(report, theme_id)
        return ThemeEvidencePanelOut(
            theme_id=theme.id,
            label=theme.label,
            keywords=list(theme.keywords),
            since=report.since,
            until=report.until,
            evidence=ThemeEvidenceOut.model_validate(evidence, from_attributes=True),
        )
    content, media, name = export_evidence(report, theme_id, format)
    return Response(
        content=content.encode("utf-8"),
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
