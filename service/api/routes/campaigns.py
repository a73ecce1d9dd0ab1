"""Campaigns: list them, read one with its cases, and answer all its open cases with one text.

A handler sees a campaign through its own agency's cases only (counts included); a campaign with
none of them is a 404 for it, exactly like another agency's case.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from service.deps import Staff, State
from service.schemas.campaigns import (
    CampaignAnswerOut,
    CampaignDetail,
    CampaignList,
    CampaignOut,
    CampaignRespondIn,
    SkippedCase,
)
from service.schemas.cases import MAX_ID
from service.views import case_summaries
from triage.cases.accounts import Principal
from triage.cases.campaigns import CampaignView, get_campaign, list_campaigns, respond_all
from triage.cases.casework import Casework
from triage.nlp.text import mask_personal

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="The campaign's number.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such campaign for this account"},
    409: {"description": "No case of the campaign can be answered now"},
}


def _out(view: CampaignView, who: Principal) -> dict[str, Any]:
    return {
        "id": view.id,
        "size": view.size,
        "open_cases": view.open_cases,
        "first_received": view.first_received,
        "last_received": view.last_received,
        "title": mask_personal(view.title) if who.masked else view.title,
    }


@router.get("", response_model=CampaignList)
def campaigns(
    who: Staff,
    svc: State,
    min_size: Annotated[
        int | None, Query(ge=2, le=10_000, description="Smallest group shown; default TRIAGE_CAMPAIGN_MIN_SIZE.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> CampaignList:
    """Groups of near-identical submissions received close together, most recent first."""
    size = min_size or svc.settings.campaign_min_size
    with svc.db.read() as s:
        views, total = list_campaigns(s, who, min_size=size, limit=limit, offset=offset)
    return CampaignList(total=total, min_size=size, items=[CampaignOut(**_out(v, who)) for v in views])


@router.get("/{campaign_id}", response_model=CampaignDetail, responses=_ERRORS)
def campaign(campaign_id: CampaignId, who: Staff, svc: State) -> CampaignDetail:
    """One campaign and its cases (those this account may see)."""
    with svc.db.read() as s:
        view = get_campaign(s, who, campaign_id)
        return CampaignDetail(**_out(view, who), cases=case_summaries(s, view.cases, who, svc))


@router.post("/{campaign_id}/respond", response_model=CampaignAnswerOut, responses=_ERRORS)
def respond(campaign_id: CampaignId, body: CampaignRespondIn, who: Staff, svc: State) -> CampaignAnswerOut:
    """Answer the confirmed cases of the campaign with one text; each case's answer is audited on its own.

    Only the listed cases still in the campaign and open are answered; cases that joined after the
    list was shown are reported as skipped ("not in the confirmed list").
    """
    answer = svc.db.transaction(
        lambda s: respond_all(
            Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now()),
            campaign_id,
            body=body.body,
            case_ids=body.case_ids,
        )
    )
    return CampaignAnswerOut(
        campaign_id=answer.campaign_id,
        responded=answer.responded,
        skipped=[SkippedCase(**s) for s in answer.skipped],  # type: ignore[arg-type]
    )
