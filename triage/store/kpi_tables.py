"""Tables of the Resolution-57 monitoring: periodic reports, their versions, evidence and difficulties.

One ``kpi_reports`` row per (indicator, agency, period) holds the current state and value; every
submission or correction adds a ``kpi_report_versions`` row that is never changed afterwards, so the
history of a figure stays visible. Evidence rows carry the SHA-256 of the file (or of the link text),
repeated in the audit event that recorded them: ``triage audit verify`` compares the two.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from triage.store.tables import Base, utcnow


class KpiReport(Base):
    """A report due from one agency for one operational indicator and period."""

    __tablename__ = "kpi_reports"
    __table_args__ = (
        UniqueConstraint("indicator", "agency_code", "period", name="uq_kpi_reports_key"),
        Index("ix_kpi_reports_agency_period", "agency_code", "period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    indicator: Mapped[str] = mapped_column(String(40), index=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    period: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(16), index=True)  # due | submitted | returned | verified | locked
    due_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=0)  # 0 until the first submission
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    first_submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)  # on time or late: the first one
    returned_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    flags: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)  # validation and outlier findings
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiReportVersion(Base):
    """One submitted version of a report's figure, as it was sent; never updated."""

    __tablename__ = "kpi_report_versions"
    __table_args__ = (UniqueConstraint("report_id", "version", name="uq_kpi_report_versions_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("kpi_reports.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a locked figure was corrected
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiEvidence(Base):
    """A file or a link backing a report version; ``sha256`` of the file's bytes or of the URL."""

    __tablename__ = "kpi_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("kpi_reports.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # file | link
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # where the file is stored
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiDifficulty(Base):
    """A difficulty or recommendation raised in a report, filed as a PAKN case (``case_id``)."""

    __tablename__ = "kpi_difficulties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("kpi_reports.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    tracking_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
