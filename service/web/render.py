"""The one function that renders a page (over ``service.web.templating``'s environment), and error pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.web.session import csrf_token, set_csrf_cookie
from service.web.templating import ENV

# Pages load only their own scripts, styles and images; nothing inline runs, no other site may frame them.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

templates = Jinja2Templates(env=ENV)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Render ``name`` with the CSRF token, the signed-in account (if any) and the page's security headers."""
    svc = request.app.state.svc
    ctx = {"csrf_token": csrf_token(request, svc), "who": getattr(request.state, "principal", None), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Referrer-Policy"] = "same-origin"
    if ctx["who"] is not None:
        response.headers["Cache-Control"] = "no-store"  # staff pages hold personal data
    set_csrf_cookie(request, response)
    return response


ERROR_TITLES: dict[int, str] = {
    400: "Yêu cầu không hợp lệ",
    403: "Không có quyền thực hiện",
    404: "Không tìm thấy",
    409: "Không thực hiện được ở trạng thái hiện tại",
    413: "Dữ liệu gửi lên quá lớn",
    422: "Dữ liệu không hợp lệ",
    429: "Gửi quá nhiều lần",
    503: "Dịch vụ tạm thời chưa sẵn sàng",
}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """An error as a page (the web counterpart of the API's JSON errors; same status codes)."""
    if status == 404:
        # Never say whether the thing exists for someone else (another agency's case is 404 too).
        detail = "Trang hoặc hồ sơ bạn tìm không tồn tại, hoặc tài khoản của bạn không được xem."
    title = ERROR_TITLES.get(status, "Có lỗi xảy ra")
    return render(request, "error.html", {"title": title, "status": status, "detail": detail}, status_code=status)
