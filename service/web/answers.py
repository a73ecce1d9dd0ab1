"""/hoi-dap: published answers for everyone (search, pages), and the staff's publish / withdraw buttons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from service.deps import State
from service.limits import read_form
from service.schemas.cases import MAX_ID
from service.state import ServiceState
from service.web.render import error_page, render
from service.web.session import WebStaff, check_csrf
from triage.cases.accounts import Principal
from triage.cases.public_answers import get_public, publish, search, unpublish
from triage.errors import NotFound, TriageError
from triage.nlp.agencies import default_registry

router = APIRouter(include_in_schema=False)
PER_PAGE = 10


def _agency(code: str | None) -> str:
    if not code:
        return ""
    try:
        return default_registry().get(code).name
    except (NotFound, KeyError):
        return code


@router.get("/hoi-dap", response_class=HTMLResponse)
def answers_page(
    request: Request,
    svc: State,
    q: Annotated[str | None, Query(max_length=2000)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Published answers, searched on the server (works without JavaScript), 10 a page."""
    query = (q or "").replace("\x00", "").strip()
    with svc.db.read() as s:
        items, total = search(s, query, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    context = {"q": query, "items": items, "total": total, "page": page, "pages": pages, "agency": _agency}
    return render(request, "public/answers.html", context)


@router.get("/hoi-dap/{answer_id}", response_class=HTMLResponse)
def answer_page(request: Request, svc: State, answer_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    try:
        with svc.db.read() as s:
            item = get_public(s, answer_id)
    except NotFound:
        return error_page(request, 404, "Không tìm thấy câu hỏi này (có thể đã được gỡ khỏi trang Hỏi đáp).")
    return render(request, "public/answer.html", {"a": item, "agency": _agency})


@router.post("/staff/cases/{case_id}/publish", response_class=HTMLResponse)
async def publish_form(
    request: Request, case_id: Annotated[int, Path(ge=1, le=MAX_ID)], who: WebStaff, svc: State
) -> Response:
    return await run_in_threadpool(_publish, request, await read_form(request), case_id, who, svc, True)


@router.post("/staff/cases/{case_id}/unpublish", response_class=HTMLResponse)
async def unpublish_form(
    request: Request, case_id: Annotated[int, Path(ge=1, le=MAX_ID)], who: WebStaff, svc: State
) -> Response:
    return await run_in_threadpool(_publish, request, await read_form(request), case_id, who, svc, False)


def _publish(request: Request, form: FormData, case_id: int, who: Principal, svc: ServiceState, on: bool) -> Response:
    check_csrf(request, form, svc)
    try:
        if on:
            svc.db.transaction(lambda s: publish(s, who, case_id, now=svc.now()))
        else:
            svc.db.transaction(lambda s: unpublish(s, who, case_id, now=svc.now()))
    except NotFound:
        raise
    except TriageError as exc:
        from service.http_errors import status_of

        return error_page(request, status_of(exc), f"Không công khai được câu trả lời: {exc}")
    return RedirectResponse(f"/staff/cases/{case_id}#publication", status_code=303)
