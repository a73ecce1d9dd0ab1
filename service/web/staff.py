"""Staff pages: sign in and out, the clerk's inbox, a handler's queue, the case page and its actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from service.deps import State, sign_in
from service.http_errors import status_of
from service.limits import read_form
from service.schemas.cases import MAX_ID
from service.state import ServiceState, in_lane
from service.views import case_detail, case_summaries
from service.web import casepage
from service.web.citizen_panel import citizen_context
from service.web.render import error_page, render
from service.web.session import (
    WebStaff,
    check_csrf,
    end_session,
    optional_principal,
    safe_next,
    start_session,
)
from triage.cases.accounts import Principal, Role, issue_token
from triage.cases.answer_drafts import draft_for_case
from triage.cases.calendar import to_local_date
from triage.cases.casework import Casework
from triage.cases.public_answers import ANSWERED, published_of
from triage.cases.workflow import CaseState
from triage.errors import (
    AuthenticationFailed,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RateLimited,
    TriageError,
)
from triage.nlp.text import mask_personal
from triage.store.repositories import OPEN_STATES, CaseFilter, Cases, Submissions, Users

router = APIRouter(include_in_schema=False)
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
HOME = {Role.CLERK: "/staff/inbox", Role.HANDLER: "/staff/queue", Role.ANALYST: "/staff/reports",
        Role.REPORTER: "/staff/kpi/reports", Role.COORDINATOR: "/staff/kpi/reports",
        Role.LEADER: "/staff/kpi"}  # fmt: skip
EXCERPT = 280


def _work(s: Any, who: Principal, svc: ServiceState) -> Casework:
    return Casework(s, who, policy=svc.policy, calendar=svc.calendar, now=svc.now())


# ---- sign in / out ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, svc: State, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    who = optional_principal(request, svc)
    if who is not None:
        return RedirectResponse(safe_next(next, HOME.get(who.role, "/staff/inbox")), status_code=303)
    return render(request, "staff/login.html", {"next": safe_next(next, ""), "error": None, "username": ""})


# The posting handlers below are async only to await the form; the work after it (argon2, the
# database, the models) runs in the request thread pool, never on the event loop that every other
# request, /health included, is waiting on.


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, svc: State) -> Response:
    return await in_lane(svc.password_lane, _login, request, await read_form(request), svc)


def _login(request: Request, form: FormData, svc: ServiceState) -> Response:
    check_csrf(request, form, svc)
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    target = str(form.get("next") or "")
    context = {"next": safe_next(target, ""), "error": "Sai tên đăng nhập hoặc mật khẩu.", "username": username}
    try:
        who = sign_in(svc, request, username, password)
    except AuthenticationFailed:
        return render(request, "staff/login.html", context, status_code=401)
    except RateLimited as exc:
        wait = exc.retry_after
        context["error"] = f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {wait} giây."
        page = render(request, "staff/login.html", context, status_code=429)
        page.headers["Retry-After"] = str(wait)
        return page
    minutes = svc.settings.token_minutes
    response = RedirectResponse(safe_next(target, HOME.get(who.role, "/staff/inbox")), status_code=303)
    start_session(request, response, issue_token(who, svc.token_secret, minutes), minutes)
    return response


@router.post("/logout")
async def logout(request: Request, svc: State) -> Response:
    form = await read_form(request)
    await run_in_threadpool(check_csrf, request, form, svc)
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response


@router.get("/staff")
def staff_home(who: WebStaff) -> Response:
    return RedirectResponse(HOME.get(who.role, "/staff/inbox"), status_code=303)


# ---- clerk inbox -----------------------------------------------------------------------------------


@router.get("/staff/inbox", response_class=HTMLResponse)
def inbox(
    request: Request,
    who: WebStaff,
    svc: State,
    programme_field: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """NEW and TRIAGED cases with the suggested route: confirm or correct each with one action.

    ``programme_field`` keeps one programme field's cases (an unknown code is a 422 page naming the known ones).
    """
    who.require("triage")
    taxonomy = svc.pipeline.programme_taxonomy
    chosen = None
    if programme_field:
        try:
            chosen = taxonomy.check(programme_field)
        except InvalidInput:  # the same 422 as the API, in the pages' language
            shown, known = programme_field[:40], ", ".join(taxonomy.codes)
            raise InvalidInput(f"Nhóm nhiệm vụ không có trong danh mục: {shown!r} (các mã: {known}).") from None
    f = CaseFilter(states=[CaseState.NEW, CaseState.TRIAGED], programme_field=chosen)
    with svc.db.read() as s:
        cases, total = _work(s, who, svc).find(f, limit=100)
        summaries = case_summaries(s, cases, who, svc)
        first = Submissions(s).first_of_cases([c.id for c in cases])
        items: list[dict[str, Any]] = []
        for case, summary in zip(cases, summaries, strict=True):
            sub = first.get(case.id)
            content = sub.content if sub is not None else ""
            content = mask_personal(content) if who.masked else content
            items.append(
                {
                    "case": summary,
                    "excerpt": content[:EXCERPT] + ("…" if len(content) > EXCERPT else ""),
                    "suggestion": casepage.suggestion_view(case.suggestion),
                }
            )
    items.sort(key=lambda it: bool(it["case"].state != CaseState.NEW))  # waiting for a route first, newest first
    context = {
        "items": items,
        "total": total,
        "agency_groups": casepage.agency_choices(),
        "programme_fields": taxonomy.fields,
        "programme_field": chosen or "",
        "programme": taxonomy.programme,
    }
    return render(request, "staff/inbox.html", context)


# ---- handler queue ---------------------------------------------------------------------------------

_URGENCY = {"overdue": 0, "due_soon": 1, "on_track": 2, None: 3}


@router.get("/staff/queue", response_class=HTMLResponse)
def queue(
    request: Request,
    who: WebStaff,
    svc: State,
    view: Annotated[str, Query(pattern="^(all|due_soon|overdue)$")] = "all",
    agency: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Open cases (a handler: its agency's only), the most urgent first; due soon and overdue highlighted."""
    today = to_local_date(svc.now())
    f = CaseFilter(
        states=[*list(OPEN_STATES), CaseState.RETURNED, CaseState.RESPONDED],
        agency_code=agency or None,
        overdue=view == "overdue",
        due_before=svc.calendar.add_working_days(today, svc.policy.due_soon_days + 1) if view == "due_soon" else None,
    )
    with svc.db.read() as s:
        cases, total = _work(s, who, svc).find(f, limit=200)
        items = case_summaries(s, cases, who, svc)
    items.sort(key=lambda c: (_URGENCY.get(c.deadline_status, 3), c.answer_due or today, c.id))
    counts = {k: sum(1 for c in items if c.deadline_status == k) for k in ("overdue", "due_soon")}
    context = {
        "items": items,
        "total": total,
        "view": view,
        "agency": agency or "",
        "counts": counts,
        "agency_groups": casepage.agency_choices(),
        "scoped_agency": casepage.agency_name(who.agency_code) if who.scoped else None,
    }
    return render(request, "staff/queue.html", context)


# ---- the case page ---------------------------------------------------------------------------------


def _case_page(
    request: Request,
    who: Principal,
    svc: ServiceState,
    case_id: int,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    failed: str | None = None,
    status_code: int = 200,
    use_draft: bool = False,
) -> HTMLResponse:
    draft = None
    with svc.db.read() as s:
        work = _work(s, who, svc)
        case = work.case(case_id)
        detail = case_detail(s, case, who, svc)
        handlers = [u.username for u in Users(s).handlers_of(case.agency_code)] if case.agency_code else []
        sug = casepage.suggestion_view(detail.suggestion)
        citizen = citizen_context(s, who, case_id)
        # Titles of similar cases this account may see; the others are named by number only.
        titles: dict[int, str] = {}
        for cid, sub in Submissions(s).first_of_cases([x["case_id"] for x in sug.similar if x["case_id"]]).items():
            other = Cases(s).get(cid)
            if other is not None and who.sees(other.agency_code):
                titles[cid] = mask_personal(sub.title) if who.masked else sub.title
        actions = casepage.offered_actions(detail, who)
        publication = None
        if who.may("publish") and case.answered_at is not None:
            subs = Submissions(s).of_case(case_id)
            publication = {
                "consent": bool(subs and subs[0].publish_consent),
                "published": published_of(s, case_id),
                "answered": case.state in ANSWERED,
            }
        if any(a.action == "respond" for a in actions):  # a handler about to answer sees a draft (never sent as is)
            draft = draft_for_case(s, who, case_id)
    if use_draft and draft is not None and draft.body and not failed:
        values, failed = {"body": draft.body}, "respond"  # "Dùng bản nháp": pre-fill the answer form, to edit
    context = {
        "c": detail,
        "sug": sug,
        "similar_titles": titles,
        "actions": actions,
        "draft": draft,
        "publication": publication,
        "programme_fields": svc.pipeline.programme_taxonomy.fields,
        "moderation_actions": casepage.moderation_actions(detail, who),
        "handlers": handlers,
        "agency_groups": casepage.agency_choices(),
        "agency_name": casepage.agency_name,
        "countdown": casepage.countdown(detail.working_days_left, detail.deadline_status),
        "event_lines": casepage.event_lines,
        "error": error,
        "values": values or {},
        "failed": failed,
        "citizen": citizen,
    }
    return render(request, "staff/case.html", context, status_code=status_code)


@router.get("/staff/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, case_id: CaseId, who: WebStaff, svc: State, draft: Annotated[int, Query(ge=0, le=1)] = 0
) -> HTMLResponse:
    """The case; ``?draft=1`` ("Dùng bản nháp") pre-fills the answer form with the draft for the handler to edit."""
    return _case_page(request, who, svc, case_id, use_draft=bool(draft))


def _message(exc: TriageError) -> str:
    if isinstance(exc, InvalidTransition):
        return f"Thao tác không được phép ở trạng thái hiện tại của hồ sơ. ({exc})"
    if isinstance(exc, PermissionDenied):
        return f"Vai trò của bạn không được thực hiện thao tác này. ({exc})"
    if isinstance(exc, InvalidInput):
        return f"Dữ liệu chưa hợp lệ: {exc}"
    return str(exc)


def _do(work: Casework, who: Principal, case_id: int, action: str, v: dict[str, Any]) -> None:
    """One action through ``Casework`` (the same calls as the API's endpoints)."""
    match action:
        case "triage":
            work.route(case_id, agency=v["agency"], field=v.get("field") or None, kind=v.get("kind") or None,
                       note=v.get("note") or None, programme_field=v.get("programme_field") or None)  # fmt: skip
        case "take":  # a handler takes the case: assign it to itself and start, in one transaction
            case = work.case(case_id, for_update=True)
            if case.state == CaseState.TRIAGED or case.assignee_id != who.user_id:
                work.assign(case_id, assignee=who.username)
            work.start(case_id)
        case "assign":
            work.assign(case_id, assignee=v["assignee"], note=v.get("note") or None)
        case "start":
            work.start(case_id)
        case "transfer":
            work.transfer(case_id, agency=v["agency"], reason=v.get("reason") or None)
        case "accept_transfer":
            work.accept_transfer(case_id)
        case "return_for_info":
            work.return_for_info(case_id, reason=v["reason"])
        case "resubmit":
            work.resubmit(case_id, note=v.get("note") or None)
        case "respond":
            work.respond(case_id, body=v["body"])
        case "close":
            work.close(case_id, note=v.get("note") or None)
        case "reopen":
            work.reopen(case_id, reason=v["reason"])
        case "reject":
            work.reject(case_id, reason=v["reason"])
        case "mark_duplicate":
            work.mark_duplicate(case_id, target=v["target"])
        case "merge":
            work.merge(case_id, target=v["target"])
        case "moderate_confirm":
            work.moderate(case_id, decision="confirm", note=v.get("note") or None)
        case "moderate_dismiss":
            work.moderate(case_id, decision="dismiss", note=v.get("note") or None)
        case _:
            raise NotFound(f"unknown action {action!r}")


@router.post("/staff/cases/{case_id}/act/{action}", response_class=HTMLResponse)
async def act(request: Request, case_id: CaseId, action: str, who: WebStaff, svc: State) -> Response:
    """Run one workflow action from a form; on a refusal show the case again with the reason."""
    return await run_in_threadpool(_act, request, await read_form(request), case_id, action, who, svc)


def _act(request: Request, form: FormData, case_id: int, action: str, who: Principal, svc: ServiceState) -> Response:
    check_csrf(request, form, svc)
    spec = casepage.ACTIONS.get(action)
    if spec is None:
        return error_page(request, 404, "")
    values = {f.name: str(form.get(f.name) or "").strip() for f in spec.fields}
    checked, problems = casepage.check_form(spec, values)
    if problems:
        # The page shows the input again: never echo a NUL back into the HTML.
        shown = {k: v.replace("\x00", "") for k, v in values.items()}
        return _case_page(
            request, who, svc, case_id, error=" ".join(problems), values=shown, failed=action, status_code=422
        )
    try:
        if checked.get("programme_field"):  # checked against the taxonomy in use, as the API does
            checked["programme_field"] = svc.pipeline.programme_taxonomy.check(checked["programme_field"])
        svc.db.transaction(lambda s: _do(_work(s, who, svc), who, case_id, action, checked))
    except NotFound:
        raise
    except TriageError as exc:
        return _case_page(
            request, who, svc, case_id, error=_message(exc), values=values, failed=action, status_code=status_of(exc)
        )
    target = safe_next(str(form.get("next") or ""), f"/staff/cases/{case_id}")
    return RedirectResponse(target, status_code=303)
