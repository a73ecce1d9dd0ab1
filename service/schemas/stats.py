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


class ProgrammeFieldStatsOut(BaseModel):
    code: str | None = Field(description="Programme field code; null: cases never triaged.")
    name: str
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
    programme_field: str | None = Field(default=None, description="The programme field the counts are limited to.")
    agencies: list[AgencyStatsOut]
    programme_fields: list[ProgrammeFieldStatsOut] = Field(
        default_factory=list,
        description="The same counts per programme field (Resolution-57 task groups by default), in taxonomy order.",
    )
