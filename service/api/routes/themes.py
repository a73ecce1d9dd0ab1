"""Themes and emerging topics of a period (analysts and admins): JSON of the same report as `triage themes`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query

from service.deps import Staff, State
from service.schemas.themes import ThemeReportOut
from service.state import ServiceState
from triage.cases.calendar import to_local_date
from triage.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["reports"])
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def default_period(svc: ServiceState, since: date | None, until: date | None) -> tuple[date, date]:
    """[since, until]: by default the ``theme_weeks`` weeks ending today; checked for range and order."""
    until = until or to_local_date(svc.now())
    for day in (since, until):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"dates must lie between {EARLIEST} and {LATEST}, got {day}")
    since = since or max(EARLIEST, until - timedelta(weeks=svc.settings.theme_weeks) + timedelta(days=1))
    if since > until:
        raise InvalidInput(f"since ({since}) is after until ({until})")
    return since, until


def period_report(svc: ServiceState, since: date, until: date) -> dict[str, Any]:
    """The theme report of a period, computed once per period and data version (``svc.themes``)."""

    s = svc.settings
    options = (s.theme_window_weeks, s.theme_min_submissions, s.theme_alpha, s.theme_min_growth, s.theme_min_size)

    def build() -> dict[str, Any]:
        from dataclasses import replace

        from triage.cases.theme_report import build_report, load_period

        with svc.db.read() as session:
            items = load_period(session, since, until)
        cached = svc.themes.vectors
        items = [
            it if it.embedding is not None else replace(it, embedding=cached.get(it.submission_id)) for it in items
        ]
        missing = [i for i, it in enumerate(items) if it.embedding is None][: s.theme_max_encode]
        if missing:
            vecs = svc.pipeline.embedder.encode([items[i].text for i in missing])
            svc.themes.remember({items[i].submission_id: v for i, v in zip(missing, vecs, strict=True)})
            for i, v in zip(missing, vecs, strict=True):
                items[i] = replace(items[i], embedding=v)
        return build_report(
            items,
            since,
            until,
            window=s.theme_window_weeks,
            min_submissions=s.theme_min_submissions,
            alpha=s.theme_alpha,
            min_growth=s.theme_min_growth,
            min_size=s.theme_min_size,
            generated_at=svc.now(),
        )

    return svc.themes.get(svc.db, since, until, build, options=options)


_SINCE = Query(default=None, description="First day (local); default: 12 weeks before `until`.")
_UNTIL = Query(default=None, description="Last day (local, included); default: today.")


@router.get("/themes", response_model=ThemeReportOut)
def themes(who: Staff, svc: State, since: date | None = _SINCE, until: date | None = _UNTIL) -> dict[str, Any]:
    """Themes of the submissions received in the period: keywords, size, weekly trend, agencies, examples.

    Examples have personal data masked; themes spanning several agencies are marked `systemic`.
    """
    who.require("stats.read")
    start, end = default_period(svc, since, until)
    return period_report(svc, start, end)


@router.get("/reports/emerging", response_model=ThemeReportOut)
def emerging(who: Staff, svc: State, since: date | None = _SINCE, until: date | None = _UNTIL) -> dict[str, Any]:
    """The themes growing significantly in the last weeks of the period, best first (same report, cut)."""
    from triage.cases.theme_report import emerging_only

    who.require("stats.read")
    start, end = default_period(svc, since, until)
    return emerging_only(period_report(svc, start, end))
