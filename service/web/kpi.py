"""Resolution-57 monitoring pages: the leaders' dashboard, agencies' report lists, the report page.

Server-rendered over the same calls as the API (``service.kpi``). The report page takes the figure
with its evidence (a file through the shared upload form reader, a link) and difficulties; the
coordinating office verifies, returns or locks on the same page. A reporter sees its agency's
reports only (another's is a 404 page, as for cases).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from service import kpi as monitoring
from service.deps import State
from service.exports import download
from service.limits import read_form, register_upload_route
from service.state import ServiceState, in_lane
from service.uploads import UploadForm
from service.web import charts
from service.web.render import render
from service.web.session import WebStaff, check_csrf, read_checked_upload
from triage.cases.accounts import Principal
from triage.cases.exports import check_format
from triage.errors import InvalidInput, InvalidTransition, PermissionDenied
from triage.kpi.export import all_tables
from triage.kpi.forecast import STATUS_LABELS
from triage.kpi.reports import EvidenceIn, ReportFilter
from triage.kpi.workflow import LABELS

router = APIRouter(include_in_schema=False)
REPORT_PATH = "/staff/kpi/reports"
register_upload_route("POST", REPORT_PATH + r"/[0-9]{1,10}/values")
MAX_DIFFICULTIES = 3


def _short_period(period: str) -> str:
    """'2025-Q3' -> 'Q3/25', '2025-M07' -> 'T7/25': axis labels that fit under a phone-sized chart."""
    year, _, part = period.partition("-")
    if not part:
        return year
    return f"{'Q' + part[1:] if part[0] == 'Q' else 'T' + str(int(part[1:]))}/{year[2:]}"


@router.get("/staff/kpi", response_class=HTMLResponse)
def dashboard(request: Request, who: WebStaff, svc: State) -> HTMLResponse:
    """Per task group and strategic indicator: latest vs target, trajectory, traffic light, early warning,
    bottlenecks; reporting rates per agency. Printable; exports as XLSX / CSV."""
    monitoring.ensure_due(svc)
    data = monitoring.dashboard_data(svc, who)
    reg = monitoring.registry(svc)
    groups: list[dict[str, Any]] = []
    for g in reg.groups:
        items = [i for i in data["indicators"] if i["group"] == g.code]
        for i in items:
            f = i["forecast"]
            labels = [_short_period(p) for p, _ in i["series"]]
            fc = None if f["predicted"] is None else (f"{i['deadline']:%Y}", f["predicted"], f["low"], f["high"])
            i["chart"] = charts.trajectory_chart(
                f"chart-{i['code']}",
                f"Diễn biến {i['name']}",
                labels,
                [v for _, v in i["series"]],
                target=i["target"],
                target_label=f"Mục tiêu {i['target']:g} ({i['deadline']:%Y})",
                forecast=fc,
            )
        if items:
            groups.append({"code": g.code, "name": g.name, "indicators": items})
    warnings = [i for i in data["indicators"] if i["forecast"]["status"] in ("off_track", "at_risk")]
    lights: dict[str, int] = {}
    for i in data["indicators"]:
        lights[i["forecast"]["light"]] = lights.get(i["forecast"]["light"], 0) + 1
    return render(
        request,
        "kpi/dashboard.html",
        {
            "groups": groups,
            "warnings": warnings,
            "rates": data["rates"],
            "today": data["today"],
            "lights": lights,
            "programme": reg.programme,
            "STATUS_LABELS": STATUS_LABELS,
        },
    )


@router.get("/staff/kpi/export")
def export(
    who: WebStaff,
    svc: State,
    format: Annotated[str, Query(max_length=10)] = "xlsx",
    table: Annotated[str, Query(max_length=20)] = "indicators",
) -> Response:
    who.require("kpi.dashboard")
    fmt = check_format(format)
    reg, day = monitoring.registry(svc), monitoring.today(svc)
    with svc.db.read() as s:
        tables = all_tables(s, reg, day)
    if fmt == "csv":
        tables = [tables[{"indicators": 0, "rates": 1, "reports": 2}.get(table, 0)]]
    return download(tables, fmt, "chi-so-nq57", today=day)


@router.get(REPORT_PATH, response_class=HTMLResponse)
def report_list(
    request: Request,
    who: WebStaff,
    svc: State,
    state: Annotated[str | None, Query(max_length=16)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """A reporter's agency reports (due first), or every agency's for the coordinating office."""
    who.require("kpi.read")
    where = ReportFilter(state=state if state in LABELS else None, period=period or None)
    _, rows = monitoring.report_list(svc, who, where, limit=300)
    return render(request, "kpi/reports.html", {"rows": rows, "state": state, "period": period, "LABELS": LABELS})


def _page(
    request: Request,
    svc: ServiceState,
    who: Principal,
    report_id: int,
    *,
    errors: list[str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    d = monitoring.detail(svc, who, report_id)
    return render(
        request,
        "kpi/report.html",
        {
            "r": d,
            "errors": errors or [],
            "notice": notice,
            "values": values or {},
            "MAX_DIFFICULTIES": MAX_DIFFICULTIES,
        },
        status_code=status_code,
    )


@router.get(REPORT_PATH + "/{report_id}", response_class=HTMLResponse)
def report_page(request: Request, report_id: int, who: WebStaff, svc: State) -> HTMLResponse:
    return _page(request, svc, who, report_id)


@router.post(REPORT_PATH + "/{report_id}/values", response_class=HTMLResponse)
async def submit_values(request: Request, report_id: int, who: WebStaff, svc: State) -> Response:
    """The figure with its evidence: the account is known (above) before the form is read, and the CSRF token
    is checked before the first file byte is stored."""
    upload = await read_checked_upload(request, svc, policy=monitoring.evidence_store(svc).policy)
    return await in_lane(svc.intake_lane, _submit, request, report_id, who, svc, upload)


def _submit(request: Request, report_id: int, who: Principal, svc: ServiceState, upload: UploadForm) -> Response:
    form = upload.form
    check_csrf(request, form, svc)
    values = {k: str(form.get(k) or "") for k in ("value", "note", "reason", "link", "link_name")}
    difficulties = [str(form.get(f"difficulty_{i}") or "") for i in range(MAX_DIFFICULTIES)]
    errors = list(upload.refused)
    try:
        value = float(values["value"].replace(" ", "").replace(",", "."))
    except ValueError:
        errors.append("Vui lòng nhập giá trị là một số (dùng dấu phẩy hoặc dấu chấm cho phần thập phân).")
        value = 0.0
    evidence = [EvidenceIn(name=name or "tệp", data=data) for name, data in upload.files_of("file")]
    if values["link"].strip():
        evidence.append(EvidenceIn(name=values["link_name"].strip() or values["link"].strip(), url=values["link"]))
    if not errors:
        try:
            monitoring.submit(
                svc,
                who,
                report_id,
                value=value,
                note=values["note"],
                reason=values["reason"] or None,
                evidence=evidence,
                difficulties=difficulties,
            )
        except (InvalidInput, InvalidTransition) as exc:
            errors.append(str(exc))
    if errors:
        return _page(request, svc, who, report_id, errors=errors, status_code=422, values=values)
    return RedirectResponse(f"{REPORT_PATH}/{report_id}?sent=1", status_code=303)


@router.post(REPORT_PATH + "/{report_id}/review", response_class=HTMLResponse)
async def review(request: Request, report_id: int, who: WebStaff, svc: State) -> Response:
    form = await read_form(request)
    return await in_lane(None, _review, request, report_id, who, svc, form)


def _review(request: Request, report_id: int, who: Principal, svc: ServiceState, form: FormData) -> Response:
    check_csrf(request, form, svc)
    action, reason = str(form.get("action") or ""), str(form.get("reason") or "").strip() or None
    if action not in ("verify", "return", "lock"):
        return _page(request, svc, who, report_id, errors=["Thao tác không hợp lệ."], status_code=422)
    try:
        monitoring.review(svc, who, report_id, action, reason)
    except InvalidInput:
        return _page(
            request,
            svc,
            who,
            report_id,
            errors=["Vui lòng ghi rõ lý do trả lại (cần bổ sung, sửa gì)."],
            status_code=422,
        )
    except (InvalidTransition, PermissionDenied) as exc:
        return _page(request, svc, who, report_id, errors=[str(exc)], status_code=409)
    return RedirectResponse(f"{REPORT_PATH}/{report_id}", status_code=303)
