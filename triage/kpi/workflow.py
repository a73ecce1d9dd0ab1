"""Report states and the moves between them, as one explicit table (like ``triage.cases.workflow``).

::

    DUE -SUBMIT-> SUBMITTED -VERIFY-> VERIFIED -LOCK-> LOCKED
                  SUBMITTED -RETURN-> RETURNED -SUBMIT-> SUBMITTED
                  VERIFIED  -RETURN-> RETURNED
    LOCKED -CORRECT-> SUBMITTED   (a new version, with the reason; every version is kept)

RETURN needs a reason (what to fix), CORRECT a reason (why a locked figure changes). A reporter
submits and corrects; the coordinating office verifies, returns and locks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from triage.cases.calendar import WorkingCalendar, default_calendar, to_local_date
from triage.errors import InvalidInput, InvalidTransition
from triage.kpi.periods import Period


class ReportState(StrEnum):
    DUE = "due"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    VERIFIED = "verified"
    LOCKED = "locked"


class ReportAction(StrEnum):
    SUBMIT = "submit"
    VERIFY = "verify"
    RETURN = "return"
    LOCK = "lock"
    CORRECT = "correct"


_S, _A = ReportState, ReportAction
TRANSITIONS: Mapping[tuple[ReportState, ReportAction], ReportState] = MappingProxyType(
    {
        (_S.DUE, _A.SUBMIT): _S.SUBMITTED,
        (_S.RETURNED, _A.SUBMIT): _S.SUBMITTED,
        (_S.SUBMITTED, _A.VERIFY): _S.VERIFIED,
        (_S.SUBMITTED, _A.RETURN): _S.RETURNED,
        (_S.VERIFIED, _A.RETURN): _S.RETURNED,
        (_S.VERIFIED, _A.LOCK): _S.LOCKED,
        (_S.LOCKED, _A.CORRECT): _S.SUBMITTED,
    }
)
REQUIRES_REASON: frozenset[ReportAction] = frozenset({_A.RETURN, _A.CORRECT})
# Who may take each action (permission names of ``triage.cases.accounts.PERMISSIONS``).
PERMISSION: Mapping[ReportAction, str] = MappingProxyType(
    {
        _A.SUBMIT: "kpi.submit",
        _A.CORRECT: "kpi.submit",
        _A.VERIFY: "kpi.verify",
        _A.RETURN: "kpi.verify",
        _A.LOCK: "kpi.verify",
    }
)
LABELS: Mapping[str, str] = MappingProxyType(
    {
        "due": "Chưa nộp",
        "submitted": "Đã nộp, chờ xác minh",
        "returned": "Bị trả lại",
        "verified": "Đã xác minh",
        "locked": "Đã khóa sổ",
    }
)


def allowed_actions(state: ReportState | str) -> list[ReportAction]:
    current = ReportState(state)
    return [a for a in ReportAction if (current, a) in TRANSITIONS]


def apply(state: ReportState | str, action: ReportAction | str, *, reason: str | None = None) -> ReportState:
    """The state after ``action``; InvalidTransition naming the allowed actions, InvalidInput without a reason."""
    try:
        current, act = ReportState(state), ReportAction(action)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    nxt = TRANSITIONS.get((current, act))
    if nxt is None:
        allowed = ", ".join(a.value for a in allowed_actions(current)) or "none"
        raise InvalidTransition(f"cannot {act.value} a report in state {current.value}: allowed actions are {allowed}")
    if act in REQUIRES_REASON and not (reason and reason.strip()):
        raise InvalidInput(f"{act.value} requires a reason")
    return nxt


def report_deadline(period: Period, report_days: int, calendar: WorkingCalendar | None = None) -> date:
    """Last day to report ``period``: ``report_days`` working days after it ends (Vietnamese calendar)."""
    return (calendar or default_calendar()).add_working_days(period.last_day(), report_days)


def is_overdue(due: date, today: date | datetime) -> bool:
    return to_local_date(today) > due
