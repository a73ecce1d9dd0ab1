"""Campaign answers reach only the cases the handler confirmed; one text cannot bridge two groups."""

from __future__ import annotations

from sqlalchemy import select

from triage.cases.accounts import Principal, create_user, principal_of
from triage.cases.campaigns import get_campaign, group, respond_all
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import CampaignPolicy, SimilarCase
from triage.store.db import Database
from triage.store.tables import Case, Event

POLICY = CampaignPolicy(threshold=0.96, window_days=7, min_size=2)


def petition(n: int) -> NewSubmission:
    return NewSubmission(kind="kien_nghi", submitter_type="citizen", title=f"Kiến nghị {n}", content=f"Nội dung {n}")


def link(db: Database, case_id: int, *near: int) -> int | None:
    """Run the intake's grouping for ``case_id`` with these near-identical neighbours (scores above the threshold)."""
    with db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return group(s, case, [SimilarCase(n, 0.98) for n in near], POLICY)


def cases(db: Database, n: int) -> list[int]:
    return [receive(db, petition(i)).case_id for i in range(n)]


def grouped(db: Database, ids: list[int]) -> int:
    """``ids`` as one campaign, each copy near-identical to every earlier one (as real copies are)."""
    for k, cid in enumerate(ids[1:], start=1):
        link(db, cid, *ids[:k])
    with db.read() as s:
        groups = {c.campaign_id for c in s.scalars(select(Case).where(Case.id.in_(ids)))}
    assert len(groups) == 1 and None not in groups
    return int(groups.pop())  # type: ignore[arg-type]


def handler_with(db: Database, ids: list[int]) -> Principal:
    with db.session() as s:
        admin = principal_of(create_user(s, username="admin", password="x" * 12, role="admin"))
        handler = create_user(s, username="hd", password="x" * 12, role="handler", agency_code="BXD")
    with db.session() as s:
        work = Casework(s, admin)
        for cid in ids:
            work.route(cid, agency="BXD")
            work.assign(cid, assignee="hd")
    return principal_of(handler)


def state(db: Database, case_id: int) -> str:
    with db.read() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case.state


def test_only_the_confirmed_cases_get_the_answer(db: Database) -> None:
    ids = cases(db, 5)
    campaign = grouped(db, ids[:3])
    other = ids[4]
    handler = handler_with(db, ids)
    with db.read() as s:
        shown = [c.id for c in get_campaign(s, handler, campaign).cases]  # what the handler's page lists
    assert shown == ids[:3]
    link(db, ids[3], *ids[:3])  # a new copy joins after the page was shown
    with db.session() as s:
        answer = respond_all(
            Casework(s, handler), campaign, body="Sở sẽ trả lời trong tháng.", case_ids=[*shown, other]
        )
    assert answer.responded == shown  # the old code answered every open case of the group at POST time
    reasons = {int(str(x["case_id"])): x["reason"] for x in answer.skipped}
    assert reasons == {other: "not in this campaign", ids[3]: "not in the confirmed list"}
    assert state(db, ids[3]) == "assigned" and state(db, other) == "assigned"


def test_one_text_cannot_bridge_two_groups(db: Database) -> None:
    ids = cases(db, 8)
    a, b = grouped(db, ids[0:3]), grouped(db, ids[3:6])
    bridge, joiner = ids[6], ids[7]
    assert link(db, bridge, ids[0], ids[3]) is None  # one member of each: the old code united both groups
    assert link(db, joiner, ids[0], ids[1], ids[3]) == a  # two members of A: joins A; B stays apart
    with db.read() as s:
        by_id = {c.id: c.campaign_id for c in s.scalars(select(Case).where(Case.id.in_(ids)))}
        events = {
            e.case_id: e.after
            for e in s.scalars(select(Event).where(Event.action == "campaign", Event.case_id.in_([bridge, joiner])))
        }
    assert by_id[bridge] is None and {by_id[i] for i in ids[3:6]} == {b} and by_id[joiner] == a
    refused = events[bridge]["refused"]  # visible on the case's timeline: which groups, how many links, needed
    assert [(r["campaign_id"], r["links"], r["needed"]) for r in refused] == [(a, 1, 2), (b, 1, 2)]
    assert [r["campaign_id"] for r in events[joiner]["refused"]] == [b] and events[joiner]["size"] == 4
