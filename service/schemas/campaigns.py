"""Campaigns: groups of near-identical submissions, as one account sees them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.schemas.cases import CaseSummary


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


class SkippedCase(BaseModel):
    case_id: int
    state: str
    reason: str


class CampaignAnswerOut(BaseModel):
    campaign_id: int
    responded: list[int] = Field(description="Cases answered with this text (each audited on its own).")
    skipped: list[SkippedCase] = Field(description="Cases the workflow does not allow to answer now, and why.")
