"""Case workflow: every allowed and refused transition, required fields, and deadlines per kind."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from triage.cases.calendar import WorkingCalendar, default_calendar
from triage.cases.workflow import (
    KINDS,
    REQUIRES_REASON,
    REQUIRES_TARGET,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    CaseState,
    DeadlinePolicy,
    allowed_actions,
    apply,
    check_allowed,
    deadline_status,
    forward_deadline,
    is_terminal,
    response_deadline,
    working_days_left,
)
from triage.config import Settings, get_settings
from triage.errors import InvalidInput, InvalidTransition

D = date

# The specification, written independently of the module: state -> {action: next state}.
SPEC: dict[str, dict[str, str]] = {
    "NEW": {
        "TRIAGE": "TRIAGED",
        "RETURN_FOR_INFO": "RETURNED",
        "REJECT": "REJECTED",
        "MARK_DUPLICATE": "DUPLICATE",
        "MERGE": "DUPLICATE",
        "WITHDRAW": "CLOSED",
    },
    "TRIAGED": {
        "TRIAGE": "TRIAGED",
        "ASSIGN": "ASSIGNED",
        "TRANSFER": "TRANSFERRED",
        "RETURN_FOR_INFO": "RETURNED",
        "REJECT": "REJECTED",
        "MARK_DUPLICATE": "DUPLICATE",
        "MERGE": "DUPLICATE",
        "WITHDRAW": "CLOSED",
    },
    "ASSIGNED": {
        "ASSIGN": "ASSIGNED",
        "START": "IN_PROGRESS",
        "TRANSFER": "TRANSFERRED",
        "RETURN_FOR_INFO": "RETURNED",
        "REJECT": "REJECTED",
        "MARK_DUPLICATE": "DUPLICATE",
        "MERGE": "DUPLICATE",
        "WITHDRAW": "CLOSED",
    },
    "IN_PROGRESS": {
        "ASSIGN": "ASSIGNED",
        "TRANSFER": "TRANSFERRED",
        "RETURN_FOR_INFO": "RETURNED",
        "RESPOND": "RESPONDED",
        "REJECT": "REJECTED",
        "MARK_DUPLICATE": "DUPLICATE",
        "MERGE": "DUPLICATE",
        "WITHDRAW": "CLOSED",
    },
    "RETURNED": {"RESUBMIT": "NEW", "REJECT": "REJECTED", "WITHDRAW": "CLOSED"},
    "TRANSFERRED": {"ACCEPT_TRANSFER": "TRIAGED", "TRANSFER": "TRANSFERRED", "WITHDRAW": "CLOSED"},
    "RESPONDED": {"CLOSE": "CLOSED", "REOPEN": "IN_PROGRESS"},
    "CLOSED": {},
    "DUPLICATE": {},
    "REJECTED": {},
}
ALLOWED = [(CaseState[s], Action[a], CaseState[t]) for s, actions in SPEC.items() for a, t in actions.items()]
ALLOWED_PAIRS = {(s, a) for s, a, _ in ALLOWED}
REFUSED = [(s, a) for s, a in itertools.product(CaseState, Action) if (s, a) not in ALLOWED_PAIRS]
FULL = {"reason": "Thiếu địa chỉ nơi xảy ra vụ việc", "target": "BKHCN"}


def _id(value: object) -> str:
    return getattr(value, "name", str(value))


# --- The table ----------------------------------------------------------------------------------


def test_table_matches_the_specification() -> None:
    assert dict(TRANSITIONS) == {(s, a): t for s, a, t in ALLOWED}
    assert len(ALLOWED) + len(REFUSED) == len(CaseState) * len(Action) == 140


@pytest.mark.parametrize(("state", "action", "expected"), ALLOWED, ids=[f"{s.name}-{a.name}" for s, a, _ in ALLOWED])
def test_allowed_transition(state: CaseState, action: Action, expected: CaseState) -> None:
    assert apply(state, action, **FULL) is expected
    assert action in allowed_actions(state)


@pytest.mark.parametrize(("state", "action"), REFUSED, ids=[f"{s.name}-{a.name}" for s, a in REFUSED])
def test_refused_transition(state: CaseState, action: Action) -> None:
    with pytest.raises(InvalidTransition) as info:
        apply(state, action, **FULL)
    message = str(info.value)
    assert message.startswith(f"cannot {action.name} a case in state {state.name}: ")
    for allowed in allowed_actions(state):
        assert allowed.name in message
    assert action not in allowed_actions(state)


def test_refusal_message_lists_allowed_actions_in_order() -> None:
    with pytest.raises(InvalidTransition) as info:
        apply(CaseState.NEW, Action.RESPOND)
    assert str(info.value) == (
        "cannot RESPOND a case in state NEW: allowed actions are "
        "TRIAGE, RETURN_FOR_INFO, REJECT, MARK_DUPLICATE, MERGE, WITHDRAW"
    )


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES), ids=_id)
def test_terminal_states_have_no_actions(state: CaseState) -> None:
    assert allowed_actions(state) == []
    assert is_terminal(state)
    with pytest.raises(InvalidTransition, match="terminal state, no actions are allowed"):
        apply(state, Action.REOPEN, **FULL)


def test_terminal_states_are_exactly_closed_duplicate_rejected() -> None:
    assert {s for s in CaseState if not allowed_actions(s)} == {
        CaseState.CLOSED,
        CaseState.DUPLICATE,
        CaseState.REJECTED,
    }


def test_no_dead_ends() -> None:
    """Every state is reachable from NEW, and CLOSED is reachable from every non-terminal state."""
    graph: dict[CaseState, set[CaseState]] = {s: set() for s in CaseState}
    for (source, _), target in TRANSITIONS.items():
        graph[source].add(target)

    def reachable(start: CaseState) -> set[CaseState]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert reachable(CaseState.NEW) == set(CaseState)
    for state in set(CaseState) - TERMINAL_STATES:
        assert CaseState.CLOSED in reachable(state), state


def test_reject_duplicate_and_merge_sources() -> None:
    rejectable = {s for s in CaseState if Action.REJECT in allowed_actions(s)}
    assert rejectable == {
        CaseState.NEW,
        CaseState.TRIAGED,
        CaseState.ASSIGNED,
        CaseState.IN_PROGRESS,
        CaseState.RETURNED,
    }
    open_in_hand = {CaseState.NEW, CaseState.TRIAGED, CaseState.ASSIGNED, CaseState.IN_PROGRESS}
    for action in (Action.MARK_DUPLICATE, Action.MERGE):
        assert {s for s in CaseState if action in allowed_actions(s)} == open_in_hand
        assert {TRANSITIONS[s, action] for s in open_in_hand} == {CaseState.DUPLICATE}


def test_happy_path_and_side_paths() -> None:
    state = CaseState.NEW
    for action in (Action.TRIAGE, Action.ASSIGN, Action.START, Action.RESPOND, Action.CLOSE):
        state = apply(state, action)
    assert state is CaseState.CLOSED

    state = apply(CaseState.IN_PROGRESS, Action.TRANSFER, target="UBND_HN")
    state = apply(state, Action.TRANSFER, target="BKHCN")  # rerouted again by the receiver
    assert apply(state, Action.ACCEPT_TRANSFER) is CaseState.TRIAGED

    state = apply(CaseState.IN_PROGRESS, Action.RETURN_FOR_INFO, reason="Đề nghị bổ sung số hồ sơ")
    assert apply(state, Action.RESUBMIT) is CaseState.NEW

    state = apply(CaseState.RESPONDED, Action.REOPEN, reason="Trả lời chưa đề cập kinh phí đề tài")
    assert state is CaseState.IN_PROGRESS


# --- Required fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_requires_a_reason(reason: str | None) -> None:
    with pytest.raises(InvalidInput, match="REJECT requires a reason"):
        apply(CaseState.TRIAGED, Action.REJECT, reason=reason)
    assert apply(CaseState.TRIAGED, Action.REJECT, reason="Nội dung không thuộc phạm vi PAKN") is CaseState.REJECTED


@pytest.mark.parametrize("target", [None, "", "  "])
def test_mark_duplicate_requires_a_target(target: str | None) -> None:
    with pytest.raises(InvalidInput, match="MARK_DUPLICATE requires a target"):
        apply(CaseState.NEW, Action.MARK_DUPLICATE, target=target)
    assert apply(CaseState.NEW, Action.MARK_DUPLICATE, target="case-42") is CaseState.DUPLICATE


def test_other_required_fields() -> None:
    assert {Action.REJECT, Action.RETURN_FOR_INFO, Action.REOPEN} == REQUIRES_REASON
    assert {Action.TRANSFER, Action.MARK_DUPLICATE, Action.MERGE} == REQUIRES_TARGET
    with pytest.raises(InvalidInput, match="RETURN_FOR_INFO requires a reason"):
        apply(CaseState.NEW, Action.RETURN_FOR_INFO)
    with pytest.raises(InvalidInput, match="REOPEN requires a reason"):
        apply(CaseState.RESPONDED, Action.REOPEN)
    with pytest.raises(InvalidInput, match="receiving agency"):
        apply(CaseState.TRIAGED, Action.TRANSFER)
    with pytest.raises(InvalidInput, match="MERGE requires a target"):
        apply(CaseState.IN_PROGRESS, Action.MERGE)


def test_transition_is_checked_before_required_fields() -> None:
    with pytest.raises(InvalidTransition):
        apply(CaseState.RESPONDED, Action.REJECT)  # no reason, but the action itself is not allowed


def test_check_allowed_is_the_table_without_the_input_checks() -> None:
    for state, action in itertools.product(CaseState, Action):
        if (state, action) in TRANSITIONS:
            assert check_allowed(state, action) is TRANSITIONS[(state, action)]
        else:
            with pytest.raises(InvalidTransition) as refused:
                check_allowed(state, action)
            with pytest.raises(InvalidTransition) as applied:
                apply(state, action, **FULL)
            assert str(refused.value) == str(applied.value)
    # A move that needs a reason or a target is allowed before either is known.
    assert check_allowed(CaseState.NEW, Action.REJECT) is CaseState.REJECTED
    assert check_allowed("new", "mark_duplicate") is CaseState.DUPLICATE
    with pytest.raises(InvalidInput, match="unknown action"):
        check_allowed(CaseState.NEW, "approve")


def test_strings_are_accepted_and_unknown_names_refused() -> None:
    assert apply("new", "triage") is CaseState.TRIAGED
    assert apply("IN_PROGRESS", "RESPOND") is CaseState.RESPONDED
    assert allowed_actions("responded") == [Action.CLOSE, Action.REOPEN]
    with pytest.raises(InvalidInput, match="unknown action"):
        apply(CaseState.NEW, "approve")
    with pytest.raises(InvalidInput, match="unknown case state"):
        allowed_actions("pending")


# --- Deadline policy ----------------------------------------------------------------------------


def test_policy_defaults_and_settings() -> None:
    policy = DeadlinePolicy.from_settings(Settings())
    assert (policy.forward_days, policy.answer_days, policy.due_soon_days) == (5, 15, 3)
    assert dict(policy.overrides) == {}
    assert DeadlinePolicy() == policy

    custom = DeadlinePolicy.from_settings(
        Settings(deadline_answer_days=10, deadline_forward_days=3, deadline_overrides={"sang_kien": 30})
    )
    assert custom.answer_days_for("phan_anh") == 10
    assert custom.answer_days_for("sang_kien") == 30
    assert custom.forward_days == 3


def test_overrides_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DEADLINE_OVERRIDES", '{"giai_phap": 20, "kien_nghi": 10}')
    policy = DeadlinePolicy.from_settings(Settings())
    assert policy.answer_days_for("giai_phap") == 20
    assert policy.answer_days_for("kien_nghi") == 10
    assert policy.answer_days_for("phan_anh") == 15


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_default_policy_is_read_from_settings(monkeypatch: pytest.MonkeyPatch, fresh_settings: None) -> None:
    monkeypatch.setenv("TRIAGE_DEADLINE_ANSWER_DAYS", "1")
    # Received Fri 13 Feb 2026: one working day later is Mon 23 Feb, after Tết.
    assert response_deadline(D(2026, 2, 13), "phan_anh") == D(2026, 2, 23)


def test_policy_is_immutable_and_validated() -> None:
    policy = DeadlinePolicy(overrides={"sang_kien": 30})
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.answer_days = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.overrides["phan_anh"] = 1  # type: ignore[index]
    with pytest.raises(InvalidInput, match="unknown submission kind 'khieu_nai'"):
        DeadlinePolicy(overrides={"khieu_nai": 10})
    with pytest.raises(InvalidInput):
        DeadlinePolicy(overrides={"phan_anh": 0})
    with pytest.raises(InvalidInput):
        DeadlinePolicy(forward_days=0)
    with pytest.raises(InvalidInput):
        DeadlinePolicy(due_soon_days=-1)


# --- Deadlines ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return default_calendar()


def test_response_deadline_across_tet(cal: WorkingCalendar) -> None:
    # Received Mon 2 Feb 2026, 15 working days: Tue 3 .. Fri 13 Feb are 9, Tết 16-20 Feb is skipped,
    # Mon 23 .. Fri 27 Feb are 10-14, Mon 2 Mar is the 15th.
    policy = DeadlinePolicy()
    for kind in KINDS:
        assert response_deadline(D(2026, 2, 2), kind, policy, cal) == D(2026, 3, 2)


def test_response_deadline_override_per_kind(cal: WorkingCalendar) -> None:
    policy = DeadlinePolicy(overrides={"sang_kien": 30, "kien_nghi": 5})
    received = datetime(2026, 2, 13, 9, 30, tzinfo=UTC)
    assert response_deadline(received, "kien_nghi", policy, cal) == D(2026, 2, 27)
    assert cal.working_days_between(D(2026, 2, 13), response_deadline(received, "sang_kien", policy, cal)) == 30
    assert response_deadline(received, "phan_anh", policy, cal) == cal.add_working_days(D(2026, 2, 13), 15)


def test_unknown_kind_is_invalid_input(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput, match="expected one of phan_anh, kien_nghi, sang_kien, giai_phap"):
        response_deadline(D(2026, 2, 2), "khieu_nai", DeadlinePolicy(), cal)


def test_forward_deadline(cal: WorkingCalendar) -> None:
    # Received Fri 13 Feb 2026: 5 working days after Tết is Fri 27 Feb (see test_calendar).
    assert forward_deadline(D(2026, 2, 13), DeadlinePolicy(), cal) == D(2026, 2, 27)
    # Received Wed 29 Apr 2026 with 3 days: Thu 30 / Fri 1 off, weekend, Mon 4, Tue 5, Wed 6 May.
    assert forward_deadline(D(2026, 4, 29), DeadlinePolicy(forward_days=3), cal) == D(2026, 5, 6)


@pytest.mark.parametrize(
    ("today", "left", "status"),
    [
        (D(2026, 2, 13), 5, "on_track"),  # Mon 23 .. Fri 27
        (D(2026, 2, 23), 4, "on_track"),
        (D(2026, 2, 24), 3, "due_soon"),
        (D(2026, 2, 26), 1, "due_soon"),
        (D(2026, 2, 27), 0, "due_soon"),  # due today
        (D(2026, 2, 28), 0, "overdue"),  # Saturday after the due Friday
        (D(2026, 3, 4), -3, "overdue"),  # Mon 2, Tue 3, Wed 4 late
    ],
)
def test_deadline_status(cal: WorkingCalendar, today: date, left: int, status: str) -> None:
    due = D(2026, 2, 27)
    assert working_days_left(due, today, cal) == left
    assert deadline_status(due, today, cal, DeadlinePolicy()) == status


def test_due_soon_counts_working_days_not_calendar_days(cal: WorkingCalendar) -> None:
    # Twelve calendar days before Wed 25 Feb 2026 but only three working days (Mon 23, Tue 24, Wed 25).
    assert deadline_status(D(2026, 2, 25), D(2026, 2, 13), cal, DeadlinePolicy()) == "due_soon"
    assert deadline_status(D(2026, 2, 25), D(2026, 2, 13), cal, DeadlinePolicy(due_soon_days=2)) == "on_track"
    # A datetime "today" late on Thu 26 Feb UTC is already Fri 27 Feb in Hà Nội.
    assert working_days_left(D(2026, 2, 27), datetime(2026, 2, 26, 18, 0, tzinfo=UTC), cal) == 0
