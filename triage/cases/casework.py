"""Actions on cases: every one goes through ``workflow.apply`` and leaves an audit Event.

Checks happen in one order everywhere, so the answers are predictable: the case must exist *for
this account* (a handler's view stops at its agency: NotFound, never PermissionDenied, so other
agencies' case numbers cannot be probed), then the role must hold the permission, then the workflow
must allow the action in the case's state, then the action's own inputs are checked. The change,
its audit event and any reviewed label are written in the caller's transaction: all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.accounts import Principal, Role
from triage.cases.calendar import WorkingCalendar, to_local_date
from triage.cases.notifications import notify_submitters
from triage.cases.workflow import (
    Action,
    CaseState,
    DeadlinePolicy,
    apply,
    check_allowed,
    forward_deadline,
    response_deadline,
    validate_kind,
)
from triage.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.moderation import DECISIONS, decided
from triage.nlp.programme_fields import CODE_PATTERN
from triage.nlp.text import mask_pii
from triage.store.repositories import CaseFilter, Cases, Submissions, Users
from triage.store.tables import Assignment, Case, Response, ReviewedLabel, Submission, utcnow

MAX_NOTE = 2_000
# A merge target's answer goes to every submitter, so it must not be answered or ended already.
_NOT_MERGEABLE = frozenset({CaseState.RESPONDED, CaseState.CLOSED, CaseState.DUPLICATE, CaseState.REJECTED})


def snapshot(case: Case) -> dict[str, Any]:
    """The parts of a case an action can change: what the audit trail's before/after hold."""
    return {
        "state": case.state,
        "agency_code": case.agency_code,
        "field": case.field,
        "kind": case.kind,
        "assignee_id": case.assignee_id,
        "forward_due": None if case.forward_due is None else case.forward_due.isoformat(),
        "answer_due": None if case.answer_due is None else case.answer_due.isoformat(),
        "duplicate_of": case.duplicate_of,
        "merged_into": case.merged_into,
    }


def _text(value: str | None, what: str, *, required: bool = False, limit: int = MAX_NOTE) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"{what} is required")
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text or None


class Casework:
    """One account's actions on cases within one transaction (``session``)."""

    def __init__(
        self,
        session: Session,
        who: Principal,
        *,
        policy: DeadlinePolicy | None = None,
        calendar: WorkingCalendar | None = None,
        registry: AgencyRegistry | None = None,
        now: datetime | None = None,
    ) -> None:
        self.session = session
        self.who = who
        self.policy = policy or DeadlinePolicy()
        self.calendar = calendar
        self.registry = registry or default_registry()
        self.now = now or utcnow()

    # ---- reading -------------------------------------------------------------------------
    def case(self, case_id: int, *, for_update: bool = False) -> Case:
        """The case if it exists for this account; NotFound otherwise (also for other agencies' cases)."""
        case = Cases(self.session).get(case_id, for_update=for_update)
        if case is None or not self.who.sees(case.agency_code):
            raise NotFound(f"case {case_id} not found")
        return case

    def find(self, f: CaseFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[Case], int]:
        """Cases matching ``f`` that this account may see (a handler: its agency's only)."""
        self.who.require("cases.read")
        if self.who.scoped:
            if f.agency_code and f.agency_code != self.who.agency_code:
                return [], 0
            f = CaseFilter(**{**f.__dict__, "agency_code": self.who.agency_code})
        if self.who.masked and not f.masked_text:
            f = CaseFilter(**{**f.__dict__, "masked_text": True})
        return Cases(self.session).find(f, to_local_date(self.now), limit=limit, offset=offset)

    # ---- the common path -----------------------------------------------------------------
    def _act(
        self,
        case: Case,
        action: Action,
        *,
        reason: str | None = None,
        target: str | None = None,
        change: Callable[[Case], None] | None = None,
        extra: dict[str, Any] | None = None,
        model_version: str | None = None,
    ) -> Case:
        self.who.require(action.value)
        before = snapshot(case)
        case.state = apply(case.state, action, reason=reason, target=target).value
        if change is not None:
            change(case)
        case.updated_at = self.now
        after = snapshot(case)
        if reason:
            after["reason"] = reason
        after.update(extra or {})
        audit.record(
            self.session,
            actor=self.who.username,
            action=action.value,
            case_id=case.id,
            before=before,
            after=after,
            model_version=model_version,
            at=self.now,
        )
        self.session.flush()
        return case

    def _allowed(self, case: Case, action: Action) -> None:
        """Permission, then the state (409 comes before any input check: the answer names the real problem)."""
        self.who.require(action.value)
        check_allowed(case.state, action)

    def _agency(self, name_or_code: str | None, what: str = "agency") -> str:
        if not name_or_code or not name_or_code.strip():
            raise InvalidInput(f"{what} is required")
        try:
            return self.registry.resolve(name_or_code).code
        except NotFound as exc:
            raise InvalidInput(f"{what}: {exc}") from None

    def _pair(self, case_id: int, target: int | str | None, what: str) -> tuple[Case, Case]:
        """This case and another one, both locked in ascending id order (the one lock order, see ``audit``)."""
        try:
            target_id = int(str(target))
        except ValueError:
            raise InvalidInput(f"{what} must be a case id") from None
        if target_id == case_id:
            self.case(case_id)  # NotFound first for a case this account cannot see
            raise InvalidInput(f"{what} must be another case, not case {case_id} itself")
        locked = {c.id: c for c in Cases(self.session).lock([case_id, target_id])}
        case = locked.get(case_id)
        if case is None or not self.who.sees(case.agency_code):
            raise NotFound(f"case {case_id} not found")
        other = locked.get(target_id)
        if other is None or not self.who.sees(other.agency_code):
            raise InvalidInput(f"{what}: case {target_id} not found")
        return case, other

    def _deadlines_from(self, case: Case, start: datetime) -> None:
        case.forward_due = forward_deadline(start, self.policy, self.calendar)
        case.answer_due = response_deadline(start, case.kind, self.policy, self.calendar)

    # ---- actions -------------------------------------------------------------------------
    def route(
        self,
        case_id: int,
        *,
        agency: str,
        field: str | None = None,
        kind: str | None = None,
        note: str | None = None,
        programme_field: str | None = None,
    ) -> Case:
        """Confirm or correct the suggested route; either way a ReviewedLabel records the decision.

        ``programme_field``: the clerk's programme field (a code the caller checked against the taxonomy in
        use); None keeps the stored one. A change is audited beside the suggested code.
        """
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.TRIAGE)
        code = self._agency(agency)
        new_kind = validate_kind(kind) if kind else case.kind
        field = _text(field, "field", limit=200)
        note = _text(note, "note")
        programme = (programme_field or "").strip() or None
        if programme is not None and not CODE_PATTERN.match(programme):
            raise InvalidInput(f"programme_field: {programme[:40]!r} is not a programme field code")
        suggestion = case.suggestion or {}
        suggested_agency = next((a.get("code") for a in suggestion.get("agencies", [])), None)
        suggested_field = next((f.get("name") for f in suggestion.get("fields", [])), None)
        label_field = field or (suggested_field if code == suggested_agency else None)
        suggested_kind = suggestion.get("kind", case.kind)
        confirmed = (
            code == suggested_agency and (field is None or field == suggested_field) and new_kind == suggested_kind
        )
        kind_changed = new_kind != case.kind

        programme_change: dict[str, Any] = {}
        if programme is not None and programme != case.programme_field:
            suggested_programme = next((f.get("code") for f in suggestion.get("programme_fields") or []), None)
            programme_change = {
                "programme_field": programme,
                "previous_programme_field": case.programme_field,
                "suggested_programme_field": suggested_programme,
            }

        def change(c: Case) -> None:
            if c.agency_code != code:
                c.assignee_id = None
            c.agency_code, c.field, c.kind = code, label_field, new_kind
            if programme is not None:
                c.programme_field = programme
            if kind_changed:
                c.answer_due = response_deadline(c.received_at, new_kind, self.policy, self.calendar)

        self._act(
            case,
            Action.TRIAGE,
            change=change,
            extra={
                "confirmed": confirmed,
                "suggested_agency": suggested_agency,
                **programme_change,
                **({"note": note} if note else {}),
            },
            model_version=case.model_version,
        )
        subs = Submissions(self.session).of_case(case.id)
        text = "\n".join(f"{s.title}. {s.content}" for s in subs[:1])
        self.session.add(
            ReviewedLabel(
                case_id=case.id,
                text=mask_pii(text),
                agency_code=code,
                field=label_field,
                kind=new_kind,
                suggested_agency_code=suggested_agency,
                confirmed=confirmed,
                model_version=case.model_version,
                reviewer_id=self._user_id(),
                at=self.now,
            )
        )
        self.session.flush()
        return case

    def _user_id(self) -> int:
        if self.who.user_id is None:
            raise InvalidInput("this action needs a staff account")
        return self.who.user_id

    def assign(self, case_id: int, *, assignee: str, note: str | None = None) -> Case:
        """Give the case to a handler of the agency responsible for it."""
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.ASSIGN)
        user = Users(self.session).by_username(assignee.strip())
        if user is None or not user.active:
            raise InvalidInput(f"assignee: no active account {assignee!r}")
        if user.role != Role.HANDLER.value or user.agency_code != case.agency_code:
            raise InvalidInput(f"assignee: {assignee!r} is not a handler of agency {case.agency_code}")
        note = _text(note, "note")
        by = self._user_id()

        def change(c: Case) -> None:
            c.assignee_id = user.id

        self._act(case, Action.ASSIGN, target=assignee, change=change, extra={"assignee": user.username})
        self.session.add(
            Assignment(
                case_id=case.id,
                agency_code=case.agency_code,
                assignee_id=user.id,
                assigned_by=by,
                note=note,
                at=self.now,
            )
        )
        return case

    def start(self, case_id: int) -> Case:
        """The handler starts work (the answer deadline keeps running from receipt)."""
        case = self.case(case_id, for_update=True)

        def change(c: Case) -> None:
            if c.assignee_id is None and self.who.role is Role.HANDLER:
                c.assignee_id = self.who.user_id

        return self._act(case, Action.START, change=change)

    def transfer(self, case_id: int, *, agency: str, reason: str | None = None) -> Case:
        """Forward a matter outside this agency's remit; the receiving agency's answer time starts now."""
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.TRANSFER)
        code = self._agency(agency, "target agency")
        if code == case.agency_code:
            raise InvalidInput(f"the case is already with {code}")
        reason = _text(reason, "reason")
        previous = case.agency_code

        def change(c: Case) -> None:
            c.agency_code, c.assignee_id, c.field = code, None, None
            c.answer_due = response_deadline(self.now, c.kind, self.policy, self.calendar)

        return self._act(case, Action.TRANSFER, reason=reason, target=code, change=change, extra={"from": previous})

    def accept_transfer(self, case_id: int) -> Case:
        return self._act(self.case(case_id, for_update=True), Action.ACCEPT_TRANSFER)

    def return_for_info(self, case_id: int, *, reason: str) -> Case:
        """Ask the submitter for more information; the deadline pauses until they answer."""
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.RETURN_FOR_INFO)
        text = _text(reason, "reason", required=True)
        self._act(case, Action.RETURN_FOR_INFO, reason=text)
        notify_submitters(self.session, case, "returned", text or "", now=self.now)  # same transaction
        return case

    def resubmit(self, case_id: int, *, note: str | None = None) -> Case:
        """The submitter sent the missing information: back to NEW, deadlines counted again from today."""
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.RESUBMIT)
        note = _text(note, "note")
        return self._act(
            case,
            Action.RESUBMIT,
            change=lambda c: self._deadlines_from(c, self.now),
            extra={"note": note} if note else None,
        )

    def respond(self, case_id: int, *, body: str) -> Case:
        """Record the agency's answer; the first answer's time decides whether it was on time."""
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.RESPOND)
        text = _text(body, "response body", required=True, limit=20_000)
        author = self._user_id()

        def change(c: Case) -> None:
            if c.answered_at is None:
                c.answered_at = self.now

        reply = Response(case_id=case.id, author_id=author, agency_code=case.agency_code, body=text or "", at=self.now)
        self.session.add(reply)
        self.session.flush()  # its id goes into the event, with the body's digest: the reply is covered by the chain
        extra = {
            "response_chars": len(text or ""),
            "response_id": reply.id,
            "body_sha256": audit.text_digest(body=text),
        }
        self._act(case, Action.RESPOND, change=change, extra=extra)
        notify_submitters(self.session, case, "answered", text or "", now=self.now)  # same transaction
        return case

    def _end(self, c: Case) -> None:
        c.ended_at = self.now

    def close(self, case_id: int, *, note: str | None = None) -> Case:
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.CLOSE)
        note = _text(note, "note")
        return self._act(case, Action.CLOSE, change=self._end, extra={"note": note} if note else None)

    def reopen(self, case_id: int, *, reason: str) -> Case:
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.REOPEN)
        return self._act(case, Action.REOPEN, reason=_text(reason, "reason", required=True))

    def reject(self, case_id: int, *, reason: str) -> Case:
        case = self.case(case_id, for_update=True)
        self._allowed(case, Action.REJECT)
        return self._act(case, Action.REJECT, reason=_text(reason, "reason", required=True), change=self._end)

    def mark_duplicate(self, case_id: int, *, target: int) -> Case:
        """This case repeats ``target``; it ends here and points there."""
        case = self.case(case_id)
        self._allowed(case, Action.MARK_DUPLICATE)
        case, other = self._pair(case_id, target, "duplicate_of")
        self._allowed(case, Action.MARK_DUPLICATE)  # again under the lock: the state may have moved meanwhile

        def change(c: Case) -> None:
            c.duplicate_of = other.id
            self._end(c)

        return self._act(case, Action.MARK_DUPLICATE, target=str(other.id), change=change)

    def moderate(self, case_id: int, *, decision: str, note: str | None = None) -> Case:
        """Confirm or dismiss the case's abuse / spam flag; the case itself is never hidden or deleted.

        ``confirm`` also raises a flag the model missed. The decision lives in the suggestion's
        ``moderation`` next to the model's scores, and the event keeps the flag before and after.
        Refused (409) while the case has no suggestion yet: the periodic re-triage fills it first.
        """
        case = self.case(case_id, for_update=True)
        self.who.require("moderate")
        if decision not in DECISIONS:
            raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        if case.suggestion is None:
            raise Conflict(f"case {case.id} has not been screened yet (no suggestion); try again after triage")
        note = _text(note, "note")
        old = case.suggestion.get("moderation")
        if decision == "dismiss" and not (old or {}).get("flagged"):
            raise Conflict(f"case {case.id} carries no moderation flag to dismiss")
        new = decided(old, decision, by=self.who.username, at=self.now, note=note)
        # A new dict (not an in-place edit) so the JSON column is written.
        case.suggestion = {**case.suggestion, "moderation": new}
        case.updated_at = self.now
        keys = ("flagged", "model_flagged", "reasons", "decision", "decided_by")
        audit.record(
            self.session,
            actor=self.who.username,
            action="moderate",
            case_id=case.id,
            before=None if old is None else {k: old.get(k) for k in keys},
            after={**{k: new.get(k) for k in keys}, **({"note": note} if note else {})},
            model_version=new.get("model"),
            at=self.now,
        )
        self.session.flush()
        return case

    def merge(self, case_id: int, *, target: int) -> Case:
        """Fold this case into open case ``target``: its submissions move there, this one ends as a duplicate.

        The target's answer then reaches every submitter, so it must still be open (not answered or
        ended); to link to an answered case, mark this one as its duplicate instead.
        """
        case = self.case(case_id)
        self._allowed(case, Action.MERGE)
        case, into = self._pair(case_id, target, "merge target")
        self._allowed(case, Action.MERGE)  # again under the lock: the state may have moved meanwhile
        if into.state in _NOT_MERGEABLE:
            raise InvalidTransition(
                f"cannot MERGE into case {into.id}: it is {CaseState(into.state).name}; "
                "merge only into an open case, or mark this one as its duplicate"
            )
        moved = [s.id for s in Submissions(self.session).of_case(case.id)]

        def change(c: Case) -> None:
            c.merged_into = into.id
            self._end(c)

        self._act(case, Action.MERGE, target=str(into.id), change=change, extra={"submissions": moved})
        self.session.execute(update(Submission).where(Submission.case_id == case.id).values(case_id=into.id))
        # The receiving case's own timeline says what it absorbed (no state change there).
        audit.record(
            self.session,
            actor=self.who.username,
            action="absorb",
            case_id=into.id,
            before={"submissions": len(Submissions(self.session).of_case(into.id)) - len(moved)},
            after={"absorbed_case": case.id, "submissions": moved},
            at=self.now,
        )
        into.updated_at = self.now
        self.session.flush()
        return case
