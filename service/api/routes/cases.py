"""Staff work on cases: list, read, and one endpoint per workflow action.

Each action answers the case as it is afterwards (200), 409 when the workflow refuses it in the
case's state (the message lists what is allowed), 404 for a case this account cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from service.deps import Staff, State
from service.exports import case_table, download
from service.schemas.cases import (
    MAX_ID,
    AssignIn,
    CaseDetail,
    CaseList,
    ModerationIn,
    NoteIn,
    ReasonIn,
    RespondIn,
    RouteIn,
    TargetIn,
    TransferIn,
)
from service.schemas.models import UncertainCaseOut, UncertainOut
from service.schemas.submissions import Kind
from service.state import ServiceState
from service.views import case_detail, case_summaries
from triage.cases import audit
from triage.cases.accounts import Principal
from triage.cases.calendar import to_local_date
from triage.cases.casework import Casework
from triage.cases.exports import MEDIA_TYPES, check_format
from triage.cases.workflow import CaseState
from triage.errors import InvalidInput
from triage.store.repositories import CaseFilter
from triage.store.tables import Case

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's number.")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case for this account"},
    409: {"description": "Not allowed in this state"},
}


StateQuery = Annotated[list[CaseState] | None, Query(description="One or more states.")]
AgencyQuery = Annotated[str | None, Query(max_length=16, description="Responsible agency code.")]
OverdueQuery = Annotated[bool, Query(description="Only open cases past their answer deadline.")]
DueSoonQuery = Annotated[bool, Query(description="Only open cases within the 'due soon' working days.")]
TextQuery = Annotated[str | None, Query(max_length=200, description="Text search in titles and contents.")]
FlaggedQuery = Annotated[
    bool | None, Query(description="true: cases with a moderation flag (abuse / spam); false: without.")
]
ProgrammeFieldQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="Programme field code (Resolution-57 task group, e.g. 'digital_government', or 'other'); "
        "an unknown code is a 422 listing the known ones.",
    ),
]


def case_filter(
    svc: State,
    state: StateQuery = None,
    agency: AgencyQuery = None,
    kind: Kind | None = None,
    overdue: OverdueQuery = False,
    due_soon: DueSoonQuery = False,
    q: TextQuery = None,
    flagged: FlaggedQuery = None,
    programme_field: ProgrammeFieldQuery = None,
) -> CaseFilter:
    """The query parameters the case list and its export share, as one filter (a dependency of both)."""
    from triage.nlp.text import normalize

    today = to_local_date(svc.now())
    due_before = svc.calendar.add_working_days(today, svc.policy.due_soon_days + 1) if due_soon else None
    return CaseFilter(
        states=[st.value for st in state or []],
        agency_code=agency,
        kind=kind,
        overdue=overdue,
        due_before=due_before,
        text=normalize(q) if q else None,
        flagged=flagged,
        programme_field=svc.pipeline.programme_taxonomy.check(programme_field) if programme_field else None,
    )


Filter = Annotated[CaseFilter, Depends(case_filter)]


@router.get("", response_model=CaseList)
def list_cases(
    who: Staff,
    svc: State,
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> CaseList:
    """Cases this account may see, newest first (a handler sees its agency's only)."""
    with svc.db.read() as s:
        work = Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now())
        cases, total = work.find(f, limit=limit, offset=offset)
        return CaseList(total=total, items=case_summaries(s, cases, who, svc))


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {"description": "The file", "content": {m: {} for m in MEDIA_TYPES.values()}},
        422: {"description": "Unknown format, or more cases than TRIAGE_EXPORT_MAX_ROWS"},
    },
)
def export_cases(
    who: Staff,
    svc: State,
    f: Filter,
    format: Annotated[str, Query(max_length=10, description="csv (UTF-8 with BOM, for Excel) or xlsx.")] = "xlsx",
) -> Response:
    """The same cases as the list (same filters, same scoping and masking), newest first, as one file."""
    fmt = check_format(format)
    cap = svc.settings.export_max_rows
    with svc.db.read() as s:
        work = Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now())
        cases, total = work.find(f, limit=cap, offset=0)
        if total > cap:
            raise InvalidInput(f"{total} cases match, more than the export limit of {cap}: narrow the filters")
        table = case_table(case_summaries(s, cases, who, svc))
    return download([table], fmt, "ho-so", today=to_local_date(svc.now()))


@router.get("/uncertain", response_model=UncertainOut)
def uncertain(
    who: Staff,
    svc: State,
    by: Annotated[
        Literal["margin", "entropy"], Query(description="Smallest margin or highest entropy first.")
    ] = "margin",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> UncertainOut:
    """Cases waiting for a clerk whose routing is most uncertain: label these first (active learning)."""
    from triage.cases.active_learning import uncertain_cases

    who.require("triage")
    with svc.db.read() as s:
        items = uncertain_cases(s, by=by, limit=limit)
    return UncertainOut(by=by, items=[UncertainCaseOut(**asdict(u)) for u in items])


@router.get("/{case_id}", response_model=CaseDetail, responses=_ERRORS)
def get_case(case_id: CaseId, who: Staff, svc: State) -> CaseDetail:
    """The case with its suggestion (agency top-3, field, kind, similar cases), submissions and timeline."""
    with svc.db.read() as s:
        work = Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now())
        return case_detail(s, work.case(case_id), who, svc)


def _act(svc: ServiceState, who: Principal, do: Callable[[Casework], Case]) -> CaseDetail:
    """Run one action in a write transaction; the answer is built before, and sent after, the commit."""

    def run(s: Session) -> CaseDetail:
        work = Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now())
        case = do(work)
        audit.append_pending(s)  # the head last, after the action's case locks: the timeline shows the event
        return case_detail(s, case, who, svc)

    return svc.db.transaction(run)  # a lost race (deadlock, serialization failure) is run again


@router.post("/{case_id}/route", response_model=CaseDetail, responses=_ERRORS)
def route_case(case_id: CaseId, body: RouteIn, who: Staff, svc: State) -> CaseDetail:
    """Confirm or correct the route (TRIAGE); stored as a reviewed label either way."""
    programme = svc.pipeline.programme_taxonomy.check(body.programme_field) if body.programme_field else None
    return _act(
        svc,
        who,
        lambda w: w.route(
            case_id, agency=body.agency, field=body.field, kind=body.kind, note=body.note, programme_field=programme
        ),
    )


@router.post("/{case_id}/assign", response_model=CaseDetail, responses=_ERRORS)
def assign(case_id: CaseId, body: AssignIn, who: Staff, svc: State) -> CaseDetail:
    return _act(svc, who, lambda w: w.assign(case_id, assignee=body.assignee, note=body.note))


@router.post("/{case_id}/start", response_model=CaseDetail, responses=_ERRORS)
def start(case_id: CaseId, who: Staff, svc: State) -> CaseDetail:
    """The handler starts work on an assigned case."""
    return _act(svc, who, lambda w: w.start(case_id))


@router.post("/{case_id}/transfer", response_model=CaseDetail, responses=_ERRORS)
def transfer(case_id: CaseId, body: TransferIn, who: Staff, svc: State) -> CaseDetail:
    """Forward to the competent agency (within the forward deadline); it must accept the transfer."""
    return _act(svc, who, lambda w: w.transfer(case_id, agency=body.agency, reason=body.reason))


@router.post("/{case_id}/accept-transfer", response_model=CaseDetail, responses=_ERRORS)
def accept_transfer(case_id: CaseId, who: Staff, svc: State) -> CaseDetail:
    return _act(svc, who, lambda w: w.accept_transfer(case_id))


@router.post("/{case_id}/return", response_model=CaseDetail, responses=_ERRORS)
def return_for_info(case_id: CaseId, body: ReasonIn, who: Staff, svc: State) -> CaseDetail:
    """Ask the submitter for more information (reason required)."""
    return _act(svc, who, lambda w: w.return_for_info(case_id, reason=body.reason))


@router.post("/{case_id}/resubmit", response_model=CaseDetail, responses=_ERRORS)
def resubmit(case_id: CaseId, who: Staff, svc: State, body: NoteIn | None = None) -> CaseDetail:
    """The submitter sent the missing information: the case goes back to NEW."""
    return _act(svc, who, lambda w: w.resubmit(case_id, note=body.note if body else None))


@router.post("/{case_id}/respond", response_model=CaseDetail, responses=_ERRORS)
def respond(case_id: CaseId, body: RespondIn, who: Staff, svc: State) -> CaseDetail:
    return _act(svc, who, lambda w: w.respond(case_id, body=body.body))


@router.post("/{case_id}/close", response_model=CaseDetail, responses=_ERRORS)
def close(case_id: CaseId, who: Staff, svc: State, body: NoteIn | None = None) -> CaseDetail:
    return _act(svc, who, lambda w: w.close(case_id, note=body.note if body else None))


@router.post("/{case_id}/reopen", response_model=CaseDetail, responses=_ERRORS)
def reopen(case_id: CaseId, body: ReasonIn, who: Staff, svc: State) -> CaseDetail:
    return _act(svc, who, lambda w: w.reopen(case_id, reason=body.reason))


@router.post("/{case_id}/reject", response_model=CaseDetail, responses=_ERRORS)
def reject(case_id: CaseId, body: ReasonIn, who: Staff, svc: State) -> CaseDetail:
    """Refuse to handle the case (reason required; shown to no one outside the agency)."""
    return _act(svc, who, lambda w: w.reject(case_id, reason=body.reason))


@router.post("/{case_id}/duplicate", response_model=CaseDetail, responses=_ERRORS)
def mark_duplicate(case_id: CaseId, body: TargetIn, who: Staff, svc: State) -> CaseDetail:
    """This case repeats case ``target``."""
    return _act(svc, who, lambda w: w.mark_duplicate(case_id, target=body.target))


@router.post("/{case_id}/merge", response_model=CaseDetail, responses=_ERRORS)
def merge(case_id: CaseId, body: TargetIn, who: Staff, svc: State) -> CaseDetail:
    """Fold this case into open case ``target``: its submissions move there and this one ends as a duplicate."""
    return _act(svc, who, lambda w: w.merge(case_id, target=body.target))


@router.post("/{case_id}/moderation", response_model=CaseDetail, responses=_ERRORS)
def moderate(case_id: CaseId, body: ModerationIn, who: Staff, svc: State) -> CaseDetail:
    """Confirm or dismiss the abuse / spam flag (clerk, admin); audited, and nothing is deleted or hidden."""
    return _act(svc, who, lambda w: w.moderate(case_id, decision=body.decision, note=body.note))
