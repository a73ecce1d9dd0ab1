"""The theme report as JSON, read from the core's frozen ``ThemeReport`` with ``from_attributes``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# "2025-03-16T10:00:00+00:00" as the report has always said, not pydantic's "…Z".
IsoSeconds = Annotated[datetime, PlainSerializer(lambda v: v.isoformat(timespec="seconds"), return_type=str)]


class _FromCore(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ThemeAgencyOut(_FromCore):
    code: str
    name: str
    count: int = Field(description="Submissions of the theme whose case this agency holds.")


class ThemeExampleOut(_FromCore):
    case_id: int
    text: str = Field(
        description="Title and content with personal data masked ([SĐT], [CCCD], [EMAIL], [STK], [HỌ TÊN], [ĐỊA CHỈ])."
    )


class EmergingOut(_FromCore):
    recent: int = Field(description="Submissions of the theme in the recent window.")
    baseline: int = Field(description="Submissions of the theme in the weeks before the window.")
    expected: float = Field(description="Recent submissions expected had the theme kept its baseline share.")
    growth: float = Field(description="Recent share / baseline share.")
    growth_low: float = Field(description="One-sided 95 % lower bound of the growth: the ranking score.")
    p_value: float
    q_value: float = Field(description="Benjamini-Hochberg adjusted p-value over the themes tested.")
    significant: bool
    score: float


class EvidenceCountOut(_FromCore):
    code: str = Field(description="Agency or province code, catalogue procedure code; empty for a field.")
    name: str
    count: int = Field(description="Cases of the theme.")


class EvidenceTextOut(_FromCore):
    case_id: int
    agency: str | None
    province: str | None
    field: str | None
    text: str = Field(description="Title and content, personal data masked (names and streets too).")


class ThemeEvidenceOut(_FromCore):
    spans: list[str] = Field(description='"agencies" and/or "provinces": what the theme spans.')
    cases: int
    agencies: list[EvidenceCountOut] = Field(description="Cases per agency, most first.")
    unassigned: int
    provinces: list[EvidenceCountOut] = Field(description="Cases per province (given, or named in the text).")
    without_province: int
    fields: list[EvidenceCountOut] = Field(description="Cases per field: routed, else the nearest procedure's.")
    fields_routed: int
    fields_from_catalogue: int
    procedures: list[EvidenceCountOut] = Field(description="Nearest catalogue procedures, most cases first.")
    texts: list[EvidenceTextOut] = Field(description="Representative cases, one per agency first; masked.")


class ThemeOut(_FromCore):
    id: int
    label: str
    keywords: list[str]
    size: int
    share: float
    trend: list[int] = Field(description="Submissions per week, aligned with the report's `weeks`.")
    agencies: list[ThemeAgencyOut]
    systemic: bool = Field(description="Spans two or more agencies, each with a minimum share: a policy problem.")
    examples: list[ThemeExampleOut]
    emerging: EmergingOut | None
    evidence: ThemeEvidenceOut | None = Field(
        default=None, description="Evidence panel of a theme spanning several agencies or provinces; else null."
    )


class ThemeReportOut(_FromCore):
    since: date
    until: date
    generated_at: IsoSeconds
    submissions: int
    without_embedding: int
    weeks: list[date] = Field(description="Monday of each week of the period.")
    totals_by_week: list[int]
    window_weeks: int
    alpha: float
    min_size: int
    min_growth: float
    outliers: int
    outlier_share: float | None
    themes: list[ThemeOut]
    emerging: list[int] = Field(description="Ids of the significant emerging themes, best first.")
    systemic: list[int] = Field(default_factory=list, description="Ids of the themes spanning several agencies.")
    note: str | None
    tested: int | None = Field(default=None, description="Emerging report only: how many themes were tested.")


class ThemeEvidencePanelOut(_FromCore):
    """``GET /api/v1/themes/{id}/evidence``: one theme's evidence panel and what it is about."""

    theme_id: int
    label: str
    keywords: list[str]
    since: date
    until: date
    evidence: ThemeEvidenceOut
