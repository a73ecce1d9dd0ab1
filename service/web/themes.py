"""The emerging-topic report as the analyst page shows it: the theme report of the 12 weeks to a date.

The report is the one ``GET /api/v1/themes`` returns (``service.api.routes.themes.period_report``,
cached per period and data version); this module only cuts it to what the page lists: the emerging
themes first, then the largest, each with keywords, size, weekly trend, agencies and examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

MAX_THEMES = 10


@dataclass(frozen=True)
class ThemeView:
    label: str
    keywords: list[str]
    size: int
    trend: list[int] = field(default_factory=list)  # submissions per week, oldest first
    growth: float | None = None  # e.g. 1.5 = +150 % against the previous weeks
    emerging: bool = False
    systemic: bool = False  # spans several agencies: a policy problem rather than one agency's
    agencies: list[str] = field(default_factory=list)  # names, most submissions first
    examples: list[str] = field(default_factory=list)  # personal data masked


@dataclass(frozen=True)
class ThemeReport:
    generated_at: date
    period: str
    themes: list[ThemeView]
    submissions: int = 0
    outlier_share: float | None = None


def view_of(report: dict[str, Any], *, max_themes: int = MAX_THEMES) -> ThemeReport:
    """The page's view of a report dict (see ``triage.cases.theme_report.build_report``)."""
    emerging = report["emerging"]
    by_id = {t["id"]: t for t in report["themes"]}
    order = [by_id[i] for i in emerging] + [t for t in report["themes"] if t["id"] not in set(emerging)]
    views = []
    for t in order[:max_themes]:
        e = t["emerging"]
        views.append(
            ThemeView(
                label=t["label"],
                keywords=t["keywords"][:8],
                size=t["size"],
                trend=t["trend"],
                growth=None if e is None or not e["significant"] else round(e["growth"] - 1.0, 3),
                emerging=t["id"] in emerging,
                systemic=t["systemic"],
                agencies=[a["name"] for a in t["agencies"][:3]],
                examples=[x["text"] for x in t["examples"][:2]],
            )
        )
    since, until = date.fromisoformat(report["since"]), date.fromisoformat(report["until"])
    return ThemeReport(
        generated_at=date.fromisoformat(report["generated_at"][:10]),
        period=f"{since:%d/%m/%Y} – {until:%d/%m/%Y}",
        themes=views,
        submissions=report["submissions"],
        outlier_share=report["outlier_share"],
    )


def latest_report(svc: Any, until: date | None = None) -> ThemeReport | None:
    """The theme report of the ``theme_weeks`` weeks to ``until`` (default today); None without themes."""
    from service.api.routes.themes import default_period, period_report
    from triage.cases.calendar import to_local_date

    end = until or to_local_date(svc.now())
    since, end = default_period(svc, end - timedelta(weeks=svc.settings.theme_weeks) + timedelta(days=1), end)
    report = period_report(svc, since, end)
    return view_of(report) if report["themes"] else None
