"""Due-soon and overdue cases per agency, and an ``escalate`` Event when a case newly falls overdue.

A NEW case (not yet routed) is watched against its forward deadline, every open case against its
answer deadline. Each deadline missed is escalated once: the key "answer:2026-03-05" is kept on the
case, so running the job again (the same day, or from two workers at once) records nothing new, and a
new deadline after a transfer or resubmission can be escalated again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.calendar import WorkingCalendar
from triage.cases.notifications import AgencyContacts, notify_overdue
from triage.cases.workflow import CaseState, DeadlinePolicy, deadline_status, working_days_left
from triage.store.repositories import Cases


@dataclass(frozen=True)
class Flag:
    case_id: int
    agency_code: str | None
    state: str
    deadline: str  # "forward" | "answer"
    due: date
    status: str  # "due_soon" | "overdue"
    working_days_left: int
    escalated_now: bool


@dataclass
class EscalationReport:
    today: date
    flags: list[Flag] = field(default_factory=list)

    @property
    def recorded(self) -> int:
        return sum(f.escalated_now for f in self.flags)

    def by_agency(self) -> dict[str | None, list[Flag]]:
        out: dict[str | None, list[Flag]] = defaultdict(list)
        for f in self.flags:
            out[f.agency_code].append(f)
        return dict(out)


def watched_deadline(
    state: str,
    forward_due: date | None,
    answer_due: date,
    today: date,
    *,
    calendar: WorkingCalendar | None = None,
    policy: DeadlinePolicy | None = None,
) -> tuple[str, date, str]:
    """The deadline an open case is watched against today ("answer" or "forward"), its date and status.

    The answer deadline, unless a NEW case's forward deadline is near or missed while the answer one is not.
    """
    status = deadline_status(answer_due, today, calendar, policy)
    if status != "overdue" and state == CaseState.NEW.value and forward_due is not None:
        forward = deadline_status(forward_due, today, calendar, policy)
        if forward != "on_track":
            return "forward", forward_due, forward
    return "answer", answer_due, status


def escalation_key(deadline: str, due: date) -> str:
    """What ``Case.escalated_for`` holds once that deadline was escalated (one escalation per deadline)."""
    return f"{deadline}:{due.isoformat()}"


def escalate(
    session: Session,
    *,
    today: date,
    policy: DeadlinePolicy | None = None,
    calendar: WorkingCalendar | None = None,
    actor: str = "system",
    contacts: AgencyContacts | None = None,
) -> EscalationReport:
    """Flag due-soon and overdue cases; record one ``escalate`` event per newly missed deadline.

    With ``contacts``, each newly missed deadline also queues an e-mail to the agency's contact (outbox,
    same transaction as the event).
    """
    policy = policy or DeadlinePolicy()
    report = EscalationReport(today=today)
    repo = Cases(session)
    for case in repo.open_with_deadline():
        assert case.answer_due is not None
        deadline, due, status = watched_deadline(
            case.state, case.forward_due, case.answer_due, today, calendar=calendar, policy=policy
        )
        if status == "on_track":
            continue
        escalated_now = False
        key = escalation_key(deadline, due)
        if status == "overdue" and case.escalated_for != key:
            locked = repo.get(case.id, for_update=True)
            if locked is not None and locked.escalated_for != key:
                before = {"escalated_for": locked.escalated_for}
                locked.escalated_for = key
                left = working_days_left(due, today, calendar)
                audit.record(
                    session,
                    actor=actor,
                    action="escalate",
                    case_id=locked.id,
                    before=before,
                    after={
                        "escalated_for": key,
                        "deadline": deadline,
                        "due": due.isoformat(),
                        "working_days_overdue": -left,
                        "agency_code": locked.agency_code,
                        "state": locked.state,
                    },
                )
                escalated_now = True
                if contacts is not None:
                    notify_overdue(
                        session, locked, contacts, deadline=deadline, due=due.isoformat(), days_overdue=-left
                    )
        report.flags.append(
            Flag(
                case_id=case.id,
                agency_code=case.agency_code,
                state=case.state,
                deadline=deadline,
                due=due,
                status=status,
                working_days_left=working_days_left(due, today, calendar),
                escalated_now=escalated_now,
            )
        )
    session.flush()
    return report
