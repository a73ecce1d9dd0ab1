"""Stored rows -> response models, with each role's view applied in one place.

Analysts get texts through ``mask_personal`` (numbers, e-mails, names, street addresses) and no
tracking codes, contact details or raw texts; everything else is the
stored data as data (JSON strings): markup a citizen typed stays inert text for any client.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.schemas.cases import (
    CaseDetail,
    CaseSummary,
    ContactOut,
    EventOut,
    ResponseOut,
    SubmissionOut,
)
from service.schemas.stats import AgencyStatsOut, ProgrammeFieldStatsOut, StatsOut
from service.state import ServiceState
from triage.cases.accounts import Principal
from triage.cases.calendar import to_local_date
from triage.cases.stats import agency_stats, programme_field_stats
from triage.cases.workflow import allowed_actions, deadline_status, working_days_left
from triage.errors import InvalidInput
from triage.nlp.agencies import default_registry
from triage.nlp.text import mask_personal
from triage.store.repositories import OPEN_STATES, Submissions, Timeline, Users
from triage.store.tables import Case, Submission, User


def _agency_name(code: str | None) -> str | None:
    return default_registry().name_of(code)


# Keys of audit payloads a masked role never reads: a tracking code opens /track (the agency's
# replies), and contact fields are contact data whatever their format.
HIDDEN_KEYS = frozenset(
    {"tracking_code", "contact", "contact_name", "contact_email", "contact_phone", "contact_address"}
)


def _masked(value: Any) -> Any:
    """Mask personal data in every string of a JSON value, dropping hidden keys (a masked role's timeline)."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items() if k not in HIDDEN_KEYS}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


# Payload keys that name another case: a handler sees them only for cases of its own agency.
CASE_REF_KEYS = ("duplicate_of", "merged_into", "target")


def _case_ref(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _unseen(session: Session, who: Principal, refs: set[int]) -> set[int]:
    """The cases among ``refs`` that ``who`` may not open (another agency's, for a handler)."""
    if not who.scoped or not refs:
        return set()
    held = dict(session.execute(select(Case.id, Case.agency_code).where(Case.id.in_(refs))).tuples().all())
    return {ref for ref in refs if not who.sees(held.get(ref))}


def _hide_refs(value: Any, unseen: set[int]) -> Any:
    """``value`` (an audit payload) with references to unseen cases replaced by None."""
    if not unseen or not isinstance(value, dict):
        return value
    return {k: None if k in CASE_REF_KEYS and _case_ref(v) in unseen else v for k, v in value.items()}


def _suggestion(session: Session, suggestion: dict[str, Any] | None, who: Principal) -> dict[str, Any] | None:
    """The stored suggestion as this account may see it.

    A handler is shown every similar case (the match is useful), but one of another agency loses its
    ``case_id``: a number it could not open anyway, and that says which cases exist elsewhere. Roles
    that see masked text get the moderation screening (the clerk's note among it) masked too.
    """
    if not suggestion:
        return suggestion
    out = dict(suggestion)
    if who.masked and isinstance(out.get("moderation"), dict):
        out["moderation"] = _masked(out["moderation"])
    if who.scoped:
        lists = {key: out[key] for key in ("similar", "duplicates") if isinstance(out.get(key), list)}
        ids = {int(x["case_id"]) for items in lists.values() for x in items if isinstance(x, dict) and x.get("case_id")}
        held = dict(session.execute(select(Case.id, Case.agency_code).where(Case.id.in_(ids))).tuples().all())
        for key, items in lists.items():
            out[key] = [
                {**x, "case_id": None}
                if isinstance(x, dict) and x.get("case_id") and not who.sees(held.get(int(x["case_id"])))
                else x
                for x in items
            ]
    return out


def _summary_fields(
    case: Case, first: Submission | None, who: Principal, users: dict[int, User], svc: ServiceState
) -> dict[str, Any]:
    today = to_local_date(svc.now())
    running = case.state in OPEN_STATES and case.answer_due is not None
    status = deadline_status(case.answer_due, today, svc.calendar, svc.policy) if running and case.answer_due else None
    suggestion = case.suggestion or {}
    title = first.title if first is not None else ""
    assignee = users.get(case.assignee_id) if case.assignee_id else None
    return {
        "id": case.id,
        "state": case.state,
        "kind": case.kind,
        "agency_code": case.agency_code,
        "agency_name": _agency_name(case.agency_code),
        "suggested_agency": next((a.get("code") for a in suggestion.get("agencies", [])), None),
        "field": case.field,
        "title": mask_personal(title) if who.masked else title,
        "assignee": assignee.username if assignee else None,
        "received_at": case.received_at,
        "answer_due": case.answer_due,
        "deadline_status": status,
        "flagged": bool((suggestion.get("moderation") or {}).get("flagged")),
        "campaign_id": case.campaign_id,
        "programme_field": case.programme_field,
        "programme_field_name": svc.pipeline.programme_taxonomy.name_of(case.programme_field),
    }


def case_summaries(session: Session, cases: list[Case], who: Principal, svc: ServiceState) -> list[CaseSummary]:
    users = Users(session).by_ids([c.assignee_id for c in cases if c.assignee_id])
    first = Submissions(session).first_of_cases([c.id for c in cases])
    return [CaseSummary(**_summary_fields(case, first.get(case.id), who, users, svc)) for case in cases]


def _submission(sub: Submission, who: Principal) -> SubmissionOut:
    masked = who.masked
    contact = None
    if not masked and any((sub.contact_name, sub.contact_email, sub.contact_phone, sub.contact_address)):
        contact = ContactOut(
            name=sub.contact_name, email=sub.contact_email, phone=sub.contact_phone, address=sub.contact_address
        )
    return SubmissionOut(
        id=sub.id,
        tracking_code=None if masked else sub.tracking_code,
        kind=sub.kind,
        submitter_type=sub.submitter_type,
        title=mask_personal(sub.title) if masked else sub.title,
        content=mask_personal(sub.content) if masked else sub.content,
        title_raw=None if masked else sub.title_raw,
        content_raw=None if masked else sub.content_raw,
        province_code=sub.province_code,
        received_at=sub.created_at,
        contact=contact,
    )


def case_detail(session: Session, case: Case, who: Principal, svc: ServiceState) -> CaseDetail:
    timeline = Timeline(session)
    subs = Submissions(session).of_case(case.id)
    responses = timeline.responses(case.id)
    user_ids = [r.author_id for r in responses] + ([case.assignee_id] if case.assignee_id else [])
    users = Users(session).by_ids(user_ids)
    fields = _summary_fields(case, subs[0] if subs else None, who, users, svc)
    today = to_local_date(svc.now())
    running = case.state in OPEN_STATES and case.answer_due is not None
    rows = timeline.events(case.id)
    refs = {case.duplicate_of, case.merged_into} | {
        _case_ref(payload.get(k))
        for e in rows
        for payload in (e.before, e.after)
        if isinstance(payload, dict)
        for k in CASE_REF_KEYS
    }
    unseen = _unseen(session, who, {r for r in refs if r is not None})
    events = [
        EventOut(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            before=_masked(e.before) if who.masked else _hide_refs(e.before, unseen),
            after=_masked(e.after) if who.masked else _hide_refs(e.after, unseen),
            model_version=e.model_version,
        )
        for e in rows
    ]
    return CaseDetail(
        **fields,
        forward_due=case.forward_due,
        working_days_left=working_days_left(case.answer_due, today, svc.calendar)
        if running and case.answer_due
        else None,
        duplicate_of=None if case.duplicate_of in unseen else case.duplicate_of,
        merged_into=None if case.merged_into in unseen else case.merged_into,
        answered_at=case.answered_at,
        ended_at=case.ended_at,
        suggestion=_suggestion(session, case.suggestion, who),
        model_version=case.model_version,
        submissions=[_submission(s, who) for s in subs],
        responses=[
            ResponseOut(
                id=r.id,
                author=users[r.author_id].username if r.author_id in users else None,
                agency_code=r.agency_code,
                body=mask_personal(r.body) if who.masked else r.body,
                at=r.at,
            )
            for r in responses
        ],
        timeline=events,
        allowed_actions=[a.value for a in allowed_actions(case.state) if who.may(a.value)],
    )


EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def stats_view(
    who: Principal,
    svc: ServiceState,
    start: date | None,
    end: date | None,
    agency: str | None,
    programme_field: str | None,
) -> StatsOut:
    """GET /api/v1/stats: per agency and per programme field for a period (the page and the exports too)."""
    who.require("stats.read")
    today = to_local_date(svc.now())
    end = end or today
    start = start or end.replace(day=1)
    for day in (start, end):
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"dates must lie between {EARLIEST} and {LATEST}, got {day}")
    code = None
    if agency:
        from triage.nlp.agencies import default_registry

        code = default_registry().resolve(agency).code
    taxonomy = svc.pipeline.programme_taxonomy
    field = taxonomy.check(programme_field) if programme_field else None
    with svc.db.read() as s:
        rows = agency_stats(s, start, end, today=today, agency_code=code, programme_field=field)
        by_field = programme_field_stats(
            s, start, end, today=today, taxonomy=taxonomy, agency_code=code, programme_field=field
        )
    return StatsOut(
        start=start,
        end=end,
        as_of=min(end, today),
        programme_field=field,
        # The core's rows carry exactly the response's fields (on_time_pct is a property of both).
        programme_fields=[ProgrammeFieldStatsOut.model_validate(r, from_attributes=True) for r in by_field],
        agencies=[AgencyStatsOut.model_validate(r, from_attributes=True) for r in rows],
    )
