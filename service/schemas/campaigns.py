"""Campaigns: groups of near-identical submissions, as one account sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from service.schemas.cases import MAX_ID, CaseSummary, RespondIn


class CampaignOut(BaseModel):
    id: int
    size: int = Field(description="Cases of the campaign this account may see.")
    open_cases: int = Field(description="Of those, cases still open (deadline running).")
    first_received: datetime
    last_received: datetime
    title: str = Field(description="The first case's title (masked for analysts).")


class CampaignList(BaseModel):
    total: int
    min_size: int
    items: list[CampaignOut]


class CampaignDetail(CampaignOut):
    cases: list[CaseSummary]


class CampaignRespondIn(RespondIn):
    """One answer for the cases the handler confirmed: those listed by ``GET /campaigns/{id}`` that it checked."""

    case_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1,
        max_length=1000,
        description="The cases to answer, as shown by the campaign's page; a case not listed here is not answered, "
        "a listed one no longer in the campaign is skipped.",
    )


class SkippedCase(BaseModel):
    case_id: int
    state: str
    reason: str


class CampaignAnswerOut(BaseModel):
    campaign_id: int
    responded: list[int] = Field(description="Cases answered with this text (each audited on its own).")
    skipped: list[SkippedCase] = Field(description="Cases the workflow does not allow to answer now, and why.")
