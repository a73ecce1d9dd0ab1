"""Browser sessions and CSRF protection.

The session cookie carries the same signed, expiring JWT as the API's bearer token (``issue_token``),
HttpOnly (no script can read it) and SameSite=Lax (not sent on cross-site form posts). Every form
post also carries a CSRF token: an HMAC, under the service's token key, of a random per-browser
value kept in its own HttpOnly cookie (signed double submit). A page of another site can neither read
that cookie nor compute the HMAC, so it cannot forge a post, even a login or a public submission.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from service.observability import note_user
from service.state import ServiceState, service_state
from service.uploads import UploadForm, read_upload_form, upload_policy
from triage.cases.accounts import Principal, principal_from_token
from triage.errors import AuthenticationFailed, PermissionDenied
from triage.store.files import UploadPolicy

SESSION_COOKIE = "pakn_session"
CSRF_COOKIE = "pakn_csrf"
CSRF_FIELD = "csrf_token"


class LoginRequired(AuthenticationFailed):
    """No valid session on a staff page: the browser is sent to the login page (not a 401 body)."""


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def csrf_token(request: Request, svc: ServiceState) -> str:
    """The token for this browser's forms; creates the per-browser seed on its first page."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_seed", None)
    if not seed:
        seed = secrets.token_urlsafe(24)
        request.state.csrf_seed = seed
    return hmac.new(svc.token_secret.encode(), f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the seed cookie when this request created it."""
    seed = getattr(request.state, "csrf_seed", None)
    if seed and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(CSRF_COOKIE, seed, httponly=True, samesite="lax", secure=_secure(request), path="/")


def check_csrf(request: Request, form: Any, svc: ServiceState) -> None:
    """Refuse a form post whose token does not match this browser's seed, or that comes from another origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise PermissionDenied("Yêu cầu gửi từ trang web khác bị từ chối (CSRF).")
    seed = request.cookies.get(CSRF_COOKIE)
    sent = str(form.get(CSRF_FIELD) or "")
    if not seed or not sent or not hmac.compare_digest(sent.encode(), csrf_token(request, svc).encode()):
        raise PermissionDenied(
            "Phiên làm việc của biểu mẫu không hợp lệ hoặc đã hết hạn (CSRF). Vui lòng tải lại trang và gửi lại."
        )


class StaleForm(PermissionDenied):
    """A web form refused by ``check_csrf`` before any of its files was stored; ``fields`` were read before it."""

    def __init__(self, message: str, fields: FormData) -> None:
        super().__init__(message)
        self.fields = fields


async def read_checked_upload(request: Request, svc: ServiceState, *, policy: UploadPolicy | None = None) -> UploadForm:
    """A posted web form with its files, its CSRF token checked before the first file byte is stored.

    ``policy``: the files allowed (default: the citizen upload policy). Raises ``StaleForm`` (with the
    text fields read so far, for the page to keep them) on a forged or stale form.
    """
    seen: dict[str, FormData] = {}

    def guard(fields: FormData) -> None:
        seen["fields"] = fields
        check_csrf(request, fields, svc)

    try:
        return await read_upload_form(request, policy or upload_policy(svc.settings), before_files=guard)
    except PermissionDenied as exc:
        raise StaleForm(str(exc), seen.get("fields") or FormData()) from exc


def start_session(request: Request, response: Response, token: str, minutes: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=minutes * 60,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def optional_principal(request: Request, svc: ServiceState) -> Principal | None:
    """The signed-in account, or None (no cookie, expired or invalid token, disabled account)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        with svc.db.read() as s:
            who = principal_from_token(s, token, svc.token_secret)
    except AuthenticationFailed:
        return None
    note_user(who.user_id)
    return who


def web_principal(request: Request, svc: Annotated[ServiceState, Depends(service_state)]) -> Principal:
    """The signed-in staff account; otherwise the app sends the browser to /login."""
    who = optional_principal(request, svc)
    if who is None:
        raise LoginRequired("Vui lòng đăng nhập.")
    request.state.principal = who
    return who


WebStaff = Annotated[Principal, Depends(web_principal)]


def safe_next(target: str | None, default: str = "/staff") -> str:
    """Only same-site paths after login (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
