"""The citizen's follow-up, shared by the web pages and the API: what the secret link shows and does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from service.labels import STATUS_LABELS
from service.state import ServiceState
from service.uploads import file_store
from triage.cases.followup import ANSWERED, FollowUpActions, FollowUpRules
from triage.cases.followup_secret import holder
from triage.cases.workflow import Action, CaseState, allowed_actions
from triage.store.files import CheckedFile
from triage.store.repositories import Timeline


@dataclass
class FollowUpView:
    code: str
    kind: str
    state: str
    status_label: str
    received_at: datetime
    answer_due: date | None
    answers: list[dict[str, Any]] = field(default_factory=list)
    return_reason: str | None = None
    rating: str | None = None
    can_add_information: bool = False
    can_withdraw: bool = False
    can_rate: bool = False


def rules(svc: ServiceState) -> FollowUpRules:
    return FollowUpRules(deadline=svc.settings.followup_deadline, not_solved=svc.settings.followup_not_solved)


def view(svc: ServiceState, code: str, token: str | None) -> FollowUpView:
    """The case as its submitter sees it through the link; NotFound for a wrong code or secret."""
    with svc.db.read() as s:
        sub = holder(s, code, token)
        case = sub.case
        answers = Timeline(s).responses(case.id)
        actions = FollowUpActions(s, code, token)
        last = actions.latest_rating()
        rated = last is not None and bool(answers) and last.response_id == answers[-1].id
        reason = None
        if case.state == CaseState.RETURNED.value:
            reason = _return_reason(s, case.id)
        return FollowUpView(
            code=sub.tracking_code,
            kind=sub.kind,
            state=case.state,
            status_label=STATUS_LABELS.get(case.state, case.state),
            received_at=sub.created_at,
            answer_due=case.answer_due,
            answers=[{"body": r.body, "at": r.at} for r in answers],
            return_reason=reason,
            rating=last.rating if rated and last is not None else None,
            can_add_information=case.state == CaseState.RETURNED.value,
            can_withdraw=Action.WITHDRAW in allowed_actions(case.state),
            can_rate=case.state in ANSWERED and bool(answers) and not rated,
        )


def _return_reason(s: Any, case_id: int) -> str | None:
    """What the agency asked for: the reason of the latest return_for_info event."""
    from sqlalchemy import select

    from triage.store.tables import Event

    stmt = (
        select(Event.after)
        .where(Event.case_id == case_id, Event.action == Action.RETURN_FOR_INFO.value)
        .order_by(Event.seq.desc())
        .limit(1)
    )
    after = s.scalars(stmt).first()
    return None if not after else str(after.get("reason") or "") or None


def add_information(
    svc: ServiceState, code: str, token: str | None, text: str | None, files: list[CheckedFile]
) -> None:
    store = file_store(svc.settings)
    for f in files:
        store.put(f)  # content-addressed: a rolled-back transaction leaves at most an unreferenced file

    def work(s: Any) -> None:
        FollowUpActions(s, code, token, rules=rules(svc), policy=svc.policy, calendar=svc.calendar,
                        now=svc.now()).add_information(text, files)  # fmt: skip

    svc.db.transaction(work)


def withdraw(svc: ServiceState, code: str, token: str | None, reason: str | None) -> None:
    svc.db.transaction(lambda s: FollowUpActions(s, code, token, now=svc.now()).withdraw(reason))


def rate(svc: ServiceState, code: str, token: str | None, rating: str, comment: str | None) -> None:
    svc.db.transaction(lambda s: FollowUpActions(s, code, token, rules=rules(svc), now=svc.now()).rate(rating, comment))
