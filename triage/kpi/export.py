"""The dashboard as spreadsheet tables (through ``triage.cases.exports``: CSV with a BOM, or XLSX)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.cases.exports import Table
from triage.kpi import quality
from triage.kpi.forecast import STATUS_LABELS
from triage.kpi.monitor import IndicatorView, agency_name, dashboard
from triage.kpi.registry import Registry
from triage.kpi.workflow import LABELS
from triage.store.kpi_tables import KpiReport


def indicators_table(views: list[IndicatorView], registry: Registry) -> Table:
    rows = []
    for v in views:
        s, f = v.strategic, v.forecast
        rows.append(
            (
                registry.group_name(s.group),
                s.code,
                s.name,
                s.unit,
                s.baseline.value,
                s.target,
                s.deadline,
                None if v.latest_period is None else v.latest_period.label,
                v.latest,
                v.completion,
                STATUS_LABELS[f.status],
                f.predicted,
                f.low,
                f.high,
                v.risk_text(),
                "minh họa" if s.illustrative else registry.sources.get(s.source, s.source),
            )
        )
    cols = (
        "Nhóm nhiệm vụ",
        "Mã",
        "Chỉ số chiến lược",
        "Đơn vị",
        "Giá trị gốc",
        "Mục tiêu",
        "Thời hạn",
        "Kỳ mới nhất",
        "Giá trị mới nhất",
        "Hoàn thành (%)",
        "Cảnh báo",
        "Dự báo tại hạn",
        "Cận dưới",
        "Cận trên",
        "Đánh giá rủi ro",
        "Nguồn mục tiêu",
    )
    return Table("Chỉ số", cols, rows)


def rates_table(session: Session, today: date) -> Table:
    rates = quality.reporting_rates(session, today)
    rows = [
        (
            code,
            agency_name(code),
            r.expected,
            r.complete,
            r.on_time,
            r.late,
            r.missing,
            r.pending,
            round(r.completeness, 1),
            round(r.timeliness, 1),
        )
        for (code, _), r in sorted(rates.items())
    ]
    cols = (
        "Mã đơn vị",
        "Đơn vị",
        "Phải nộp",
        "Đã nộp",
        "Đúng hạn",
        "Muộn",
        "Thiếu",
        "Chưa đến hạn",
        "Tỷ lệ đầy đủ (%)",
        "Tỷ lệ đúng hạn (%)",
    )
    return Table("Tỷ lệ báo cáo", cols, rows)


def reports_table(session: Session, agency: str | None = None) -> Table:
    stmt = select(KpiReport).order_by(KpiReport.period, KpiReport.indicator, KpiReport.agency_code)
    if agency is not None:
        stmt = stmt.where(KpiReport.agency_code == agency)
    rows = [
        (
            r.id,
            r.indicator,
            r.agency_code,
            r.period,
            LABELS.get(r.state, r.state),
            r.version,
            r.value,
            r.due_date,
            r.first_submitted_at,
            bool(r.flags),
        )
        for r in session.scalars(stmt)
    ]
    cols = (
        "Số báo cáo",
        "Chỉ tiêu",
        "Đơn vị",
        "Kỳ",
        "Trạng thái",
        "Phiên bản",
        "Giá trị",
        "Hạn nộp",
        "Nộp lần đầu",
        "Có cảnh báo dữ liệu",
    )
    return Table("Báo cáo", cols, rows)


def all_tables(session: Session, registry: Registry, today: date) -> list[Table]:
    return [
        indicators_table(dashboard(session, registry, today), registry),
        rates_table(session, today),
        reports_table(session),
    ]
