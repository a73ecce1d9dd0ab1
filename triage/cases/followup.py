"""What the submitter does through the secret follow-up link: add information, withdraw, rate the answer.

Each action checks the token (``followup_secret.holder``), locks the case, moves it through the one
workflow table (RESUBMIT, WITHDRAW, REOPEN) and writes a ``FollowUp`` row and an audit event by the
actor ``citizen`` in the caller's transaction. Deadline rules are settings: information added to a
returned case restarts the deadlines from that day or continues the ones set at receipt; an answer
rated "not solved" reopens the case or escalates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.attachments import add_files, file_entry
from triage.cases.calendar import WorkingCalendar
from triage.cases.casework import snapshot
from triage.cases.followup_secret import holder
from triage.cases.workflow import Action, CaseState, DeadlinePolicy, apply, forward_deadline, response_deadline
from triage.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from triage.nlp.text import normalize
from triage.store.citizen_tables import FollowUp
from triage.store.files import CheckedFile
from triage.store.repositories import Cases, Timeline
from triage.store.tables import Case, Submission, utcnow

ACTOR = "citizen"
MAX_TEXT = 10_000
RATINGS: dict[str, str] = {
    "solved": "Đã được giải quyết",
    "partly": "Giải quyết một phần",
    "not_solved": "Chưa được giải quyết",
}
ANSWERED = frozenset({CaseState.RESPONDED.value, CaseState.CLOSED.value})
DeadlineRule = Literal["restart", "continue"]
NotSolvedRule = Literal["reopen", "escalate"]


@dataclass(frozen=True)
class FollowUpRules:
    deadline: DeadlineRule = "restart"
    not_solved: NotSolvedRule = "reopen"


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    text = normalize(value or "")
    if required and not text:
        raise InvalidInput(f"{what}: vui lòng nhập nội dung")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what}: tối đa {MAX_TEXT} ký tự")
    return text or None


class FollowUpActions:
    """One submitter's actions on their case, within one transaction (``session``)."""

    def __init__(
        self,
        session: Session,
        tracking_code: str,
        token: str | None,
        *,
        rules: FollowUpRules | None = None,
        policy: DeadlinePolicy | None = None,
        calendar: WorkingCalendar | None = None,
        now: datetime | None = None,
    ) -> None:
        self.session = session
        self.sub: Submission = holder(session, tracking_code, token)
        self.rules = rules or FollowUpRules()
        self.policy = policy or DeadlinePolicy()
        self.calendar = calendar
        self.now = now or utcnow()

    def _case(self) -> Case:
        case = Cases(self.session).get(self.sub.case_id, for_update=True)
        if case is None:
            raise NotFound("case not found")
        return case

    def _record(self, case: Case, action: str, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        case.updated_at = self.now
        audit.record(self.session, actor=ACTOR, action=action, case_id=case.id, before=before, after=after, at=self.now)
        self.session.flush()

    def _row(self, case: Case, kind: str, body: str | None, **extra: Any) -> FollowUp:
        row = FollowUp(case_id=case.id, submission_id=self.sub.id, kind=kind, body=body, at=self.now, **extra)
        self.session.add(row)
        self.session.flush()
        return row

    def add_information(self, text: str | None, files: list[CheckedFile] | None = None) -> Case:
        """The information a RETURNED case asked for: the case resumes (RESUBMIT -> NEW), deadlines per the rule."""
        case = self._case()
        if case.state != CaseState.RETURNED.value:
            raise InvalidTransition(
                "Chỉ bổ sung thông tin được khi cơ quan yêu cầu bổ sung (hồ sơ đang ở trạng thái “Yêu cầu bổ sung”)."
            )
        body = _text(text, "thông tin bổ sung", required=not files)
        before = snapshot(case)
        case.state = apply(case.state, Action.RESUBMIT).value
        if self.rules.deadline == "restart":
            case.forward_due = forward_deadline(self.now, self.policy, self.calendar)
            case.answer_due = response_deadline(self.now, case.kind, self.policy, self.calendar)
        row = self._row(case, "information", body)
        attached = add_files(self.session, list(files or []), owner="followup", owner_id=row.id, case_id=case.id,
                             actor=ACTOR, at=self.now)  # fmt: skip
        after = snapshot(case)
        after.update(
            followup_id=row.id,
            deadline_rule=self.rules.deadline,
            text_sha256=audit.text_digest(body=body or ""),
            attachments=[file_entry(a) for a in attached],
        )
        self._record(case, Action.RESUBMIT.value, before, after)
        return case

    def withdraw(self, reason: str | None = None) -> Case:
        """The submitter takes the matter back while it is open (WITHDRAW -> CLOSED)."""
        case = self._case()
        body = _text(reason, "lý do", required=False)
        before = snapshot(case)
        try:
            case.state = apply(case.state, Action.WITHDRAW).value
        except InvalidTransition:
            raise InvalidTransition("Không rút được: hồ sơ đã được trả lời hoặc đã kết thúc.") from None
        case.ended_at = self.now
        row = self._row(case, "withdraw", body)
        after = {**snapshot(case), "followup_id": row.id, **({"reason": body} if body else {})}
        self._record(case, Action.WITHDRAW.value, before, after)
        return case

    def latest_rating(self) -> FollowUp | None:
        stmt = (
            select(FollowUp)
            .where(FollowUp.case_id == self.sub.case_id, FollowUp.kind == "rating")
            .order_by(FollowUp.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def rate(self, rating: str, comment: str | None = None) -> Case:
        """Rate the latest answer once; "not solved" reopens (RESPONDED -> IN_PROGRESS) or escalates per the rule."""
        if rating not in RATINGS:
            raise InvalidInput(f"đánh giá phải là một trong: {', '.join(RATINGS)}")
        case = self._case()
        answers = Timeline(self.session).responses(case.id)
        if case.state not in ANSWERED or not answers:
            raise InvalidTransition("Chỉ đánh giá được sau khi cơ quan đã trả lời.")
        answer = answers[-1]
        last = self.latest_rating()
        if last is not None and last.response_id == answer.id:
            raise Conflict("Câu trả lời này đã được đánh giá; mỗi câu trả lời chỉ đánh giá một lần.")
        body = _text(comment, "nhận xét", required=False)
        row = self._row(case, "rating", body, rating=rating, response_id=answer.id)
        info = {"followup_id": row.id, "rating": rating, "response_id": answer.id,
                "comment_sha256": audit.text_digest(body=body or "")}  # fmt: skip
        self._record(case, "rate", {"state": case.state}, {"state": case.state, **info})
        if rating != "not_solved":
            return case
        reason = "Người gửi đánh giá câu trả lời: chưa được giải quyết" + (f" — {body}" if body else "")
        if self.rules.not_solved == "reopen" and case.state == CaseState.RESPONDED.value:
            before = snapshot(case)
            case.state = apply(case.state, Action.REOPEN, reason=reason).value
            self._record(case, Action.REOPEN.value, before, {**snapshot(case), "reason": reason, **info})
        else:
            key = f"not_solved:{answer.id}"
            before = {"escalated_for": case.escalated_for}
            case.escalated_for = key
            after = {"escalated_for": key, "reason": reason, "agency_code": case.agency_code, "state": case.state}
            self._record(case, "escalate", before, {**after, **info})
        return case


def followups_of(session: Session, case_id: int) -> list[FollowUp]:
    """Everything the submitter sent after the receipt, oldest first (for the staff case page)."""
    return list(session.scalars(select(FollowUp).where(FollowUp.case_id == case_id).order_by(FollowUp.id)))
