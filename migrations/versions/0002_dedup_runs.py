"""Record each dedup run, so export can tell whether the near-duplicate marks are current.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dedup_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("finished_at", sa.DateTime, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("images", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("programs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("near_duplicates", sa.Integer, nullable=False, server_default="0"),
        sa.Column("clusters", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("dedup_runs")
