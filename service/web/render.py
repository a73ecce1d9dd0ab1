"""Templates, Vietnamese formatting filters, and the one function that renders a page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.web import labels
from service.web.session import csrf_token, set_csrf_cookie
from triage.cases.calendar import local_tz

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
# Pages load only their own scripts, styles and images; nothing inline runs, no other site may frame them.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

templates = Jinja2Templates(directory=str(TEMPLATE_DIR))


def local_dt(value: datetime | None) -> datetime | None:
    """Stored times are UTC (naive on read): shown in Vietnam's time."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(local_tz())


def fmt_datetime(value: datetime | None) -> str:
    v = local_dt(value)
    return "" if v is None else v.strftime("%H:%M %d/%m/%Y")


def fmt_date(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = local_dt(value) or value
    return value.strftime("%d/%m/%Y")


def fmt_date_long(value: date | str | None) -> str:
    """'Thứ Hai, 16/03/2026': the weekday helps a citizen picture the deadline."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{labels.WEEKDAYS[value.weekday()]}, {value.strftime('%d/%m/%Y')}"


def fmt_pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%".replace(".", ",")


def fmt_num(value: float | int | None) -> str:
    """Vietnamese digit grouping: 20.000."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{int(value):,}".replace(",", ".")


templates.env.filters.update(datetime=fmt_datetime, date=fmt_date, date_long=fmt_date_long, pct=fmt_pct, num=fmt_num)
templates.env.globals.update(
    KIND_LABELS=labels.KIND_LABELS,
    SUBMITTER_LABELS=labels.SUBMITTER_LABELS,
    STATE_LABELS=labels.STATE_LABELS,
    ACTION_LABELS=labels.ACTION_LABELS,
    DEADLINE_LABELS=labels.DEADLINE_LABELS,
    ROLE_LABELS=labels.ROLE_LABELS,
)


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
