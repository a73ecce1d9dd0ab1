"""Bodies and answers of the Resolution-57 monitoring API (``/api/v1/kpi``)."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from service.schemas.common import MAX_NOTE, StrictIn

MAX_ID = 2**31 - 1
MAX_FILE_B64 = 240 * 1024  # within the request body limit (256 KB): a file of about 175 KB


class LinkIn(StrictIn):
    name: str = Field(default="", max_length=255, description="What the link shows.")
    url: str = Field(min_length=8, max_length=2000, description="http(s) address of the published evidence.")


class FileIn(StrictIn):
    name: str = Field(
        min_length=1, max_length=255, description="File name, for people (the type is read from the bytes)."
    )
    content_base64: str = Field(
        min_length=4, max_length=MAX_FILE_B64, description="The file's bytes, base64 (PDF, PNG, JPEG, docx/xlsx, CSV)."
    )

    @field_validator("content_base64")
    @classmethod
    def _decodes(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
        return value

    def data(self) -> bytes:
        return base64.b64decode(self.content_base64)


class ValueIn(StrictIn):
    """A figure for the report's period, with a progress note, evidence and optional difficulties."""

    value: float = Field(description="The figure, in the indicator's unit (1/0 for a done / not done milestone).")
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Progress note (tiến độ).")
    reason: str | None = Field(
        default=None, max_length=MAX_NOTE, description="Required to correct a locked report: why the figure changes."
    )
    links: list[LinkIn] = Field(default_factory=list, max_length=10)
    files: list[FileIn] = Field(default_factory=list, max_length=3)
    difficulties: list[str] = Field(
        default_factory=list, max_length=5, description="Difficulties / recommendations: each becomes a PAKN case."
    )


class EvidenceIn(StrictIn):
    links: list[LinkIn] = Field(default_factory=list, max_length=10)
    files: list[FileIn] = Field(default_factory=list, max_length=3)


class ReviewIn(StrictIn):
    reason: str | None = Field(default=None, max_length=MAX_NOTE, description="Required to return: what to fix.")


class ReportOut(BaseModel):
    id: int
    indicator: str
    indicator_name: str
    unit: str
    agency: str
    agency_name: str
    period: str
    period_label: str
    state: Literal["due", "submitted", "returned", "verified", "locked"]
    state_label: str
    version: int
    value: float | None
    due_date: date
    submitted_at: datetime | None
    flagged: bool


class ReportList(BaseModel):
    total: int
    items: list[ReportOut]


class VersionOut(BaseModel):
    version: int
    value: float
    note: str | None
    reason: str | None
    author: str
    at: datetime


class EvidenceOut(BaseModel):
    id: int
    version: int
    kind: Literal["file", "link"]
    name: str
    url: str | None
    media_type: str | None
    size: int | None
    sha256: str
    added_by: str
    added_at: datetime


class DifficultyOut(BaseModel):
    id: int
    text: str
    case_id: int | None
    tracking_code: str | None
    case_state: str | None
    agency_code: str | None
    answer: str | None
    answered_at: datetime | None


class ReportDetail(ReportOut):
    note: str | None
    returned_reason: str | None
    flags: dict[str, Any] | None
    first_submitted_at: datetime | None
    actions: list[str]
    versions: list[VersionOut]
    evidence: list[EvidenceOut]
    difficulties: list[DifficultyOut]


class IndicatorOut(BaseModel):
    code: str
    group: str
    name: str
    unit: str
    direction: str
    target: float
    deadline: date
    illustrative: bool
    source: str
    baseline: float
    operational: list[dict[str, Any]]


class RegistryOut(BaseModel):
    programme: dict[str, Any]
    groups: list[dict[str, str]]
    strategic: list[IndicatorOut]
    validation_rules: list[dict[str, Any]]


class ForecastOut(BaseModel):
    status: Literal["on_track", "at_risk", "off_track", "no_data"]
    status_label: str
    light: str
    predicted: float | None
    low: float | None
    high: float | None
    slope_per_year: float | None
    required_per_year: float | None


class DashboardItem(BaseModel):
    code: str
    group: str
    name: str
    unit: str
    target: float
    deadline: date
    latest: float | None
    latest_period: str | None
    completion: float | None
    stale: bool
    forecast: ForecastOut
    risk: str
    series: list[tuple[str, float]]
    problems: dict[str, int]
    bottlenecks: list[dict[str, Any]]
    agencies: list[dict[str, Any]]


class RatesOut(BaseModel):
    agency: str
    agency_name: str
    expected: int
    complete: int
    on_time: int
    late: int
    missing: int
    pending: int
    completeness: float
    timeliness: float


class DashboardOut(BaseModel):
    today: date
    indicators: list[DashboardItem]
    rates: list[RatesOut]
