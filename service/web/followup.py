"""The submitter's follow-up pages (the secret link from the receipt): add information, withdraw, rate.

Plain forms, no JavaScript needed. Every post carries the CSRF token and the secret (hidden field ``k``);
an error shows the page again with the message and what the person typed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from service import followups
from service.deps import State
from service.limits import read_form, register_upload_route
from service.state import ServiceState, in_lane
from service.uploads import UploadForm, upload_policy
from service.web.render import error_page, render
from service.web.session import StaleForm, check_csrf, read_checked_upload
from triage.cases.followup import RATINGS
from triage.cases.followup_secret import FOLLOW_UP_PATH, follow_up_path
from triage.errors import Conflict, InvalidInput, InvalidTransition, NotFound, PermissionDenied
from triage.store.files import FileRefused, check_files

router = APIRouter(include_in_schema=False)
register_upload_route("POST", FOLLOW_UP_PATH + r"/[^/]{1,32}/bo-sung")
DONE = {
    "bo-sung": "Đã gửi thông tin bổ sung; hồ sơ được tiếp tục xử lý.",
    "rut": "Đã rút phản ánh; hồ sơ đã kết thúc.",
    "danh-gia": "Cảm ơn bạn đã đánh giá câu trả lời.",
}


def _page(
    request: Request,
    svc: ServiceState,
    code: str,
    token: str | None,
    *,
    done: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        view = followups.view(svc, code, token)
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    policy = upload_policy(svc.settings)
    page = render(
        request,
        "public/followup.html",
        {
            "v": view,
            "k": token,
            "done": DONE.get(done or ""),
            "error": error,
            "values": values or {},
            "ratings": RATINGS,
            "upload_rule": policy.describe() if policy.max_files else "",
        },
        status_code=status_code,
    )
    page.headers["Referrer-Policy"] = "no-referrer"
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get(FOLLOW_UP_PATH + "/{code}", response_class=HTMLResponse)
def follow_up_page(
    request: Request,
    code: str,
    svc: State,
    k: Annotated[str | None, Query(max_length=100)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    return _page(request, svc, code, k, done=done)


def _act(request: Request, svc: ServiceState, code: str, form: FormData, what: str, work: Any) -> Response:
    """Run ``work`` after the CSRF check; back to the page with a message either way."""
    token = str(form.get("k") or "")[:100]
    values = {key: str(form.get(key) or "") for key in ("text", "reason", "rating", "comment")}
    try:
        check_csrf(request, form, svc)
        work(token)
    except PermissionDenied as exc:
        return _page(request, svc, code, token, error=str(exc), values=values, status_code=403)
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except (InvalidTransition, Conflict) as exc:
        return _page(request, svc, code, token, error=str(exc), values=values, status_code=409)
    except InvalidInput as exc:
        return _page(request, svc, code, token, error=str(exc), values=values, status_code=422)
    return RedirectResponse(follow_up_path(code.strip().upper(), token) + f"&done={what}", status_code=303)


@router.post(FOLLOW_UP_PATH + "/{code}/bo-sung", response_class=HTMLResponse)
async def add_information(request: Request, code: str, svc: State) -> Response:
    try:
        upload = await read_checked_upload(request, svc)
    except StaleForm as exc:
        return _page(request, svc, code, str(exc.fields.get("k") or ""), error=str(exc), status_code=403)
    return await in_lane(svc.intake_lane, _add_information, request, code, upload, svc)


def _add_information(request: Request, code: str, upload: UploadForm, svc: ServiceState) -> Response:
    def work(token: str) -> None:
        taken, refused = check_files(upload.files_of("files"), upload_policy(svc.settings))
        refused = upload.refused + refused
        if refused:
            raise FileRefused(" ".join(refused) + " Vui lòng chọn lại tệp.")
        followups.add_information(svc, code, token, str(upload.form.get("text") or ""), taken)

    return _act(request, svc, code, upload.form, "bo-sung", work)


@router.post(FOLLOW_UP_PATH + "/{code}/rut", response_class=HTMLResponse)
async def withdraw(request: Request, code: str, svc: State) -> Response:
    form = await read_form(request)

    def work(token: str) -> None:
        if form.get("confirm") != "yes":
            raise InvalidInput("Vui lòng đánh dấu xác nhận rút phản ánh.")
        followups.withdraw(svc, code, token, str(form.get("reason") or ""))

    return await in_lane(None, _act, request, svc, code, form, "rut", work)


@router.post(FOLLOW_UP_PATH + "/{code}/danh-gia", response_class=HTMLResponse)
async def rate(request: Request, code: str, svc: State) -> Response:
    form = await read_form(request)

    def work(token: str) -> None:
        rating = str(form.get("rating") or "")
        if rating not in RATINGS:
            raise InvalidInput("Vui lòng chọn một mức đánh giá.")
        followups.rate(svc, code, token, rating, str(form.get("comment") or ""))

    return await in_lane(None, _act, request, svc, code, form, "danh-gia", work)
