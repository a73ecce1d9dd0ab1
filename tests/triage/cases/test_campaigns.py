"""Campaigns and likely duplicates at intake, on SQLite and PostgreSQL, with the real encoder and index."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from triage.cases.accounts import Principal, create_user, principal_of
from triage.cases.campaigns import CampaignPolicy, get_campaign, list_campaigns, respond_all
from triage.cases.casework import Casework
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import Pipeline, SubmissionText
from triage.errors import InvalidTransition, NotFound, PermissionDenied
from triage.nlp.agency_router import AgencyRouter
from triage.store.case_index import CaseIndex
from triage.store.db import Database
from triage.store.tables import Campaign, Case, Event, Response

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PASSWORD = "mật-khẩu-đủ-dài-123"


def petition(place: str, signer: str) -> NewSubmission:
    """One copy of a template petition: the same text, another signer."""
    return NewSubmission(
        kind="kien_nghi",
        submitter_type="citizen",
        title=f"Phản đối trạm trộn bê tông sát khu dân cư {place}",
        content=(
            f"Chúng tôi là cư dân khu phố {place} kiến nghị đình chỉ hoạt động của trạm trộn bê tông xây dựng sát "
            "khu dân cư, gây bụi, tiếng ồn suốt ngày đêm và ảnh hưởng sức khỏe người già, trẻ nhỏ. "
            f"Người ký tên: {signer}."
        ),
    )


@pytest.fixture(scope="module")
def pipeline(embedder: Any, db: Database) -> Pipeline:
    return Pipeline(
        embedder=embedder,
        agency_router=AgencyRouter(embedder=embedder).fit(),
        similar=CaseIndex(db),
        duplicate_threshold=0.9298,
        campaigns=CampaignPolicy(threshold=0.96, window_days=7, min_size=3),
    )


def _user(db: Database, name: str, role: str, agency: str | None = None) -> Principal:
    with db.session() as s:
        return principal_of(create_user(s, username=name, password=PASSWORD, role=role, agency_code=agency))


def test_near_identical_submissions_in_a_week_form_one_campaign(db: Database, pipeline: Pipeline) -> None:
    signers = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung"]
    ids = [
        receive(db, petition("Hòa Bình 7", who), pipeline=pipeline, now=T0 + timedelta(hours=6 * i)).case_id
        for i, who in enumerate(signers)
    ]
    other = receive(
        db,
        NewSubmission(
            kind="phan_anh",
            submitter_type="citizen",
            title="Hoàn thuế thu nhập cá nhân chậm",
            content="Hồ sơ hoàn thuế thu nhập cá nhân của tôi đã quá hạn mà chưa được giải quyết.",
        ),
        pipeline=pipeline,
        now=T0 + timedelta(hours=1),
    ).case_id
    late = receive(db, petition("Hòa Bình 7", "Võ Văn Em"), pipeline=pipeline, now=T0 + timedelta(days=40)).case_id
    with db.read() as s:
        cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_([*ids, other, late])))}
        group = {cases[i].campaign_id for i in ids}
        assert len(group) == 1 and None not in group
        campaign = s.get(Campaign, group.pop())
        assert campaign is not None and campaign.size == 4
        assert cases[other].campaign_id is None and cases[late].campaign_id is None  # off-topic; too late
        # the later copies saw the earlier ones as likely duplicates, with scores
        sug = cases[ids[-1]].suggestion or {}
        assert sug["likely_duplicate"] is True
        assert {c["case_id"] for c in sug["similar"]} >= set(ids[:3])
        assert all(c["score"] >= 0.96 for c in sug["similar"] if c["case_id"] in ids)
        events = s.scalars(select(Event).where(Event.action == "campaign", Event.case_id.in_(ids))).all()
        assert len(events) == 3 and all(e.actor == "system" for e in events)
        assert events[-1].after is not None and events[-1].after["size"] == 4
    admin = Principal(user_id=None, username="admin-view", role=_role("admin"))
    with db.read() as s:
        views, _ = list_campaigns(s, admin, min_size=3, limit=200)
        mine = [v for v in views if v.id == campaign.id]
        assert mine and mine[0].size == 4 and mine[0].open_cases == 4 and "Hòa Bình 7" in mine[0].title
        assert not [v for v in list_campaigns(s, admin, min_size=5, limit=200)[0] if v.id == campaign.id]


def _role(name: str) -> Any:
    from triage.cases.accounts import Role

    return Role(name)


def test_one_answer_serves_the_campaign_and_handlers_see_only_their_agency(db: Database, pipeline: Pipeline) -> None:
    ids = [
        receive(db, petition("Cầu Giấy 12", who), pipeline=pipeline, now=T0 + timedelta(hours=i)).case_id
        for i, who in enumerate(["Đỗ An", "Hồ Bình", "Vũ Chi", "Lý Dũng"])
    ]
    with db.read() as s:
        campaign_id = s.get(Case, ids[0]).campaign_id  # type: ignore[union-attr]
    assert campaign_id is not None
    admin = _user(db, "camp-admin", "admin")
    handler = _user(db, "camp-handler-btnmt", "handler", "BNNMT")
    elsewhere = _user(db, "camp-handler-byt", "handler", "BYT")
    stranger = _user(db, "camp-handler-bgddt", "handler", "BGDDT")
    clerk = _user(db, "camp-clerk", "clerk")
    with db.session() as s:
        w = Casework(s, admin, now=T0 + timedelta(days=1))
        for cid in ids[:2]:  # two routed to the environment ministry: one in progress, one assigned
            w.route(cid, agency="BNNMT")
            w.assign(cid, assignee=handler.username)
        w.start(ids[0])
        w.route(ids[2], agency="BYT")  # one elsewhere; ids[3] stays NEW
    with db.read() as s:
        mine = get_campaign(s, handler, campaign_id)
        assert [c.id for c in mine.cases] == ids[:2] and mine.size == 2  # the other agency's case is not there
        assert [v.size for v in list_campaigns(s, handler, min_size=2, limit=200)[0] if v.id == campaign_id] == [2]
        assert [c.id for c in get_campaign(s, elsewhere, campaign_id).cases] == [ids[2]]
        assert not [v for v in list_campaigns(s, elsewhere, min_size=2, limit=200)[0] if v.id == campaign_id]
        with pytest.raises(NotFound):
            get_campaign(s, stranger, campaign_id)  # none of its agency's cases: the campaign does not exist for it
    with db.session() as s, pytest.raises(PermissionDenied, match="may not respond"):
        respond_all(Casework(s, clerk), campaign_id, body="Trả lời chung.", case_ids=ids)
    with db.session() as s:
        answer = respond_all(
            Casework(s, handler, now=T0 + timedelta(days=2)), campaign_id, body="Đã kiểm tra.", case_ids=ids[:2]
        )
    assert answer.responded == ids[:2] and answer.skipped == []
    with db.read() as s:
        assert {c.state for c in s.scalars(select(Case).where(Case.id.in_(ids[:2])))} == {"responded"}
        assert len(s.scalars(select(Response).where(Response.case_id.in_(ids[:2]))).all()) == 2
        acts = s.scalars(select(Event).where(Event.case_id.in_(ids[:2]), Event.actor == handler.username)).all()
        assert sorted(e.action for e in acts) == ["respond", "respond", "start"]
    with db.session() as s, pytest.raises(InvalidTransition, match="no case of campaign"):
        respond_all(
            Casework(s, admin), campaign_id, body="Lần nữa.", case_ids=ids
        )  # the rest are answered, TRIAGED or NEW


def test_a_vnpara_paraphrase_is_flagged_as_likely_duplicate(
    embedder: Any, empty_db: Database, shared_data: Path
) -> None:
    """A real paraphrase pair: the second text finds the first as a likely duplicate; an unrelated one does not."""
    rows = [json.loads(line) for line in (shared_data / "vnpara" / "pairs.jsonl").open(encoding="utf-8")]
    pair = next(r for r in rows if r["paraphrase"] == 1 and r["text1"].startswith(PAIR_START))
    pipe = Pipeline(
        embedder=embedder,
        agency_router=AgencyRouter(embedder=embedder).fit(),
        similar=CaseIndex(empty_db),
        duplicate_threshold=0.9298,
    )
    from triage.nlp.text import normalize

    sent = receive(
        empty_db,
        NewSubmission(kind="phan_anh", submitter_type="citizen", title="Phản ánh", content=pair["text1"]),
        pipeline=pipe,
    ).case_id
    again = pipe.triage(SubmissionText("Phản ánh", normalize(pair["text2"]), "phan_anh", T0))
    assert again.similar[0].case_id == sent and again.similar[0].likely_duplicate and again.likely_duplicate
    other = pipe.triage(SubmissionText("Phản ánh", "Đường ngập sâu mỗi khi mưa lớn.", "phan_anh", T0))
    assert not other.likely_duplicate


PAIR_START = "Vụ 9 cầu thủ V . Ninh Bình"


def test_the_same_matter_scorer_flags_a_petition_drive_but_not_another_place(db: Database, embedder: Any) -> None:
    """Copies signed by different people are likely duplicates of each other and, being the same text
    once the signers' names are masked, one campaign; the same complaint about another place is
    neither. (Their probabilities, 0.994-0.997, stay under the campaign cut chosen so that distinct
    portal questions form no campaign: the masked comparison is what groups them.)"""
    from triage.nlp.same_matter import load_same_matter

    scorer = load_same_matter(embedder=embedder)
    judged = Pipeline(
        embedder=embedder,
        agency_router=AgencyRouter(embedder=embedder).fit(),
        similar=CaseIndex(db),
        same_matter=scorer,
        duplicate_threshold=scorer.threshold_,
        campaigns=CampaignPolicy(threshold=scorer.campaign_threshold_, window_days=7, min_size=3),
    )
    start = T0 + timedelta(days=200)
    signers = ["Đỗ Văn Hải", "Ngô Thị Lan", "Bùi Văn Minh"]
    ids = [
        receive(db, petition("Tân Phong 3", who), pipeline=judged, now=start + timedelta(hours=i)).case_id
        for i, who in enumerate(signers)
    ]
    elsewhere = receive(db, petition("Cầu Giấy 9", "Đinh Văn Nam"), pipeline=judged, now=start + timedelta(hours=5))
    with db.read() as s:
        cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_([*ids, elsewhere.case_id])))}
        for later in ids[1:]:
            sug = cases[later].suggestion
            assert sug is not None and sug["duplicate_scorer"] == "same_matter" and sug["likely_duplicate"]
            flagged = {c["case_id"] for c in sug["similar"] if c["likely_duplicate"]}
            assert flagged and flagged <= set(ids)  # only the other copies of the same petition
        other = cases[elsewhere.case_id].suggestion
        assert other is not None and not other["likely_duplicate"]  # the same complaint about another place
        assert cases[elsewhere.case_id].campaign_id is None
        drive = {cases[i].campaign_id for i in ids}
        assert len(drive) == 1 and None not in drive  # the three copies, one campaign
