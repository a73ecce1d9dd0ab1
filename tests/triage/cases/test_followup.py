"""The submitter's follow-up in the core: the secret, deadline rules, withdraw, rating rules, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from triage.cases.accounts import Principal, Role, create_user
from triage.cases.casework import Casework
from triage.cases.followup import FollowUpActions, FollowUpRules
from triage.cases.followup_secret import follow_up_url, issue_token, token_digest
from triage.cases.intake import NewSubmission, Receipt, receive
from triage.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from triage.store.db import Database
from triage.store.repositories import Submissions
from triage.store.tables import Case, Event

RECEIVED = datetime(2026, 3, 2, 2, tzinfo=UTC)  # Monday
LATER = datetime(2026, 3, 16, 2, tzinfo=UTC)  # two weeks on
NEW = NewSubmission(
    kind="phan_anh",
    submitter_type="citizen",
    title="Chậm cấp giấy phép",
    content="Hồ sơ xin giấy phép nộp từ tháng 1 chưa có kết quả.",
)


def admin(db: Database) -> Principal:
    with db.session() as s:
        user = create_user(s, username=f"adm-{datetime.now().timestamp()}", password="mật-khẩu-đủ-dài", role="admin")
        return Principal(user_id=user.id, username=user.username, role=Role.ADMIN)


def actions(db: Database, receipt: Receipt, *, when: datetime = LATER, **rules: str):
    """Run one follow-up action in its own transaction."""

    def run(method: str, *args: object) -> Case:
        with db.session() as s:
            f = FollowUpActions(
                s, receipt.tracking_code, receipt.followup_token, rules=FollowUpRules(**rules), now=when
            )  # type: ignore[arg-type]
            case: Case = getattr(f, method)(*args)
            return case

    return run


def events(db: Database, case_id: int, action: str) -> list[Event]:
    with db.read() as s:
        return list(s.scalars(select(Event).where(Event.case_id == case_id, Event.action == action)))


@pytest.mark.parametrize("rule", ["restart", "continue"])
def test_information_resumes_a_returned_case_with_the_deadline_rule(empty_db: Database, rule: str) -> None:
    db, who = empty_db, admin(empty_db)
    receipt = receive(db, NEW, now=RECEIVED)
    with db.session() as s:
        Casework(s, who, now=RECEIVED).return_for_info(receipt.case_id, reason="Thiếu số hồ sơ")
    run = actions(db, receipt, deadline=rule)
    case = run("add_information", "Số hồ sơ: GP-2026-17")
    assert case.state == "new"
    if rule == "restart":
        assert case.answer_due is not None and case.answer_due > receipt.answer_due
    else:
        assert case.answer_due == receipt.answer_due and case.forward_due == receipt.forward_due
    (event,) = events(db, receipt.case_id, "resubmit")
    assert event.actor == "citizen" and event.after is not None and event.after["deadline_rule"] == rule
    assert len(event.after["text_sha256"]) == 64
    with pytest.raises(InvalidTransition):  # not returned any more
        run("add_information", "lần nữa")


def test_a_wrong_secret_opens_nothing(empty_db: Database) -> None:
    receipt = receive(empty_db, NEW, now=RECEIVED)
    with empty_db.session() as s, pytest.raises(NotFound):
        FollowUpActions(s, receipt.tracking_code, "x" * 43)
    with empty_db.session() as s, pytest.raises(NotFound):
        FollowUpActions(s, "PAKN-0000-0000-0000", receipt.followup_token)
    with empty_db.read() as s:
        sub = Submissions(s).by_tracking_code(receipt.tracking_code)
        assert sub is not None and receipt.followup_token is not None
        assert sub.followup_hash == token_digest(receipt.followup_token)  # only the digest is stored
        assert receipt.followup_token not in str(sub.__dict__)


def test_a_new_secret_replaces_the_old_one(empty_db: Database) -> None:
    receipt = receive(empty_db, NEW, now=RECEIVED)
    with empty_db.session() as s:
        token = issue_token(s, receipt.tracking_code)
    assert follow_up_url("https://pakn.example.vn/", receipt.tracking_code, token).startswith(
        f"https://pakn.example.vn/theo-doi/{receipt.tracking_code}?k="
    )
    with empty_db.session() as s, pytest.raises(NotFound):
        FollowUpActions(s, receipt.tracking_code, receipt.followup_token)
    with empty_db.session() as s:
        FollowUpActions(s, receipt.tracking_code, token)
    assert len(events(empty_db, receipt.case_id, "followup_secret")) == 1


def _answered(db: Database) -> tuple[Receipt, Principal]:
    who = admin(db)
    receipt = receive(db, NEW, now=RECEIVED)
    with db.session() as s:
        w = Casework(s, who, now=RECEIVED)
        w.route(receipt.case_id, agency="BTC")
        handler = create_user(s, username=f"h-{datetime.now().timestamp()}", password="mật-khẩu-đủ-dài",
                              role="handler", agency_code="BTC")  # fmt: skip
        w.assign(receipt.case_id, assignee=handler.username)
        w.start(receipt.case_id)
        w.respond(receipt.case_id, body="Đã cấp giấy phép.")
    return receipt, who


def test_not_solved_escalates_when_so_configured(empty_db: Database) -> None:
    receipt, _ = _answered(empty_db)
    run = actions(empty_db, receipt, not_solved="escalate")
    with pytest.raises(InvalidInput):
        run("rate", "tuyet-voi")
    case = run("rate", "not_solved", "Chưa nhận được giấy phép")
    assert case.state == "responded" and case.escalated_for is not None
    (escalation,) = events(empty_db, receipt.case_id, "escalate")
    assert escalation.actor == "citizen" and escalation.after and escalation.after["rating"] == "not_solved"
    with pytest.raises(Conflict):
        run("rate", "solved")


def test_a_closed_case_rated_not_solved_is_escalated_not_reopened(empty_db: Database) -> None:
    receipt, who = _answered(empty_db)
    with empty_db.session() as s:
        Casework(s, who, now=LATER).close(receipt.case_id)
    case = actions(empty_db, receipt, not_solved="reopen")("rate", "not_solved")
    assert case.state == "closed" and events(empty_db, receipt.case_id, "reopen") == []
    assert len(events(empty_db, receipt.case_id, "escalate")) == 1


def test_withdraw_only_before_an_answer(empty_db: Database) -> None:
    receipt, _ = _answered(empty_db)
    with pytest.raises(InvalidTransition):
        actions(empty_db, receipt)("withdraw", "thôi")
    fresh = receive(empty_db, NEW, now=RECEIVED)
    case = actions(empty_db, fresh)("withdraw", "Đã được giải quyết ở địa phương")
    assert case.state == "closed" and case.ended_at is not None
    (event,) = events(empty_db, fresh.case_id, "withdraw")
    assert event.after is not None and event.after["reason"] == "Đã được giải quyết ở địa phương"
