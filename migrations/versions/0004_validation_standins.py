"""Record, with each verdict, which channels were drawn with stand-ins instead of the website's media.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for verdicts given before: unknown, so `export --exact-only` leaves them out until revalidated.
    with op.batch_alter_table("validations") as batch:
        batch.add_column(sa.Column("standins", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("validations") as batch:
        batch.drop_column("standins")
