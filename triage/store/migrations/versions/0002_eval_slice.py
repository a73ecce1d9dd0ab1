"""Evaluation slice: texts frozen out of training for model comparison.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the eval_slice table."""
    op.create_table(
        "eval_slice",
        sa.Column("text_key", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=16), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"], ["reviewed_labels.id"], name=op.f("fk_eval_slice_label_id_reviewed_labels")
        ),
        sa.PrimaryKeyConstraint("text_key", name=op.f("pk_eval_slice")),
    )
    op.create_index(op.f("ix_eval_slice_agency_code"), "eval_slice", ["agency_code"], unique=False)


def downgrade() -> None:
    """Drop the eval_slice table."""
    op.drop_index(op.f("ix_eval_slice_agency_code"), table_name="eval_slice")
    op.drop_table("eval_slice")
