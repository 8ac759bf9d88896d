"""Catalog tables. The schema itself is owned by the alembic migrations in `migrations/`;
these models must match them (tests/test_catalog.py checks that they do)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: sqlmodel refuses naive datetimes."""
    return datetime.now(UTC)


class Program(SQLModel, table=True):
    __tablename__ = "programs"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_programs_source_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    source_id: str
    url: str = ""
    title: str = ""
    author: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = None
    likes: int | None = None
    views: int | None = None
    license: str = Field(default="unknown", index=True)
    license_origin: str = "source-default"  # declared | detected | source-default
    dialect: str = "raw"  # shadertoy | glslsandbox | bookofshaders | raw
    code_hash: str = Field(index=True)  # sha256 of the normalized code of all passes
    # Exact duplicate: same normalized code as an earlier program, which is the one we keep.
    duplicate_of: int | None = Field(default=None, foreign_key="programs.id", index=True)
    # Near duplicate (code MinHash or image hash), filled by `harvest dedup`.
    near_duplicate_of: int | None = Field(default=None, foreign_key="programs.id")
    near_duplicate_kind: str | None = None  # code | image
    buffer_passes: int = 0
    fetched_at: datetime = Field(default_factory=utcnow)
    raw_record: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))  # zlib(JSON)


class ProgramPass(SQLModel, table=True):
    __tablename__ = "program_passes"

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="programs.id", index=True)
    kind: str  # image | common | buffer_a..d | cubemap | sound
    name: str = ""
    code: str = ""
    # [{"channel": 0, "ctype": "texture", "src": "/media/a/..."}]
    inputs: list[dict] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CrawlRun(SQLModel, table=True):
    __tablename__ = "crawl_runs"

    id: int | None = Field(default=None, primary_key=True)
    source: str
    scope: str  # what was crawled (base URL + query, a path, a repo); never contains the API key
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = "running"  # running | finished | failed | interrupted
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    failed: int = 0
    message: str = ""


class CrawlCursor(SQLModel, table=True):
    """Where a crawl of one (source, scope) got to, so the next run resumes there."""

    __tablename__ = "crawl_cursors"
    __table_args__ = (UniqueConstraint("source", "scope", name="uq_crawl_cursors_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    scope: str
    cursor: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class CrawlFailure(SQLModel, table=True):
    __tablename__ = "crawl_failures"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="crawl_runs.id", index=True)
    source: str
    item: str
    reason: str
    at: datetime = Field(default_factory=utcnow)


class Validation(SQLModel, table=True):
    """The current verdict of a program (one row per program; `--revalidate` replaces it)."""

    __tablename__ = "validations"

    program_id: int = Field(foreign_key="programs.id", primary_key=True)
    verdict: str = Field(index=True)
    reason: str = ""
    error_line: int | None = None
    compile_ms: float | None = None
    render_ms: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    animated: bool | None = None
    frame_means: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    frame_stds: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    thumbnail_png: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    size: int = 128
    frames: int = 4
    renderer_version: str = ""
    validated_at: datetime = Field(default_factory=utcnow)
    # Channels drawn with stand-ins, [{"pass", "channel", "kind", "media", "reason"}]; [] when every channel was
    # exact, None when not known (not compiled, or validated before harvest recorded it).
    standins: list[dict] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Score(SQLModel, table=True):
    __tablename__ = "scores"

    program_id: int = Field(foreign_key="programs.id", primary_key=True)
    diversity: float
    colorfulness: float
    fill: float
    frames_used: int = 0
    method: str = ""  # version tag of the scoring definition
    scored_at: datetime = Field(default_factory=utcnow)


class DedupRun(SQLModel, table=True):
    """A finished `harvest dedup`, with a fingerprint of what it compared, so `export` can tell whether the
    near-duplicate marks still describe the catalog."""

    __tablename__ = "dedup_runs"

    id: int | None = Field(default=None, primary_key=True)
    finished_at: datetime = Field(default_factory=utcnow)
    fingerprint: str  # sha256 of the candidates' ids, code hashes, verdicts and renderer versions
    images: bool = True  # whether frames were compared too
    programs: int = 0
    near_duplicates: int = 0
    clusters: int = 0


class ImageSignatureRow(SQLModel, table=True):
    """A program's perceptual hashes and mean colours at the near-duplicate points, drawn in the compile that
    validated it (or by `harvest dedup` for programs validated before), so dedup need not compile it again.
    `hashes` is empty when no frame had a picture to compare (nearly uniform luma everywhere)."""

    __tablename__ = "image_signatures"

    program_id: int = Field(foreign_key="programs.id", primary_key=True)
    method: str  # version tag of the signature definition (points, size, hash)
    hashes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # 64-bit, as hex
    mean_colours: list[list[float]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(default_factory=utcnow)
