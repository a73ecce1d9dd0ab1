"""Campaigns: groups of near-identical submissions received close together, answered as one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the campaigns table and the cases.campaign_id link."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_size"), "campaigns", ["size"], unique=False)
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_cases_campaign_id_campaigns"), "campaigns", ["campaign_id"], ["id"])
        batch.create_index(op.f("ix_cases_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    """Drop the link and the table."""
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(op.f("ix_cases_campaign_id"))
        batch.drop_constraint(op.f("fk_cases_campaign_id_campaigns"), type_="foreignkey")
        batch.drop_column("campaign_id")
    op.drop_index(op.f("ix_campaigns_size"), table_name="campaigns")
    op.drop_table("campaigns")
