"""Campaigns: many near-identical submissions in a short time, grouped so one answer serves them all.

A petition drive or a shared template brings the same text again and again. At intake a new case
joins a group when one of its similar earlier cases (the suggestion's top-k, from the case index)
is near-identical (``SimilarCase.match`` >= ``threshold``: P(same matter) from the same-matter
scorer, or the cosine when ``TRIAGE_DUPLICATE_SCORER=cosine``) and was received within ``window`` of it; groups that
one case links are united (the lowest id survives), so the grouping is the connected components of
"near-identical and close in time". A group is shown as a campaign from ``min_size`` cases on.

Growth is bounded: a case joins or unites an existing group only if it is near-identical to
``min_links`` of its members (all of them while the group is smaller), so one crafted text that
resembles one member of each of two groups cannot bridge them; a refused link is recorded in the
case's ``campaign`` event (``refused``), with the links that counted. Answers go only to the cases
the handler confirmed (``respond_all``'s ``case_ids``), never to members that joined unseen.

Visibility follows the cases: a handler sees a campaign only through its own agency's cases, and
counts, lists and answers only those (another agency's cases never leak through a campaign).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case as when
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from triage.cases import audit
from triage.cases.accounts import Principal
from triage.cases.casework import Casework
from triage.cases.pipeline import CampaignPolicy, SimilarCase
from triage.cases.workflow import CaseState
from triage.errors import InvalidInput, InvalidTransition, NotFound
from triage.store.repositories import OPEN_STATES, Cases, Submissions
from triage.store.tables import Campaign, Case, utcnow


def group(session: Session, case: Case, similar: Sequence[SimilarCase], policy: CampaignPolicy) -> int | None:
    """Put ``case`` in the campaign of its near-identical recent neighbours; returns the campaign id.

    Runs in the intake transaction, after the case row exists. Audited as the system's decision.
    """
    near = [c.case_id for c in similar if c.match >= policy.threshold and c.case_id != case.id]
    if not near:
        return None
    window = timedelta(days=policy.window_days)
    repo = Cases(session)
    # Lock order (triage.cases.audit): the cases, ascending id, before any campaign row; the head comes last.
    # The neighbours' groups are read first, so that every case this may move is locked in one ordered batch.
    groups = set(session.scalars(select(Case.campaign_id).where(Case.id.in_(near), Case.campaign_id.is_not(None))))
    members = set(session.scalars(select(Case.id).where(Case.campaign_id.in_(groups)))) if len(groups) > 1 else set()
    locked = repo.lock({*near, *members})
    mates = [
        c for c in locked if c.id in near and c.merged_into is None and abs(case.received_at - c.received_at) <= window
    ]
    if not mates:
        return None
    # Bounded growth: a case joins (or unites) an existing group only through several of its members, so
    # one crafted text near-identical to one member of each of two groups cannot chain them together.
    links = Counter(c.campaign_id for c in mates if c.campaign_id is not None)
    rows = session.execute(select(Campaign.id, Campaign.size).where(Campaign.id.in_(list(links))))
    sizes = {int(r.id): int(r.size) for r in rows}
    refused = [
        {"campaign_id": g, "links": n, "needed": min(policy.min_links, sizes.get(g, 1))}
        for g, n in sorted(links.items())
        if n < min(policy.min_links, sizes.get(g, 1))
    ]
    barred = {int(str(r["campaign_id"])) for r in refused}
    mates = [c for c in mates if c.campaign_id not in barred]
    if not mates:
        audit.record(
            session,
            actor="system",
            action="campaign",
            case_id=case.id,
            after={"campaign_id": None, "refused": refused, "threshold": policy.threshold},
            at=case.received_at,
        )
        return None
    existing = sorted({c.campaign_id for c in mates if c.campaign_id is not None})
    now = utcnow()
    if existing:
        target = existing[0]
        if len(existing) > 1:  # this case links groups: unite them under the oldest
            moving = set(session.scalars(select(Case.id).where(Case.campaign_id.in_(existing[1:]))))
            repo.lock(moving - {c.id for c in locked})  # only if a group grew meanwhile (rare)
            session.execute(update(Case).where(Case.campaign_id.in_(existing[1:])).values(campaign_id=target))
            session.execute(delete(Campaign).where(Campaign.id.in_(existing[1:])))
    else:
        campaign = Campaign(created_at=now, updated_at=now, size=0)
        session.add(campaign)
        session.flush()
        target = campaign.id
    for c in [case, *mates]:
        c.campaign_id = target
    session.flush()
    size = int(session.scalar(select(func.count()).select_from(Case).where(Case.campaign_id == target)) or 0)
    session.execute(update(Campaign).where(Campaign.id == target).values(size=size, updated_at=now))
    audit.record(
        session,
        actor="system",
        action="campaign",
        case_id=case.id,
        after={
            "campaign_id": target,
            "near_identical": sorted(c.id for c in mates),
            "united": existing[1:],
            "links": {str(g): n for g, n in sorted(links.items()) if g not in barred},
            "refused": refused,
            "size": size,
            "threshold": policy.threshold,
        },
        at=case.received_at,
    )
    return target


@dataclass
class CampaignView:
    """A campaign as one account sees it: only the cases it may see are counted and listed."""

    id: int
    size: int
    open_cases: int
    first_received: datetime
    last_received: datetime
    title: str
    cases: list[Case] = field(default_factory=list)


def _visible(who: Principal) -> list[ColumnElement[bool]]:
    return [Case.agency_code == who.agency_code] if who.scoped else []


def list_campaigns(
    session: Session, who: Principal, *, min_size: int = 3, limit: int = 50, offset: int = 0
) -> tuple[list[CampaignView], int]:
    """Campaigns with at least ``min_size`` cases visible to ``who``, most recent activity first."""
    who.require("cases.read")
    open_count = func.sum(when((Case.state.in_(OPEN_STATES), 1), else_=0))
    stmt = (
        select(
            Case.campaign_id,
            func.count().label("n"),
            func.min(Case.received_at).label("first"),
            func.max(Case.received_at).label("last"),
            func.min(Case.id).label("first_case"),
            open_count.label("open"),
        )
        .where(Case.campaign_id.is_not(None), *_visible(who))
        .group_by(Case.campaign_id)
        .having(func.count() >= min_size)
    )
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.execute(
        stmt.order_by(func.max(Case.received_at).desc(), Case.campaign_id).limit(limit).offset(offset)
    )
    rows_l = rows.all()
    firsts = Submissions(session).first_of_cases([int(r.first_case) for r in rows_l])
    out = []
    for r in rows_l:
        sub = firsts.get(int(r.first_case))
        out.append(
            CampaignView(
                id=int(r.campaign_id),
                size=int(r.n),
                open_cases=int(r.open or 0),
                first_received=_aware(r.first),
                last_received=_aware(r.last),
                title=sub.title if sub is not None else "",
            )
        )
    return out, total


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def get_campaign(session: Session, who: Principal, campaign_id: int) -> CampaignView:
    """One campaign with its cases visible to ``who``; NotFound when it has none for this account."""
    who.require("cases.read")
    cases = list(session.scalars(select(Case).where(Case.campaign_id == campaign_id, *_visible(who)).order_by(Case.id)))
    if not cases:
        raise NotFound(f"campaign {campaign_id} not found")
    first = Submissions(session).first_of_cases([cases[0].id]).get(cases[0].id)
    return CampaignView(
        id=campaign_id,
        size=len(cases),
        open_cases=sum(c.state in OPEN_STATES for c in cases),
        first_received=min(c.received_at for c in cases),
        last_received=max(c.received_at for c in cases),
        title=first.title if first is not None else "",
        cases=cases,
    )


@dataclass
class CampaignAnswer:
    """What one answer to a campaign did: the cases it answered and the ones it could not, with why."""

    campaign_id: int
    responded: list[int]
    skipped: list[dict[str, object]]


def respond_all(work: Casework, campaign_id: int, *, body: str, case_ids: Sequence[int]) -> CampaignAnswer:
    """Answer, with one text, the cases of the campaign the handler confirmed (``case_ids``, as listed to it).

    Only a listed case that is still in this campaign, visible to this account and open gets the
    reply: a case that joined the group after the list was shown is reported as skipped, never
    answered unseen. Each case goes through ``Casework.respond`` (its own audit event and Response
    row); an ASSIGNED case is started first (same actor, also audited); cases not routed and
    assigned, already answered or ended are reported as skipped with why.
    """
    work.who.require("respond")
    view = get_campaign(work.session, work.who, campaign_id)
    confirmed = sorted({int(i) for i in case_ids})
    if not confirmed:
        raise InvalidInput("case_ids: list the cases to answer (as shown by the campaign), at least one")
    responded: list[int] = []
    skipped: list[dict[str, object]] = []
    # Locked in ascending id (the lock order), then checked again under the lock: still in the group, visible.
    locked = {c.id: c for c in Cases(work.session).lock(confirmed)}
    for cid in confirmed:
        case = locked.get(cid)
        if case is None or case.campaign_id != campaign_id or not work.who.sees(case.agency_code):
            skipped.append({"case_id": cid, "state": "unknown", "reason": "not in this campaign"})
            continue
        state = CaseState(case.state)
        if state is CaseState.ASSIGNED:
            work.start(case.id)
            state = CaseState.IN_PROGRESS
        if state is CaseState.IN_PROGRESS:
            work.respond(case.id, body=body)
            responded.append(case.id)
        else:
            reason = "not open" if case.state not in OPEN_STATES else "not routed and assigned yet"
            skipped.append({"case_id": case.id, "state": case.state, "reason": reason})
    for case in view.cases:
        if case.id not in locked and case.state in OPEN_STATES:
            skipped.append({"case_id": case.id, "state": case.state, "reason": "not in the confirmed list"})
    if not responded:
        raise InvalidTransition(
            f"no case of campaign {campaign_id} can be answered now (assign its cases to a handler first); "
            f"states: {', '.join(sorted({str(s['state']) for s in skipped}))}"
        )
    return CampaignAnswer(campaign_id=campaign_id, responded=responded, skipped=skipped)
