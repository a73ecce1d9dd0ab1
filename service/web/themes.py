"""The emerging-topic report as the analyst page shows it.

No theme model exists in this version yet (it comes with the themes/duplicates work): ``latest_report``
returns None and the page says so. When the report exists, build ``ThemeReport`` from it here; the
template already renders a list of themes with keywords, sizes and a weekly trend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class ThemeView:
    label: str
    keywords: list[str]
    size: int
    trend: list[int] = field(default_factory=list)  # submissions per week, oldest first
    growth: float | None = None  # e.g. 1.5 = +150 % against the previous weeks
    emerging: bool = False


@dataclass(frozen=True)
class ThemeReport:
    generated_at: date
    period: str
    themes: list[ThemeView]


def latest_report(svc: Any) -> ThemeReport | None:
    """The newest emerging-topic report, or None while no theme model has produced one (this version)."""
    return None
