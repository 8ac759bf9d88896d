"""`harvest export`: select programs from the catalog and write a licence-aware dataset folder.

Selection runs filter steps in a fixed order (verdict, exact duplicates, near duplicates, source, licence,
diversity, limit) and records how many programs each removed. The dataset is written into a temporary folder
beside the target and swapped into place at the end (see corpus/export_staging.py), so an interrupted export
leaves the previous one in place and nothing that the next export does not clean up. Programs are loaded, drawn
and written as one stage of the stage runner (corpus/export_images.py), a shard at a time, so memory does not grow
with the export.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import defer
from sqlmodel import select

from corpus.attribution import attribution_markdown
from corpus.dedup import METHOD as DEDUP_METHOD
from corpus.dedup import marks_are_current
from corpus.errors import CorpusError
from corpus.export_format import (
    ATTRIBUTION_NAME,
    DEFAULT_OUT_NAME,
    EXPORT_INFO_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SHARDS_DIR,
    SampleMetadata,
    export_passes,
    program_key,
)
from corpus.export_images import (
    KEPT,
    CodeOnly,
    Describe,
    ExportFrames,
    ExportImagesStage,
)
from corpus.export_shards import DatasetWriter
from corpus.export_staging import install, make_staging, recover
from corpus.licenses import KNOWN_LICENSES, UNKNOWN, is_commercial_safe
from corpus.models import Program, Score, Validation
from corpus.public_identity import import_roots, public_identity
from corpus.stage_runner import BatchPolicy, StageEvent, run_stage
from corpus.wording import counted
from renderer.executor_spec import ExecutorSpec
from renderer.jobs import ProgramSource, Verdict

FORMATS = ("webdataset", "jsonl")
DEFAULT_SHARD_SIZE = 1000
DEFAULT_IMAGE_SIZE = 256


@dataclass(frozen=True)
class ExportOptions:
    out: Path | None = None  # default: `export` next to the catalog
    min_diversity: float | None = None
    licenses: tuple[str, ...] | None = None
    commercial_safe: bool = False
    source: str | None = None
    format: str = "webdataset"
    shard_size: int = DEFAULT_SHARD_SIZE
    images_per_program: int = 0
    image_size: int = DEFAULT_IMAGE_SIZE
    limit: int | None = None
    seed: int = 0
    overwrite: bool = False
    keep_duplicates: bool = False
    exact_only: bool = False  # only programs validated with every media channel real (no stand-ins)
    executor: ExecutorSpec = ExecutorSpec()
    shader_cache_dir: Path | None = None  # Mesa's cache, shared with validate


@dataclass
class FilterStep:
    name: str
    removed: int
    remaining: int


@dataclass
class ExportSummary:
    out: Path
    exported: int
    shards: int
    steps: list[FilterStep]
    scored: int = 0  # programs scored on the way
    deduplicated: bool = False  # whether near duplicates were searched again on the way
    images: int = 0
    selected_ids_sha256: str = ""

    def describe(self) -> str:
        parts = [counted(self.shards, "shard")] if self.shards else []
        parts.append(counted(self.images, "image"))
        return f"exported {counted(self.exported, 'program')} ({', '.join(parts)}) to {self.out}"


@dataclass(frozen=True)
class _Row:
    program: Program
    validation: Validation | None
    score: Score | None


# --- validating the request before any work ---------------------------------------------------------------------


def _check_options(options: ExportOptions) -> None:
    if options.format not in FORMATS:
        raise CorpusError(f"unknown export format {options.format!r}; choose one of: {', '.join(FORMATS)}")
    if options.licenses is not None and options.commercial_safe:
        raise CorpusError("use either --license or --commercial-safe, not both")
    if options.min_diversity is not None and not 0.0 <= options.min_diversity <= 1.0:
        raise CorpusError(f"--min-diversity must be between 0 and 1, got {options.min_diversity}")
    if options.shard_size < 1:
        raise CorpusError(f"--shard-size must be at least 1, got {options.shard_size}")
    if options.images_per_program < 0 or options.images_per_program > 64:
        raise CorpusError(f"--images-per-program must be between 0 and 64, got {options.images_per_program}")
    if not 8 <= options.image_size <= 2048:
        raise CorpusError(f"--size must be between 8 and 2048 pixels, got {options.image_size}")
    if options.limit is not None and options.limit < 1:
        raise CorpusError(f"--limit must be at least 1, got {options.limit}")


def resolve_licenses(requested: tuple[str, ...], catalog_ids: set[str]) -> tuple[str, ...]:
    """Each requested id in its canonical spelling; unknown ids raise an error that lists the known ones."""
    known = {**{i.lower(): i for i in KNOWN_LICENSES}, UNKNOWN: UNKNOWN, **{i.lower(): i for i in catalog_ids}}
    resolved: list[str] = []
    unknown: list[str] = []
    for item in requested:
        canonical = known.get(item.strip().lower())
        (resolved.append(canonical) if canonical else unknown.append(item.strip()))
    if unknown:
        listing = ", ".join(sorted(set(known.values())))
        raise CorpusError(f"unknown licence id {', '.join(map(repr, unknown))}; known ids: {listing}")
    return tuple(dict.fromkeys(resolved))


def resolve_out(options: ExportOptions, catalog_folder: Path) -> Path:
    """The target folder, checked, after cleaning up what crashed exports of it left (which may restore it)."""
    out = Path(options.out) if options.out is not None else catalog_folder / DEFAULT_OUT_NAME
    out = out.resolve()
    if out.parent.is_dir():
        recover(out)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not options.overwrite:
        raise CorpusError(f"{out} exists and is not empty; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise CorpusError(f"folder {out.parent} for the export does not exist")
    return out


# --- selection --------------------------------------------------------------------------------------------------


def _load_rows(session) -> list[_Row]:
    rows = session.exec(
        select(Program, Validation, Score)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .join(Score, Score.program_id == Program.id, isouter=True)
        # Every row is kept for the whole export: leave out the blobs it never reads.
        .options(defer(Program.raw_record), defer(Validation.thumbnail_png))
        .order_by(Program.id)
    ).all()
    return [_Row(program, validation, score) for program, validation, score in rows]


def _step(steps: list[FilterStep], name: str, before: list[_Row], after: list[_Row]) -> list[_Row]:
    steps.append(FilterStep(name, len(before) - len(after), len(after)))
    return after


def select_rows(rows: list[_Row], options: ExportOptions, licenses: tuple[str, ...] | None) -> tuple[list[_Row], list[FilterStep]]:
    """The cheap filters (everything but diversity and limit), each recorded as a step."""
    steps: list[FilterStep] = [FilterStep("catalog", 0, len(rows))]
    rows = _step(steps, "verdict is not ok", rows, [r for r in rows if r.validation and r.validation.verdict == Verdict.OK.value])
    if not options.keep_duplicates:
        rows = _step(steps, "exact duplicate", rows, [r for r in rows if r.program.duplicate_of is None])
        rows = _step(steps, "near duplicate", rows, [r for r in rows if r.program.near_duplicate_of is None])
    if options.exact_only:
        # An empty list, not None: a verdict given before stand-ins were recorded says nothing about them.
        rows = _step(steps, "drawn with stand-ins (or not known)", rows, [r for r in rows if r.validation.standins == []])
    if options.source:
        rows = _step(steps, f"source is not {options.source}", rows, [r for r in rows if r.program.source == options.source])
    if options.commercial_safe:
        rows = _step(steps, "licence not commercial-safe", rows, [r for r in rows if is_commercial_safe(r.program.license)])
    elif licenses is not None:
        wanted = set(licenses)
        rows = _step(steps, "licence not requested", rows, [r for r in rows if r.program.license in wanted])
    return rows, steps


def finish_selection(rows: list[_Row], steps: list[FilterStep], options: ExportOptions) -> list[_Row]:
    if options.min_diversity is not None:
        threshold = options.min_diversity
        rows = _step(steps, f"diversity below {threshold:g} (or unscored)", rows,
                     [r for r in rows if r.score is not None and r.score.diversity >= threshold])
    if options.limit is not None and len(rows) > options.limit:
        # A seeded sample, not the first N ids: the oldest programs are not representative.
        chosen = set(random.Random(options.seed).sample(range(len(rows)), options.limit))
        rows = _step(steps, f"over --limit {options.limit}", rows, [r for i, r in enumerate(rows) if i in chosen])
    return rows


# --- what each program says about itself --------------------------------------------------------------------


def _metadata(row: _Row, source: ProgramSource, cluster: list[int], roots: tuple[PurePosixPath, ...]) -> SampleMetadata:
    program, validation, score = row.program, row.validation, row.score
    identity = public_identity(program.source_id, program.url, program.code_hash, roots)
    return SampleMetadata(
        key=program_key(program.source, program.id),
        id=program.id,
        source=program.source,
        source_id=identity.source_id,
        url=identity.url,
        title=program.title,
        author=program.author,
        license=program.license,
        license_origin=program.license_origin,
        dialect=source.dialect,
        channels=list(source.channels),
        buffer_passes=source.buffer_passes,
        verdict=validation.verdict if validation else None,
        reason=validation.reason if validation else "",
        diversity=score.diversity if score else None,
        colorfulness=score.colorfulness if score else None,
        fill=score.fill if score else None,
        likes=program.likes,
        published_at=program.published_at.isoformat() if program.published_at else None,
        duplicate_of=program.duplicate_of,
        near_duplicate_of=program.near_duplicate_of,
        near_duplicate_kind=program.near_duplicate_kind,
        cluster=cluster,
        mode=source.mode,
        passes=export_passes(source),
        standins=list(validation.standins) if validation and validation.standins is not None else None,
    )


def _clusters(session, ids: list[int]) -> dict[int, list[int]]:
    """For each exported id: itself, then the ids of programs that duplicate it (exactly or nearly)."""
    clusters = {pid: [pid] for pid in ids}
    # All marked programs rather than `IN (ids)`: an export can name more ids than SQLite takes in one query.
    marked = session.exec(
        select(Program.id, Program.duplicate_of, Program.near_duplicate_of)
        .where(Program.duplicate_of.is_not(None) | Program.near_duplicate_of.is_not(None))
        .order_by(Program.id)
    ).all()
    for program_id, duplicate_of, near_duplicate_of in marked:
        head = duplicate_of if duplicate_of in clusters else near_duplicate_of
        if head in clusters and program_id not in clusters[head]:
            clusters[head].append(program_id)
    return clusters


def _describer(catalog, rows: list[_Row]) -> Describe:
    """What each program of `rows` says about itself, given its code (loaded only when it is drawn)."""
    by_id = {row.program.id: row for row in rows}
    with catalog.session() as session:
        clusters = _clusters(session, list(by_id))
        roots = import_roots(session)

    def describe(program_id: int, source: ProgramSource) -> SampleMetadata:
        return _metadata(by_id[program_id], source, clusters[program_id], roots)

    return describe


# --- writing ----------------------------------------------------------------------------------------------------


@dataclass
class _Written:
    samples: list[SampleMetadata]
    shards: int
    images: int
    render_failed: int


def _render_pool(options: ExportOptions):
    if not options.images_per_program:
        return nullcontext(CodeOnly())
    return options.executor.build(options.shader_cache_dir)


def _write_programs(catalog, staging: Path, rows: list[_Row], options: ExportOptions,
                    on_event: Callable[[StageEvent], None] | None) -> _Written:
    """Shards (or loose images) and the manifest, each batch of `shard_size` programs as soon as it is complete."""
    ids = [row.program.id for row in rows]
    webdataset = options.format == "webdataset"
    if webdataset:
        (staging / SHARDS_DIR).mkdir()
    frames = (ExportFrames(options.images_per_program, options.image_size, options.seed)
              if options.images_per_program else None)
    with _render_pool(options) as pool, open(staging / MANIFEST_NAME, "w", encoding="utf-8") as manifest:
        writer = DatasetWriter(staging, webdataset, manifest)
        stage = ExportImagesStage(ids, _describer(catalog, rows), writer.write, options.shard_size, frames,
                                  lookahead=getattr(pool, "workers", 1))
        # Saving after every result writes each shard as soon as it is complete, so the stage holds no more.
        report = run_stage(catalog, pool, stage, BatchPolicy(results=1), on_event, program_ids=ids)
        if report.interrupted:
            raise KeyboardInterrupt
        stage.finish()
    return _Written(writer.samples, writer.shards, writer.images, report.done - report.counts[KEPT])


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _export_info(catalog, options: ExportOptions, summary: ExportSummary, licenses: tuple[str, ...] | None) -> str:
    """export.json: how the export was made. Folders appear by name only: the export may be published."""
    from corpus.db import harvest_version
    from corpus.scoring import METHOD as SCORE_METHOD

    # Where the images were drawn changes nothing in them, and a cluster's address is nobody else's business.
    unrecorded = {"shader_cache_dir", "executor"}
    parameters = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items() if k not in unrecorded}
    info = {
        "harvest_version": harvest_version(),
        "format_version": FORMAT_VERSION,
        "scoring_method": SCORE_METHOD,
        "dedup_method": DEDUP_METHOD,
        # False when near duplicates were exported unchecked (no refresh asked for, and marks stale).
        "near_duplicate_marks_current": marks_are_current(catalog),
        "catalog": catalog.path.name,
        "parameters": parameters | {"out": summary.out.name},
        "licenses_resolved": list(licenses) if licenses is not None else None,
        "steps": [asdict(s) for s in summary.steps],
        "exported": summary.exported,
        "shards": summary.shards,
        "images": summary.images,
        "selected_ids_sha256": summary.selected_ids_sha256,
    }
    return json.dumps(info, indent=2, sort_keys=True) + "\n"


def _summary(out: Path, steps: list[FilterStep], written: _Written) -> ExportSummary:
    if written.render_failed:
        steps.append(FilterStep("render failed during export", written.render_failed, len(written.samples)))
    if not written.samples:
        raise CorpusError("every selected program failed to render its images; nothing was written")
    ids = sorted(sample.id for sample in written.samples)
    return ExportSummary(out=out, exported=len(ids), shards=written.shards, steps=steps, images=written.images,
                         selected_ids_sha256=hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest())


# --- the whole export -------------------------------------------------------------------------------------------


def _requested_licenses(catalog, options: ExportOptions) -> tuple[str, ...] | None:
    if options.licenses is None:
        return None
    with catalog.session() as session:
        catalog_licenses = set(session.exec(select(Program.license).distinct()).all())
    return resolve_licenses(options.licenses, catalog_licenses)


def _selection(catalog, options: ExportOptions, licenses: tuple[str, ...] | None,
               score_missing: Callable[[list[int]], int] | None) -> tuple[list[_Row], list[FilterStep], int]:
    """The selected rows, the steps that narrowed them, and how many programs were scored on the way."""
    from corpus.scoring import METHOD as SCORE_METHOD

    with catalog.session() as session:
        rows, steps = select_rows(_load_rows(session), options, licenses)
    scored = 0
    missing = [r.program.id for r in rows if r.score is None or r.score.method != SCORE_METHOD]
    if missing and score_missing is not None:
        scored = score_missing(missing)
        wanted = {r.program.id for r in rows}
        with catalog.session() as session:
            rows = [r for r in _load_rows(session) if r.program.id in wanted]
    rows = finish_selection(rows, steps, options)
    if not rows:
        raise CorpusError(
            "no program matches the selection (" + ", ".join(f"{s.name}: -{s.removed}" for s in steps[1:] if s.removed)
            + "); nothing was written"
        )
    return rows, steps, scored


def export_catalog(
    catalog,
    options: ExportOptions,
    on_event: Callable[[StageEvent], None] | None = None,
    score_missing: Callable[[list[int]], int] | None = None,
    refresh_dedup: Callable[[], object] | None = None,
) -> ExportSummary:
    """Select, score what lacks a score (via `score_missing`, which returns how many it scored), and write.

    Near-duplicate marks come from the last `harvest dedup`; when the catalog has changed since (or dedup never
    ran), `refresh_dedup` is called first to run it again, unless duplicates are kept anyway.

    `on_event` gets the stage runner's events of the pass that draws and writes the programs. Raises CorpusError
    for every user mistake before anything is written, and for an empty selection (nothing is written then)."""
    _check_options(options)
    out = resolve_out(options, catalog.folder)
    licenses = _requested_licenses(catalog, options)
    deduplicated = False
    if refresh_dedup is not None and not options.keep_duplicates and not marks_are_current(catalog):
        refresh_dedup()
        deduplicated = True
    rows, steps, scored = _selection(catalog, options, licenses, score_missing)
    staging = make_staging(out)
    try:
        written = _write_programs(catalog, staging, rows, options, on_event)
        summary = _summary(out, steps, written)
        summary.scored, summary.deduplicated = scored, deduplicated
        _write_text(staging / ATTRIBUTION_NAME, attribution_markdown(written.samples))
        _write_text(staging / EXPORT_INFO_NAME, _export_info(catalog, options, summary, licenses))
        install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
