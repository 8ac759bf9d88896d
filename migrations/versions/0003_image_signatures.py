"""Keep each program's near-duplicate image signature, drawn in the compile that validated it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_signatures",
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("hashes", sa.JSON, nullable=False),
        sa.Column("mean_colours", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("image_signatures")
