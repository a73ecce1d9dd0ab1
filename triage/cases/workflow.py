"""Case states, the allowed transitions between them, and handling deadlines in working days.

The state machine is one explicit table so that the service, the UI and the audit log agree on what
may happen next, and so every refusal can say which actions *are* allowed. Flow::

    NEW -TRIAGE-> TRIAGED -ASSIGN-> ASSIGNED -START-> IN_PROGRESS -RESPOND-> RESPONDED -CLOSE-> CLOSED

Side paths:

* RETURN_FOR_INFO (NEW, TRIAGED, ASSIGNED, IN_PROGRESS) -> RETURNED; the submitter's RESUBMIT sends the
  case back to NEW, because the added information can change the route (keep the earlier route as the
  suggestion, so confirming it again is one click; whether the answer clock restarts is the caller's call).
* TRANSFER (TRIAGED, ASSIGNED, IN_PROGRESS) -> TRANSFERRED: the matter is outside this agency's remit.
  The receiving agency must ACCEPT_TRANSFER (-> TRIAGED, now in its own queue) or TRANSFER it on;
  a case waiting between agencies is visible as such instead of silently sitting in a queue.
* REOPEN (RESPONDED -> IN_PROGRESS): the citizen's follow-up shows the answer was incomplete (a
  "not solved" rating through the follow-up link does it when so configured).
* WITHDRAW (any open state before an answer -> CLOSED): the submitter takes the matter back, through the
  follow-up link only (no staff role holds the permission).
* REJECT (reason required) from NEW, TRIAGED, ASSIGNED, IN_PROGRESS, RETURNED; never after a response.
* MARK_DUPLICATE (target case id required) from NEW, TRIAGED, ASSIGNED, IN_PROGRESS -> DUPLICATE.
* MERGE (target case id required) from the same four states -> DUPLICATE as well, applied to the case
  being absorbed: its submissions move into the target case (``merged_into``), whose answer then goes to
  every submitter, so the target must still be open (the store checks that). MARK_DUPLICATE only links
  (``duplicate_of``), e.g. to a case already answered.
* Reassignment: ASSIGN again from ASSIGNED or IN_PROGRESS (-> ASSIGNED, the new handler STARTs);
  TRIAGE again from TRIAGED corrects the route before the agency picks the case up.

Required fields: a reason for REJECT, RETURN_FOR_INFO (what is missing) and REOPEN; a target for TRANSFER
(the receiving agency's code), MARK_DUPLICATE and MERGE (the other case's id). CLOSED, DUPLICATE and
REJECTED are terminal: no action leaves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, TypeVar, cast, get_args

from triage.cases.calendar import WorkingCalendar, default_calendar, to_local_date
from triage.config import Settings, get_settings
from triage.errors import InvalidInput, InvalidTransition
from triage.store.tables import CaseState

__all__ = [
    "KINDS",
    "REQUIRES_REASON",
    "REQUIRES_TARGET",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Action",
    "CaseState",
    "DeadlinePolicy",
    "DeadlineStatus",
    "SubmissionKind",
    "allowed_actions",
    "apply",
    "check_allowed",
    "deadline_status",
    "forward_deadline",
    "is_terminal",
    "response_deadline",
    "validate_kind",
    "working_days_left",
]


class Action(StrEnum):
    """What a clerk, handler or submitter does to a case."""

    TRIAGE = "triage"
    ASSIGN = "assign"
    START = "start"
    TRANSFER = "transfer"
    ACCEPT_TRANSFER = "accept_transfer"
    RETURN_FOR_INFO = "return_for_info"
    RESUBMIT = "resubmit"
    RESPOND = "respond"
    CLOSE = "close"
    REOPEN = "reopen"
    REJECT = "reject"
    MARK_DUPLICATE = "mark_duplicate"
    MERGE = "merge"
    WITHDRAW = "withdraw"


_E = TypeVar("_E", bound=StrEnum)
_S, _A = CaseState, Action  # short aliases keep the table readable

TRANSITIONS: Mapping[tuple[CaseState, Action], CaseState] = MappingProxyType(
    {
        (_S.NEW, _A.TRIAGE): _S.TRIAGED,
        (_S.NEW, _A.RETURN_FOR_INFO): _S.RETURNED,
        (_S.NEW, _A.REJECT): _S.REJECTED,
        (_S.NEW, _A.MARK_DUPLICATE): _S.DUPLICATE,
        (_S.NEW, _A.MERGE): _S.DUPLICATE,
        (_S.TRIAGED, _A.TRIAGE): _S.TRIAGED,
        (_S.TRIAGED, _A.ASSIGN): _S.ASSIGNED,
        (_S.TRIAGED, _A.TRANSFER): _S.TRANSFERRED,
        (_S.TRIAGED, _A.RETURN_FOR_INFO): _S.RETURNED,
        (_S.TRIAGED, _A.REJECT): _S.REJECTED,
        (_S.TRIAGED, _A.MARK_DUPLICATE): _S.DUPLICATE,
        (_S.TRIAGED, _A.MERGE): _S.DUPLICATE,
        (_S.ASSIGNED, _A.ASSIGN): _S.ASSIGNED,
        (_S.ASSIGNED, _A.START): _S.IN_PROGRESS,
        (_S.ASSIGNED, _A.TRANSFER): _S.TRANSFERRED,
        (_S.ASSIGNED, _A.RETURN_FOR_INFO): _S.RETURNED,
        (_S.ASSIGNED, _A.REJECT): _S.REJECTED,
        (_S.ASSIGNED, _A.MARK_DUPLICATE): _S.DUPLICATE,
        (_S.ASSIGNED, _A.MERGE): _S.DUPLICATE,
        (_S.IN_PROGRESS, _A.ASSIGN): _S.ASSIGNED,
        (_S.IN_PROGRESS, _A.TRANSFER): _S.TRANSFERRED,
        (_S.IN_PROGRESS, _A.RETURN_FOR_INFO): _S.RETURNED,
        (_S.IN_PROGRESS, _A.RESPOND): _S.RESPONDED,
        (_S.IN_PROGRESS, _A.REJECT): _S.REJECTED,
        (_S.IN_PROGRESS, _A.MARK_DUPLICATE): _S.DUPLICATE,
        (_S.IN_PROGRESS, _A.MERGE): _S.DUPLICATE,
        (_S.RETURNED, _A.RESUBMIT): _S.NEW,
        (_S.RETURNED, _A.REJECT): _S.REJECTED,
        (_S.TRANSFERRED, _A.ACCEPT_TRANSFER): _S.TRIAGED,
        (_S.TRANSFERRED, _A.TRANSFER): _S.TRANSFERRED,
        (_S.RESPONDED, _A.CLOSE): _S.CLOSED,
        (_S.RESPONDED, _A.REOPEN): _S.IN_PROGRESS,
        # The submitter withdraws (through the follow-up link) while the case is still open.
        (_S.NEW, _A.WITHDRAW): _S.CLOSED,
        (_S.TRIAGED, _A.WITHDRAW): _S.CLOSED,
        (_S.ASSIGNED, _A.WITHDRAW): _S.CLOSED,
        (_S.IN_PROGRESS, _A.WITHDRAW): _S.CLOSED,
        (_S.RETURNED, _A.WITHDRAW): _S.CLOSED,
        (_S.TRANSFERRED, _A.WITHDRAW): _S.CLOSED,
    }
)

TERMINAL_STATES: frozenset[CaseState] = frozenset({_S.CLOSED, _S.DUPLICATE, _S.REJECTED})
# Free text the citizen or the audit trail needs: why rejected, what information is missing, why reopened.
REQUIRES_REASON: frozenset[Action] = frozenset({_A.REJECT, _A.RETURN_FOR_INFO, _A.REOPEN})
# An id: the receiving agency's code (TRANSFER) or the other case (MARK_DUPLICATE, MERGE).
REQUIRES_TARGET: frozenset[Action] = frozenset({_A.TRANSFER, _A.MARK_DUPLICATE, _A.MERGE})


def _coerce(enum: type[_E], value: _E | str, what: str) -> _E:
    """Accept the enum, its value ("in_progress") or its name ("IN_PROGRESS"), as callers send strings."""
    if isinstance(value, enum):
        return value
    text = str(value).strip()
    try:
        return enum(text)
    except ValueError:
        pass
    try:
        return enum[text.upper()]
    except KeyError:
        choices = ", ".join(member.name for member in enum)
        raise InvalidInput(f"unknown {what} {value!r}: expected one of {choices}") from None


def allowed_actions(state: CaseState | str) -> list[Action]:
    """Actions allowed in ``state``, in declaration order (stable for UIs)."""
    current = _coerce(CaseState, state, "case state")
    return [action for action in Action if (current, action) in TRANSITIONS]


def is_terminal(state: CaseState | str) -> bool:
    """True for CLOSED, DUPLICATE and REJECTED."""
    return _coerce(CaseState, state, "case state") in TERMINAL_STATES


def check_allowed(state: CaseState | str, action: Action | str) -> CaseState:
    """The state ``action`` leads to, or InvalidTransition naming the actions that are allowed.

    Only the state table: a caller can refuse a move (409) before looking at its input (422).
    """
    current = _coerce(CaseState, state, "case state")
    act = _coerce(Action, action, "action")
    nxt = TRANSITIONS.get((current, act))
    if nxt is None:
        allowed = allowed_actions(current)
        if allowed:
            detail = "allowed actions are " + ", ".join(a.name for a in allowed)
        else:
            detail = f"{current.name} is a terminal state, no actions are allowed"
        raise InvalidTransition(f"cannot {act.name} a case in state {current.name}: {detail}")
    return nxt


def apply(
    state: CaseState | str,
    action: Action | str,
    *,
    reason: str | None = None,
    target: str | None = None,
) -> CaseState:
    """The state after ``action``; refuses with the allowed actions listed, then checks required fields."""
    nxt = check_allowed(state, action)
    act = _coerce(Action, action, "action")
    if act in REQUIRES_REASON and not (reason and reason.strip()):
        raise InvalidInput(f"{act.name} requires a reason")
    if act in REQUIRES_TARGET and not (target and target.strip()):
        what = "the receiving agency's code" if act is _A.TRANSFER else "the other case's id"
        raise InvalidInput(f"{act.name} requires a target ({what})")
    return nxt


# --- Deadlines ---------------------------------------------------------------------------------

SubmissionKind = Literal["phan_anh", "kien_nghi", "sang_kien", "giai_phap"]
KINDS: tuple[str, ...] = get_args(SubmissionKind)
DeadlineStatus = Literal["on_track", "due_soon", "overdue"]


def validate_kind(kind: str) -> SubmissionKind:
    """The kind itself when known (phản ánh, kiến nghị, sáng kiến, giải pháp); InvalidInput otherwise."""
    if kind in KINDS:
        return cast(SubmissionKind, kind)
    raise InvalidInput(f"unknown submission kind {kind!r}: expected one of {', '.join(KINDS)}")


@dataclass(frozen=True, kw_only=True)
class DeadlinePolicy:
    """Working-day limits per handling step, with per-kind answer limits.

    * ``forward_days`` (5): forward a matter outside the receiving agency's remit to the competent one,
      after Nghị định 20/2008/NĐ-CP on receiving and handling feedback and petitions of individuals and
      organisations on administrative regulations, as amended by Nghị định 92/2017/NĐ-CP.
    * ``answer_days`` (15): answer the submitter. Công điện 89/CĐ-TTg (2025) asks for an answer within
      15 days without saying "working"; we read it as 15 working days, the usual unit for administrative
      time limits. Set ``overrides`` or TRIAGE_DEADLINE_ANSWER_DAYS if an agency reads it otherwise.
    * ``due_soon_days`` (3): a case with this many working days left, or fewer, is flagged "due soon".
    * ``overrides``: answer days per kind, e.g. more time to assess a sáng kiến.
    """

    forward_days: int = 5
    answer_days: int = 15
    due_soon_days: int = 3
    overrides: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("forward_days", "answer_days"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name} must be at least 1 working day, got {getattr(self, name)}")
        if self.due_soon_days < 0:
            raise InvalidInput(f"due_soon_days must be >= 0, got {self.due_soon_days}")
        for kind, days in self.overrides.items():
            validate_kind(kind)
            if days < 1:
                raise InvalidInput(f"answer days for {kind!r} must be at least 1, got {days}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadlinePolicy:
        """The policy configured by TRIAGE_DEADLINE_* settings."""
        return cls(
            forward_days=settings.deadline_forward_days,
            answer_days=settings.deadline_answer_days,
            due_soon_days=settings.deadline_due_soon_days,
            overrides=settings.deadline_overrides,
        )

    def answer_days_for(self, kind: str) -> int:
        """Answer limit for a kind: its override, else ``answer_days``."""
        return self.overrides.get(validate_kind(kind), self.answer_days)


def _policy(policy: DeadlinePolicy | None) -> DeadlinePolicy:
    """The given policy, else the one configured in the environment (read at call time, not import time)."""
    if policy is not None:
        return policy
    return DeadlinePolicy.from_settings(get_settings())


def response_deadline(
    received_at: datetime | date,
    kind: str,
    policy: DeadlinePolicy | None = None,
    calendar: WorkingCalendar | None = None,
) -> date:
    """Last day to answer a submission of ``kind`` received at ``received_at`` (receipt day not counted)."""
    days = _policy(policy).answer_days_for(kind)
    return (calendar or default_calendar()).add_working_days(received_at, days)


def forward_deadline(
    received_at: datetime | date,
    policy: DeadlinePolicy | None = None,
    calendar: WorkingCalendar | None = None,
) -> date:
    """Last day to forward a matter outside the agency's remit (receipt day not counted)."""
    return (calendar or default_calendar()).add_working_days(received_at, _policy(policy).forward_days)


def working_days_left(due: date, today: date | datetime, calendar: WorkingCalendar | None = None) -> int:
    """Working days in (today, due]: 0 on the due day, negative once past it (working days overdue)."""
    return (calendar or default_calendar()).working_days_between(today, due)


def deadline_status(
    due: date,
    today: date | datetime,
    calendar: WorkingCalendar | None = None,
    policy: DeadlinePolicy | None = None,
) -> DeadlineStatus:
    """Overdue from the day after ``due``; due soon with ``due_soon_days`` working days left or fewer."""
    day = to_local_date(today)
    if day > due:
        return "overdue"
    if working_days_left(due, day, calendar) <= _policy(policy).due_soon_days:
        return "due_soon"
    return "on_track"
