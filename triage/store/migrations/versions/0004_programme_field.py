"""Programme field of a case: the Resolution-57 task group (or another programme's), beside the agency.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add cases.programme_field (nullable: cases stored before it keep NULL) and its index."""
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("programme_field", sa.String(length=32), nullable=True))
        batch.create_index(op.f("ix_cases_programme_field"), ["programme_field"], unique=False)


def downgrade() -> None:
    """Drop the index and the column."""
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(op.f("ix_cases_programme_field"))
        batch.drop_column("programme_field")
