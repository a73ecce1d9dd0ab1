"""Analyst and admin pages: the KPI dashboard per agency and emerging topics (the models page: ``models.py``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from service.deps import State
from service.exports import download, stats_tables, theme_tables
from service.schemas.themes import ThemeReportOut
from service.theme_cache import default_period, latest_report, period_report
from service.views import stats_view
from service.web import charts
from service.web.render import render
from service.web.session import WebStaff
from service.web.theme_page import PAGE_THEMES
from triage.cases.calendar import to_local_date
from triage.cases.exports import check_format
from triage.cases.stats import agency_stats, programme_field_stats
from triage.cases.theme_report import export_evidence
from triage.errors import InvalidInput

router = APIRouter(include_in_schema=False)
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
CHART_ROWS = 15


def presets(today: date) -> list[tuple[str, date, date]]:
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last_month_end = today.replace(day=1) - timedelta(days=1)
    return [
        ("Tháng này", today.replace(day=1), today),
        ("Tháng trước", last_month_end.replace(day=1), last_month_end),
        ("30 ngày qua", today - timedelta(days=29), today),
        ("Quý này", quarter_start, today),
        ("Năm nay", date(today.year, 1, 1), today),
    ]


def _parse(value: str | None, default: date) -> tuple[date, str | None]:
    if not value:
        return default, None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return default, f"Ngày không hợp lệ: {value!r} (định dạng năm-tháng-ngày)."
    if not EARLIEST <= day <= LATEST:
        return default, f"Ngày phải nằm trong khoảng {EARLIEST:%d/%m/%Y} – {LATEST:%d/%m/%Y}."
    return day, None


@router.get("/staff/reports", response_class=HTMLResponse)
def reports(
    request: Request,
    who: WebStaff,
    svc: State,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
    programme_field: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Received, on-time %, backlog and overdue per agency and per programme field for a period (the data of
    GET /api/v1/stats); ``programme_field`` narrows both tables to one task group."""
    who.require("stats.read")
    today = to_local_date(svc.now())
    end_d, end_err = _parse(end, today)
    start_d, start_err = _parse(start, end_d.replace(day=1))
    errors = [e for e in (start_err, end_err) if e]
    if start_d > end_d:
        errors.append("Ngày bắt đầu phải trước ngày kết thúc; đã đổi chỗ hai ngày.")
        start_d, end_d = end_d, start_d
    taxonomy = svc.pipeline.programme_taxonomy
    chosen: str | None = None
    if programme_field:
        try:
            chosen = taxonomy.check(programme_field)
        except InvalidInput:
            shown = programme_field[:40]
            errors.append(f"Nhóm nhiệm vụ không có trong danh mục: {shown!r}; đang hiện tất cả các nhóm.")
    with svc.db.read() as s:
        rows = agency_stats(s, start_d, end_d, today=today, programme_field=chosen)
        by_field = programme_field_stats(s, start_d, end_d, today=today, taxonomy=taxonomy, programme_field=chosen)
    answered_all, on_time_all = sum(r.answered for r in rows), sum(r.answered_on_time for r in rows)
    totals: dict[str, float | None] = {
        "received": sum(r.received for r in rows),
        "answered": answered_all,
        "on_time": on_time_all,
        "backlog": sum(r.backlog for r in rows),
        "overdue": sum(r.overdue for r in rows),
        "on_time_pct": round(100.0 * on_time_all / answered_all, 1) if answered_all else None,
    }
    top = sorted(rows, key=lambda r: (-r.received, -r.backlog, r.agency_name))[:CHART_ROWS]
    names = [r.agency_name for r in top]
    answered = [r for r in top if r.answered]
    chart_list = [
        charts.bar_chart(
            "chart-volume",
            "Tiếp nhận và đã trả lời",
            names,
            [charts.Series("Tiếp nhận", "s-received"), charts.Series("Đã trả lời", "s-answered")],
            [[float(r.received) for r in top], [float(r.answered) for r in top]],
        ),
        charts.bar_chart(
            "chart-ontime",
            "Tỷ lệ trả lời đúng hạn",
            [r.agency_name for r in answered],
            [charts.Series("Đúng hạn", "s-ontime")],
            [[r.on_time_pct for r in answered]],
            max_value=100.0,
            pct=True,
        ),
        charts.bar_chart(
            "chart-backlog",
            "Tồn đọng và quá hạn",
            names,
            [charts.Series("Tồn đọng", "s-backlog"), charts.Series("Quá hạn", "s-overdue")],
            [[float(r.backlog) for r in top], [float(r.overdue) for r in top]],
        ),
    ]
    fields_shown = [r for r in by_field if r.code is not None]
    chart_list.append(
        charts.bar_chart(
            "chart-programme",
            "Theo nhóm nhiệm vụ",
            [r.name for r in fields_shown],
            [charts.Series("Tiếp nhận", "s-received"), charts.Series("Tồn đọng", "s-backlog")],
            [[float(r.received) for r in fields_shown], [float(r.backlog) for r in fields_shown]],
        )
    )
    titles = ["Tiếp nhận và đã trả lời", "Tỷ lệ trả lời đúng hạn (%)", "Tồn đọng và quá hạn", "Theo nhóm nhiệm vụ"]
    context = {
        "rows": rows,
        "programme_rows": by_field,
        "programme_fields": taxonomy.fields,
        "programme_field": chosen or "",
        "programme": taxonomy.programme,
        "totals": totals,
        "charts": list(zip(titles, chart_list, strict=True)),
        "start": start_d,
        "end": end_d,
        "as_of": min(end_d, today),
        "presets": presets(today),
        "errors": errors,
        "theme_report": latest_report(svc, end_d),  # rendered by reports/themes.html, as `triage themes` does
        "max_themes": PAGE_THEMES,
    }
    return render(request, "staff/reports.html", context, status_code=422 if errors else 200)


@router.get("/staff/reports/export")
def export_report(
    who: WebStaff,
    svc: State,
    what: Annotated[Literal["stats", "themes"], Query()] = "stats",
    format: Annotated[str, Query(max_length=10)] = "xlsx",
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
    programme_field: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The page's figures as a file: the statistics tables, or the theme report shown below them."""
    who.require("stats.read")
    fmt = check_format(format)
    today = to_local_date(svc.now())
    end_d, end_err = _parse(end, today)
    start_d, start_err = _parse(start, end_d.replace(day=1))
    if end_err or start_err:
        raise InvalidInput(end_err or start_err or "")
    if what == "stats":
        stats = stats_view(who, svc, min(start_d, end_d), max(start_d, end_d), None, programme_field or None)
        tables = stats_tables(stats)
        return download(tables[:1] if fmt == "csv" else tables, fmt, "thong-ke", today=today)
    report = latest_report(svc, end_d)
    if report is None:
        raise InvalidInput("Chưa có chủ đề cho kỳ này (quá ít phản ánh, hoặc báo cáo đang được tính); thử lại sau.")
    tables = theme_tables(ThemeReportOut.model_validate(report, from_attributes=True))
    return download(tables[:1] if fmt == "csv" else tables, fmt, "chu-de", today=today)


@router.get("/staff/reports/themes/{theme_id}/evidence.{fmt}")
def theme_evidence_file(
    who: WebStaff,
    svc: State,
    theme_id: int,
    fmt: Literal["csv", "md"],
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """A systemic theme's evidence panel as a file for an analyst's memo (the page's download links):
    CSV in UTF-8 with a BOM (Excel shows the Vietnamese) or Markdown; texts masked as on the page."""
    who.require("stats.read")
    today = to_local_date(svc.now())
    end_d, end_err = _parse(until, today)
    start_d, start_err = _parse(since, end_d - timedelta(weeks=svc.settings.theme_weeks) + timedelta(days=1))
    if end_err or start_err:
        raise InvalidInput(end_err or start_err or "")
    start_d, end_d = default_period(svc, start_d, end_d)
    content, media, name = export_evidence(period_report(svc, start_d, end_d), theme_id, fmt)
    return Response(
        content=content.encode("utf-8"),
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
