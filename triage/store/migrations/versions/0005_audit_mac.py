"""Audit MACs: an HMAC-SHA-256 per event and on the chain head, under a key kept outside the database.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Events written before this revision keep ``mac`` NULL: their SHA-256 chain still verifies as before,
and ``triage audit seal`` signs them once (after checking the plain chain is intact), see
``triage.cases.audit``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add events.mac and audit_head.mac (nullable: rows from before the key are unsigned until sealed)."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop both columns."""
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("mac")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("mac")
