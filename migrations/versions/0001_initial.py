"""Initial catalog: programs, passes, crawl runs/cursors/failures, validations, scores.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String, nullable=False, index=True),
        sa.Column("source_id", sa.String, nullable=False),
        sa.Column("url", sa.String, nullable=False, server_default=""),
        sa.Column("title", sa.String, nullable=False, server_default=""),
        sa.Column("author", sa.String, nullable=False, server_default=""),
        sa.Column("description", sa.String, nullable=False, server_default=""),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=True),
        sa.Column("likes", sa.Integer, nullable=True),
        sa.Column("views", sa.Integer, nullable=True),
        sa.Column("license", sa.String, nullable=False, server_default="unknown", index=True),
        sa.Column("license_origin", sa.String, nullable=False, server_default="source-default"),
        sa.Column("dialect", sa.String, nullable=False, server_default="raw"),
        sa.Column("code_hash", sa.String, nullable=False, index=True),
        sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("programs.id"), nullable=True, index=True),
        sa.Column("near_duplicate_of", sa.Integer, sa.ForeignKey("programs.id"), nullable=True),
        sa.Column("near_duplicate_kind", sa.String, nullable=True),
        sa.Column("buffer_passes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.Column("raw_record", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint("source", "source_id", name="uq_programs_source_id"),
    )
    op.create_table(
        "program_passes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False, index=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False, server_default=""),
        sa.Column("code", sa.Text, nullable=False, server_default=""),
        sa.Column("inputs", sa.JSON, nullable=False),
    )
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("status", sa.String, nullable=False, server_default="running"),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message", sa.String, nullable=False, server_default=""),
    )
    op.create_table(
        "crawl_cursors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("cursor", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("source", "scope", name="uq_crawl_cursors_scope"),
    )
    op.create_table(
        "crawl_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("crawl_runs.id"), nullable=False, index=True),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("item", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "validations",
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("verdict", sa.String, nullable=False, index=True),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("error_line", sa.Integer, nullable=True),
        sa.Column("compile_ms", sa.Float, nullable=True),
        sa.Column("render_ms", sa.JSON, nullable=False),
        sa.Column("animated", sa.Boolean, nullable=True),
        sa.Column("frame_means", sa.JSON, nullable=False),
        sa.Column("frame_stds", sa.JSON, nullable=False),
        sa.Column("thumbnail_png", sa.LargeBinary, nullable=True),
        sa.Column("size", sa.Integer, nullable=False, server_default="128"),
        sa.Column("frames", sa.Integer, nullable=False, server_default="4"),
        sa.Column("renderer_version", sa.String, nullable=False, server_default=""),
        sa.Column("validated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "scores",
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("diversity", sa.Float, nullable=False),
        sa.Column("colorfulness", sa.Float, nullable=False),
        sa.Column("fill", sa.Float, nullable=False),
        sa.Column("frames_used", sa.Integer, nullable=False, server_default="0"),
        sa.Column("method", sa.String, nullable=False, server_default=""),
        sa.Column("scored_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("scores", "validations", "crawl_failures", "crawl_cursors", "crawl_runs", "program_passes", "programs"):
        op.drop_table(table)
