"""Public pages: send a submission (with files), its receipt, and tracking by code (no account needed)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from service.deps import State, client_key
from service.intake import file_submission
from service.limits import register_upload_route
from service.state import ServiceState, in_lane, service_state
from service.uploads import UploadForm, upload_policy
from service.web.forms import SubmissionForm
from service.web.labels import PUBLIC_STATUS_LABELS
from service.web.render import error_page, render
from service.web.session import StaleForm, check_csrf, read_checked_upload
from triage.cases.followup_secret import follow_up_path, holder
from triage.cases.public_answers import PublicAnswer, similar_answered
from triage.errors import InvalidInput, NotFound, PermissionDenied
from triage.nlp.agencies import default_registry
from triage.store.citizen_tables import Attachment
from triage.store.files import FILE_TYPES, check_files
from triage.store.repositories import Submissions, Timeline

router = APIRouter(include_in_schema=False)
register_upload_route("POST", r"/")
MAX_CODE = 32
REFILES = " Vui lòng chọn lại các tệp muốn gửi (trình duyệt không giữ tệp đã chọn khi trang hiển thị lại)."


def _form_page(
    request: Request,
    form: SubmissionForm,
    status_code: int = 200,
    *,
    similar: list[PublicAnswer] | None = None,
    form_id: str | None = None,
) -> HTMLResponse:
    provinces = sorted(default_registry().provinces(), key=lambda a: a.name)
    policy = upload_policy(service_state(request).settings)
    accept = ",".join(f".{FILE_TYPES[t][1]},{FILE_TYPES[t][0]}" for t in policy.types)
    context = {
        "form": form,
        "provinces": provinces,
        "form_id": form_id or secrets.token_urlsafe(16),
        "upload_rule": policy.describe() if policy.max_files else "",
        "upload_accept": accept,
        "similar_answered": similar or [],
        "checked": similar is not None,
    }
    return render(request, "public/submit.html", context, status_code=status_code)


def _check_step(request: Request, form_data: FormData, form: SubmissionForm, svc: ServiceState) -> HTMLResponse:
    """The no-JavaScript "Kiểm tra trước khi gửi": the form again, every value kept, with similar answered questions."""
    limiter = svc.text_limiter
    wait = limiter.retry_after(client_key(request, svc)) if limiter is not None else 0
    if wait:
        page = error_page(request, 429, f"Bạn đã kiểm tra nhiều lần liên tiếp; vui lòng thử lại sau {wait} giây.")
        page.headers["Retry-After"] = str(wait)
        return page
    text = f"{form.values['title']} {form.values['content']}".replace("\x00", "").strip()
    found: list[PublicAnswer] = []
    if text:
        with svc.db.read() as s:
            found = similar_answered(s, text)
    form_id = str(form_data.get("form_id") or "")[:64]
    return _form_page(request, form, similar=found, form_id=form_id if form_id.isprintable() else None)


@router.get("/", response_class=HTMLResponse)
def submit_page(request: Request) -> HTMLResponse:
    return _form_page(request, SubmissionForm.empty())


@router.post("/", response_class=HTMLResponse)
async def submit(request: Request, svc: State) -> Response:
    """Check the form; on errors show it again with the messages and the person's input kept.

    Only reading the form awaits (its CSRF token is checked before the first file part is stored);
    checking the files (image re-encoding) and intake (encoding, similar-case search, the database
    write) run in the request thread pool, so one citizen's submission never stalls the event loop.
    """
    try:
        upload = await read_checked_upload(request, svc)
    except StaleForm as exc:  # a forged or stale form: no file byte was stored; the text before it is kept
        form = SubmissionForm.from_form(exc.fields)
        form.errors["form"] = str(exc)
        return _form_page(request, form, status_code=403)
    return await in_lane(svc.intake_lane, _submit, request, upload, svc)


def _submit(request: Request, upload: UploadForm, svc: ServiceState) -> Response:
    form_data = upload.form
    form = SubmissionForm.from_form(form_data)
    try:
        check_csrf(request, form_data, svc)
    except PermissionDenied as exc:  # e.g. the browser dropped its cookie: nothing stored, the text is kept
        form.errors["form"] = str(exc)
        return _form_page(request, form, status_code=403)
    if str(form_data.get("step") or "") == "check":
        return _check_step(request, form_data, form, svc)
    valid = form.validate()
    taken, refused = check_files(upload.files_of("files"), upload_policy(svc.settings))
    refused = upload.refused + refused
    if refused:
        form.errors["files"] = " ".join(refused) + REFILES
    elif taken and not valid:
        form.errors["files"] = REFILES.strip()
    if form.errors:
        return _form_page(request, form, status_code=422)
    wait = svc.limiter.retry_after(client_key(request, svc))
    if wait:
        page = error_page(request, 429, f"Bạn đã gửi nhiều lần liên tiếp; vui lòng thử lại sau {wait} giây.")
        page.headers["Retry-After"] = str(wait)
        return page
    # The form's one-time id makes a double click or a resent post return the same receipt.
    form_id = str(form_data.get("form_id") or "")[:64]
    key = f"web-{form_id}" if form_id.isprintable() and len(form_id) >= 16 else None
    try:
        receipt = file_submission(svc, form.to_submission(), idempotency_key=key, files=taken)
    except InvalidInput as exc:
        form.errors["form"] = f"Không gửi được: {exc}"
        if taken:
            form.errors["files"] = REFILES.strip()
        return _form_page(request, form, status_code=422)
    # The secret goes to the receipt page once; it is the follow-up link's key (only its hash is stored).
    where = f"/receipt/{receipt.tracking_code}"
    if receipt.followup_token:
        where += f"?k={receipt.followup_token}"
    return RedirectResponse(where, status_code=303)


def _by_code(svc: State, code: str):  # type: ignore[no-untyped-def]
    clean = code.strip().upper()
    if not clean or len(clean) > MAX_CODE:
        return None
    with svc.db.read() as s:
        sub = Submissions(s).by_tracking_code(clean)
        if sub is None:
            return None
        case = sub.case
        responses = Timeline(s).responses(case.id)
        return {
            "code": sub.tracking_code,
            "kind": sub.kind,
            "received_at": sub.created_at,
            "forward_due": sub.forward_due,
            "answer_due": case.answer_due or sub.answer_due,
            "state": case.state,
            "status_label": PUBLIC_STATUS_LABELS.get(case.state, case.state),
            "answered_at": case.answered_at,
            "closed_at": case.ended_at,
            "last_update": case.updated_at,
            # The agency's answer is written to the submitter, who holds the (unguessable) code.
            "responses": [{"body": r.body, "at": r.at} for r in responses],
        }


@router.get("/receipt/{code}", response_class=HTMLResponse)
def receipt_page(
    request: Request, code: str, svc: State, k: Annotated[str | None, Query(max_length=100)] = None
) -> HTMLResponse:
    found = _by_code(svc, code)
    if found is None:
        return error_page(request, 404, "")
    follow_url = None
    with svc.db.read() as s:
        if k:
            try:
                sub = holder(s, found["code"], k)
                follow_url = follow_up_path(sub.tracking_code, k)
                stmt = select(func.count()).where(Attachment.owner == "submission", Attachment.owner_id == sub.id)
                found["attachments"] = int(s.scalar(stmt) or 0)
            except NotFound:
                follow_url = None
    page = render(request, "public/receipt.html", {"sub": found, "follow_url": follow_url})
    page.headers["Referrer-Policy"] = "no-referrer"  # the secret link must not leak to another site
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/track", response_class=HTMLResponse)
def track_page(request: Request, svc: State, code: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    if not code:
        return render(request, "public/track.html", {"code": "", "sub": None, "error": None})
    found = _by_code(svc, code)
    if found is None:
        error = "Không tìm thấy phản ánh với mã này. Vui lòng kiểm tra lại mã theo dõi (dạng PAKN-XXXX-XXXX-XXXX)."
        return render(request, "public/track.html", {"code": code, "sub": None, "error": error}, status_code=404)
    return render(request, "public/track.html", {"code": found["code"], "sub": found, "error": None})
