"""What the API and the pages export: case lists, statistics and themes as CSV (UTF-8 BOM) or XLSX.

The rows are the API's own answers (already scoped and masked for the caller), with Vietnamese
headings and times in Vietnam's time zone; the files come from ``triage.cases.exports``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from urllib.parse import quote

from fastapi import Response

from service.labels import STATUS_LABELS
from service.schemas.cases import CaseSummary
from service.schemas.stats import StatsOut
from service.schemas.themes import ThemeReportOut
from triage.cases.calendar import local_tz
from triage.cases.exports import MEDIA_TYPES, Format, Table, render

_DEADLINE = {"on_track": "Trong hạn", "due_soon": "Sắp đến hạn", "overdue": "Quá hạn"}


def _local(value: datetime) -> datetime:
    return value.astimezone(local_tz()) if value.tzinfo else value


def case_table(cases: Sequence[CaseSummary]) -> Table:
    columns = (
        "Số hồ sơ",
        "Tiếp nhận lúc",
        "Trạng thái",
        "Loại",
        "Tiêu đề",
        "Mã cơ quan",
        "Cơ quan xử lý",
        "Cơ quan gợi ý",
        "Lĩnh vực",
        "Nhóm nhiệm vụ",
        "Người xử lý",
        "Hạn trả lời",
        "Tình trạng hạn",
        "Cờ kiểm duyệt",
        "Chiến dịch",
    )
    rows = [
        (
            c.id,
            _local(c.received_at),
            STATUS_LABELS.get(c.state, c.state),
            c.kind,
            c.title,
            c.agency_code,
            c.agency_name,
            c.suggested_agency,
            c.field,
            c.programme_field_name,
            c.assignee,
            c.answer_due,
            _DEADLINE.get(c.deadline_status or ""),
            c.flagged,
            c.campaign_id,
        )
        for c in cases
    ]
    return Table("Hồ sơ", columns, rows)


def stats_tables(stats: StatsOut) -> list[Table]:
    counts = ("Tiếp nhận", "Đã trả lời", "Trả lời đúng hạn", "Tỷ lệ đúng hạn (%)", "Tồn đọng", "Quá hạn")
    agencies = Table(
        "Theo cơ quan",
        ("Mã cơ quan", "Cơ quan", *counts),
        [
            (
                a.agency_code,
                a.agency_name,
                a.received,
                a.answered,
                a.answered_on_time,
                a.on_time_pct,
                a.backlog,
                a.overdue,
            )
            for a in stats.agencies
        ],
    )
    fields = Table(
        "Theo nhóm nhiệm vụ",
        ("Mã nhóm", "Nhóm nhiệm vụ", *counts),
        [
            (f.code, f.name, f.received, f.answered, f.answered_on_time, f.on_time_pct, f.backlog, f.overdue)
            for f in stats.programme_fields
        ],
    )
    period = Table(
        "Kỳ báo cáo",
        ("Từ ngày", "Đến ngày", "Số liệu tồn đọng tính đến"),
        [(stats.start, stats.end, stats.as_of)],
    )
    return [agencies, fields, period]


def theme_tables(report: ThemeReportOut) -> list[Table]:
    themes = Table(
        "Chủ đề",
        (
            "Mã chủ đề",
            "Nhãn",
            "Từ khóa",
            "Số phản ánh",
            "Tỷ lệ",
            "Nhiều cơ quan",
            "Đang nổi lên",
            "Cơ quan (số hồ sơ)",
        ),
        [
            (
                t.id,
                t.label,
                ", ".join(t.keywords),
                t.size,
                round(t.share, 4),
                t.systemic,
                t.emerging is not None and t.id in report.emerging,
                "; ".join(f"{a.name} ({a.count})" for a in t.agencies),
            )
            for t in report.themes
        ],
    )
    weekly = Table(
        "Theo tuần",
        ("Tuần từ", "Tất cả", *(f"Chủ đề {t.id}" for t in report.themes)),
        [(week, report.totals_by_week[i], *(t.trend[i] for t in report.themes)) for i, week in enumerate(report.weeks)],
    )
    return [themes, weekly]


def download(tables: Sequence[Table], fmt: Format, stem: str, *, today: date) -> Response:
    """The file as an attachment named ``<stem>-<today>.<fmt>``."""
    body = render(tables, fmt)
    name = f"{stem}-{today.isoformat()}.{fmt}"
    return Response(
        content=body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"},
    )
