"""Resolution-57 monitoring: periodic reports, their versions, evidence and difficulties.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the four kpi_* tables (empty: reports become due when the registry is loaded)."""
    op.create_table(
        "kpi_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("first_submitted_at", sa.DateTime(), nullable=True),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("flags", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_code"], ["agencies.code"], name=op.f("fk_kpi_reports_agency_code_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_reports")),
        sa.UniqueConstraint("indicator", "agency_code", "period", name="uq_kpi_reports_key"),
    )
    op.create_index(op.f("ix_kpi_reports_indicator"), "kpi_reports", ["indicator"], unique=False)
    op.create_index(op.f("ix_kpi_reports_state"), "kpi_reports", ["state"], unique=False)
    op.create_index("ix_kpi_reports_agency_period", "kpi_reports", ["agency_code", "period"], unique=False)
    op.create_table(
        "kpi_report_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["kpi_reports.id"], name=op.f("fk_kpi_report_versions_report_id_kpi_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_report_versions")),
        sa.UniqueConstraint("report_id", "version", name="uq_kpi_report_versions_key"),
    )
    op.create_index(op.f("ix_kpi_report_versions_report_id"), "kpi_report_versions", ["report_id"], unique=False)
    op.create_table(
        "kpi_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["kpi_reports.id"], name=op.f("fk_kpi_evidence_report_id_kpi_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_evidence")),
    )
    op.create_index(op.f("ix_kpi_evidence_report_id"), "kpi_evidence", ["report_id"], unique=False)
    op.create_table(
        "kpi_difficulties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("tracking_code", sa.String(length=32), nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_kpi_difficulties_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["report_id"], ["kpi_reports.id"], name=op.f("fk_kpi_difficulties_report_id_kpi_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_difficulties")),
    )
    op.create_index(op.f("ix_kpi_difficulties_report_id"), "kpi_difficulties", ["report_id"], unique=False)


def downgrade() -> None:
    """Drop the kpi_* tables (the audit trail keeps what they recorded)."""
    op.drop_index(op.f("ix_kpi_difficulties_report_id"), table_name="kpi_difficulties")
    op.drop_table("kpi_difficulties")
    op.drop_index(op.f("ix_kpi_evidence_report_id"), table_name="kpi_evidence")
    op.drop_table("kpi_evidence")
    op.drop_index(op.f("ix_kpi_report_versions_report_id"), table_name="kpi_report_versions")
    op.drop_table("kpi_report_versions")
    op.drop_index("ix_kpi_reports_agency_period", table_name="kpi_reports")
    op.drop_index(op.f("ix_kpi_reports_state"), table_name="kpi_reports")
    op.drop_index(op.f("ix_kpi_reports_indicator"), table_name="kpi_reports")
    op.drop_table("kpi_reports")
