"""Staff views of cases and the bodies of the actions on them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.schemas.common import MAX_CONTENT, MAX_NOTE, StrictIn
from service.schemas.submissions import Kind

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; larger numbers are a 422, not a driver error

# ---- action bodies ------------------------------------------------------------------------


class RouteIn(StrictIn):
    """Confirm the suggestion (send its agency) or correct it (send another); both become a reviewed label."""

    agency: str = Field(min_length=1, max_length=200, description="Agency code or name, e.g. 'BTC' or 'Bộ Tài chính'.")
    field: str | None = Field(default=None, max_length=200, description="Field of state management, if known.")
    kind: Kind | None = Field(default=None, description="Correct the submission kind, if the submitter chose wrongly.")
    note: str | None = Field(default=None, max_length=MAX_NOTE)
    programme_field: str | None = Field(
        default=None,
        max_length=40,
        description="Confirm or correct the programme field (Resolution-57 task group code); unknown: 422.",
    )


class AssignIn(StrictIn):
    assignee: str = Field(min_length=1, max_length=64, description="Username of a handler of the case's agency.")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class TransferIn(StrictIn):
    agency: str = Field(min_length=1, max_length=200, description="The competent agency (code or name).")
    reason: str | None = Field(default=None, max_length=MAX_NOTE)


class ReasonIn(StrictIn):
    reason: str = Field(min_length=1, max_length=MAX_NOTE, description="Required: why (shown in the case timeline).")


class NoteIn(StrictIn):
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class RespondIn(StrictIn):
    body: str = Field(min_length=1, max_length=MAX_CONTENT, description="The answer to the submitter.")


class ModerationIn(StrictIn):
    """A clerk's decision on the abuse / spam flag; the case is never hidden or deleted either way."""

    decision: Literal["confirm", "dismiss"] = Field(
        description="'confirm' keeps the flag (or raises one the model missed); 'dismiss' lowers it."
    )
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class TargetIn(StrictIn):
    target: int = Field(ge=1, le=MAX_ID, description="The other case's id.")


# ---- views --------------------------------------------------------------------------------


class ContactOut(BaseModel):
    name: str | None
    email: str | None
    phone: str | None
    address: str | None


class SubmissionOut(BaseModel):
    id: int
    tracking_code: str | None = Field(description="Null for analysts (it would open the citizen's /track page).")
    kind: str
    submitter_type: str
    title: str
    content: str
    title_raw: str | None = Field(description="Exactly as sent (null for analysts).")
    content_raw: str | None = Field(description="Exactly as sent (null for analysts).")
    province_code: str | None
    received_at: datetime
    contact: ContactOut | None = Field(description="Null for analysts.")


class ResponseOut(BaseModel):
    id: int
    author: str | None
    agency_code: str | None
    body: str
    at: datetime


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    model_version: str | None


class CaseSummary(BaseModel):
    id: int
    state: str
    kind: str
    agency_code: str | None
    agency_name: str | None
    suggested_agency: str | None
    field: str | None
    title: str
    assignee: str | None
    received_at: datetime
    answer_due: date | None
    deadline_status: str | None = Field(description="on_track, due_soon or overdue while the deadline runs; else null.")
    flagged: bool = Field(default=False, description="An abuse / spam flag awaits or has a clerk's confirmation.")
    campaign_id: int | None = Field(default=None, description="The campaign (near-identical group) of the case.")
    programme_field: str | None = Field(
        default=None,
        description="Programme field code (Resolution-57 task group; 'other' when none fits; null before triage).",
    )
    programme_field_name: str | None = Field(default=None, description="The programme field's name.")


class CaseList(BaseModel):
    total: int
    items: list[CaseSummary]


class CaseDetail(CaseSummary):
    forward_due: date | None
    working_days_left: int | None
    duplicate_of: int | None
    merged_into: int | None
    answered_at: datetime | None
    ended_at: datetime | None
    suggestion: dict[str, Any] | None
    model_version: str | None
    submissions: list[SubmissionOut]
    responses: list[ResponseOut]
    timeline: list[EventOut]
    allowed_actions: list[str] = Field(description="Actions this account may take now.")
