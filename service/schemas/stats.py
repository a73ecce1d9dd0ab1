from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class AgencyStatsOut(BaseModel):
    agency_code: str | None
    agency_name: str
    received: int
    answered: int
    answered_on_time: int
    on_time_pct: float | None = Field(description="Answered on time / answered, in percent; null if none answered.")
    backlog: int = Field(description="Open and unanswered at the snapshot date.")
    overdue: int = Field(description="Backlog already past its answer deadline at the snapshot date.")


class StatsOut(BaseModel):
    start: date
    end: date
    as_of: date = Field(description="Snapshot date for backlog and overdue: the period's end, or today if earlier.")
    agencies: list[AgencyStatsOut]
