"""Shared rate-limit buckets and login failures (one limit for every worker and host), and the
masked search text of a submission (what analysts search).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create rate_buckets and login_failures (both start empty: no limit is carried over)."""
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    op.create_index(op.f("ix_rate_buckets_stamp"), "rate_buckets", ["stamp"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_failure"), "login_failures", ["last_failure"], unique=False)
    # NULL for existing rows: masking runs a tagger (too slow for a migration on a large table);
    # the service's periodic job fills them in batches (``triage.store.repositories.fill_masked_search``).
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("masked_search_text", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column and both tables."""
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("masked_search_text")
    op.drop_index(op.f("ix_login_failures_last_failure"), table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_rate_buckets_stamp"), table_name="rate_buckets")
    op.drop_table("rate_buckets")
