"""Cases imported from an earlier system keep that system's id, so a second import finds them again.

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add cases.external_id (NULL for cases filed here) with a unique index."""
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
    op.create_index(op.f("ix_cases_external_id"), "cases", ["external_id"], unique=True)


def downgrade() -> None:
    """Drop cases.external_id."""
    op.drop_index(op.f("ix_cases_external_id"), table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("external_id")
