"""Initial schema: agencies, users, cases, submissions, assignments, responses, reviewed labels, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GENESIS = "0" * 64


def upgrade() -> None:
    """Create every table, and the audit chain's head row at seq 0."""
    op.create_table(
        "agencies",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("parent", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_agencies")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("prev_ref", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_case_id"), "events", ["case_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_code"], ["agencies.code"], name=op.f("fk_users_agency_code_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("forward_due", sa.Date(), nullable=True),
        sa.Column("answer_due", sa.Date(), nullable=True),
        sa.Column("suggestion", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("escalated_for", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_code"], ["agencies.code"], name=op.f("fk_cases_agency_code_agencies")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_cases_assignee_id_users")),
        sa.ForeignKeyConstraint(["duplicate_of"], ["cases.id"], name=op.f("fk_cases_duplicate_of_cases")),
        sa.ForeignKeyConstraint(["merged_into"], ["cases.id"], name=op.f("fk_cases_merged_into_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index(op.f("ix_cases_agency_code"), "cases", ["agency_code"], unique=False)
    op.create_index(op.f("ix_cases_answer_due"), "cases", ["answer_due"], unique=False)
    op.create_index(op.f("ix_cases_kind"), "cases", ["kind"], unique=False)
    op.create_index(op.f("ix_cases_received_at"), "cases", ["received_at"], unique=False)
    op.create_index(op.f("ix_cases_state"), "cases", ["state"], unique=False)

    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_code"], ["agencies.code"], name=op.f("fk_assignments_agency_code_agencies")),
        sa.ForeignKeyConstraint(["assigned_by"], ["users.id"], name=op.f("fk_assignments_assigned_by_users")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_assignments_assignee_id_users")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_assignments_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_case_id"), "assignments", ["case_id"], unique=False)

    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_code"], ["agencies.code"], name=op.f("fk_responses_agency_code_agencies")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_responses_author_id_users")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_responses_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
    )
    op.create_index(op.f("ix_responses_case_id"), "responses", ["case_id"], unique=False)

    op.create_table(
        "reviewed_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("suggested_agency_code", sa.String(length=16), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"], ["agencies.code"], name=op.f("fk_reviewed_labels_agency_code_agencies")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_reviewed_labels_case_id_cases")),
        sa.ForeignKeyConstraint(["reviewer_id"], ["users.id"], name=op.f("fk_reviewed_labels_reviewer_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviewed_labels")),
    )
    op.create_index(op.f("ix_reviewed_labels_case_id"), "reviewed_labels", ["case_id"], unique=False)

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_code", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("submitter_type", sa.String(length=20), nullable=False),
        sa.Column("title_raw", sa.Text(), nullable=False),
        sa.Column("content_raw", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("province_raw", sa.String(length=200), nullable=True),
        sa.Column("province_code", sa.String(length=16), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("contact_phone", sa.String(length=40), nullable=True),
        sa.Column("contact_address", sa.String(length=500), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("forward_due", sa.Date(), nullable=False),
        sa.Column("answer_due", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_submissions_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["province_code"], ["agencies.code"], name=op.f("fk_submissions_province_code_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_submissions_idempotency_key")),
        sa.UniqueConstraint("tracking_code", name=op.f("uq_submissions_tracking_code")),
    )
    op.create_index(op.f("ix_submissions_case_id"), "submissions", ["case_id"], unique=False)
    head = sa.table(
        "audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String)
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    """Drop everything (audit trail included): for development databases only."""
    op.drop_index(op.f("ix_submissions_case_id"), table_name="submissions")

    op.drop_table("submissions")
    op.drop_index(op.f("ix_reviewed_labels_case_id"), table_name="reviewed_labels")

    op.drop_table("reviewed_labels")
    op.drop_index(op.f("ix_responses_case_id"), table_name="responses")

    op.drop_table("responses")
    op.drop_index(op.f("ix_assignments_case_id"), table_name="assignments")

    op.drop_table("assignments")
    op.drop_index(op.f("ix_cases_state"), table_name="cases")
    op.drop_index(op.f("ix_cases_received_at"), table_name="cases")
    op.drop_index(op.f("ix_cases_kind"), table_name="cases")
    op.drop_index(op.f("ix_cases_answer_due"), table_name="cases")
    op.drop_index(op.f("ix_cases_agency_code"), table_name="cases")

    op.drop_table("cases")
    op.drop_table("users")
    op.drop_index(op.f("ix_events_case_id"), table_name="events")

    op.drop_table("events")
    op.drop_table("audit_head")
    op.drop_table("agencies")
