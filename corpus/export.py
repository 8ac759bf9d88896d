"""`harvest export`: select programs from the catalog and write a licence-aware dataset folder.

Selection runs filter steps in a fixed order (verdict, exact duplicates, near duplicates, source, licence,
diversity, limit) and records how many programs each removed. The dataset is written into a temporary folder
beside the target and renamed into place at the end, so an interrupted export leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image
from sqlmodel import select

from corpus.dedup import METHOD as DEDUP_METHOD
from corpus.dedup import marks_are_current
from corpus.export_format import (
    ATTRIBUTION_NAME,
    EXPORT_INFO_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SHARDS_DIR,
    SampleMetadata,
    joined_code,
    program_key,
    shard_name,
)
from corpus.models import Program, Score, Validation
from corpus.render_source import load_program_sources
from harvester.errors import HarvestError
from harvester.licenses import KNOWN_LICENSES, UNKNOWN, is_commercial_safe
from renderer.executor_spec import ExecutorSpec
from renderer.jobs import ProgramSource, Verdict

FORMATS = ("webdataset", "jsonl")
DEFAULT_SHARD_SIZE = 1000
DEFAULT_IMAGE_SIZE = 256
DEFAULT_OUT_NAME = "export"
# Fixed member time in the shards, so the same selection gives byte-identical tar files.
MEMBER_MTIME = 0


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


@dataclass(frozen=True)
class _Row:
    program: Program
    validation: Validation | None
    score: Score | None


# --- validating the request before any work ---------------------------------------------------------------------


def _check_options(options: ExportOptions) -> None:
    if options.format not in FORMATS:
        raise HarvestError(f"unknown export format {options.format!r}; choose one of: {', '.join(FORMATS)}")
    if options.licenses is not None and options.commercial_safe:
        raise HarvestError("use either --license or --commercial-safe, not both")
    if options.min_diversity is not None and not 0.0 <= options.min_diversity <= 1.0:
        raise HarvestError(f"--min-diversity must be between 0 and 1, got {options.min_diversity}")
    if options.shard_size < 1:
        raise HarvestError(f"--shard-size must be at least 1, got {options.shard_size}")
    if options.images_per_program < 0 or options.images_per_program > 64:
        raise HarvestError(f"--images-per-program must be between 0 and 64, got {options.images_per_program}")
    if not 8 <= options.image_size <= 2048:
        raise HarvestError(f"--size must be between 8 and 2048 pixels, got {options.image_size}")
    if options.limit is not None and options.limit < 1:
        raise HarvestError(f"--limit must be at least 1, got {options.limit}")


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
        raise HarvestError(f"unknown licence id {', '.join(map(repr, unknown))}; known ids: {listing}")
    return tuple(dict.fromkeys(resolved))


def resolve_out(options: ExportOptions, catalog_folder: Path) -> Path:
    out = Path(options.out) if options.out is not None else catalog_folder / DEFAULT_OUT_NAME
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise HarvestError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not options.overwrite:
        raise HarvestError(f"{out} exists and is not empty; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise HarvestError(f"folder {out.parent} for the export does not exist")
    return out


# --- selection --------------------------------------------------------------------------------------------------


def _load_rows(session) -> list[_Row]:
    rows = session.exec(
        select(Program, Validation, Score)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .join(Score, Score.program_id == Program.id, isouter=True)
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


# --- writing ----------------------------------------------------------------------------------------------------


def _metadata(row: _Row, source: ProgramSource, cluster: list[int]) -> SampleMetadata:
    program, validation, score = row.program, row.validation, row.score
    return SampleMetadata(
        key=program_key(program.source, program.id),
        id=program.id,
        source=program.source,
        source_id=program.source_id,
        url=program.url,
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
    )


def _clusters(session, ids: list[int]) -> dict[int, list[int]]:
    """For each exported id: itself, then the ids of programs that duplicate it (exactly or nearly)."""
    clusters = {pid: [pid] for pid in ids}
    for program in session.exec(
        select(Program).where((Program.duplicate_of.in_(ids)) | (Program.near_duplicate_of.in_(ids))).order_by(Program.id)
    ).all():
        head = program.duplicate_of if program.duplicate_of in clusters else program.near_duplicate_of
        if head in clusters and program.id not in clusters[head]:
            clusters[head].append(program.id)
    return clusters


def _png(frame) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = MEMBER_MTIME
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def _md(text: str) -> str:
    """Text from outside, safe inside a Markdown line: one line, Markdown and HTML characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split())) or "untitled"


def _md_url(url: str) -> str | None:
    url = url.strip()
    if not re.match(r"^https?://[^\s<>()]+$", url):
        return None
    return url


def attribution_markdown(samples: list[SampleMetadata]) -> str:
    lines = [
        "# Attribution",
        "",
        f"This dataset holds {len(samples)} programs by their authors, each under its own licence, grouped below.",
        "",
    ]
    by_license: dict[str, list[SampleMetadata]] = {}
    for sample in samples:
        by_license.setdefault(sample.license, []).append(sample)
    for license_id in sorted(by_license):
        info = KNOWN_LICENSES.get(license_id)
        name = f" ({info.name})" if info else ""
        group = sorted(by_license[license_id], key=lambda s: s.id)
        lines += [f"## {_md(license_id)}{name}: {len(group)} programs", ""]
        for sample in group:
            url = _md_url(sample.url)
            title = f"[{_md(sample.title)}]({url})" if url else _md(sample.title)
            lines.append(f"- {title} by {_md(sample.author or 'unknown author')} ({sample.source}, `{sample.key}`)")
        lines.append("")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def export_catalog(
    catalog,
    options: ExportOptions,
    progress: Callable[[str, int, int], None] | None = None,
    score_missing: Callable[[list[int]], int] | None = None,
    refresh_dedup: Callable[[], object] | None = None,
) -> ExportSummary:
    """Select, score what lacks a score (via `score_missing`, which returns how many it scored), and write.

    Near-duplicate marks come from the last `harvest dedup`; when the catalog has changed since (or dedup never
    ran), `refresh_dedup` is called first to run it again, unless duplicates are kept anyway.

    `progress(stage, done, total)` is told about scoring and writing. Raises HarvestError for every user mistake
    before anything is written, and for an empty selection (nothing is written then)."""
    from harvester import __version__

    _check_options(options)
    out = resolve_out(options, catalog.folder)
    with catalog.session() as session:
        catalog_licenses = set(session.exec(select(Program.license).distinct()).all())
    licenses = resolve_licenses(options.licenses, catalog_licenses) if options.licenses is not None else None

    deduplicated = False
    if refresh_dedup is not None and not options.keep_duplicates:
        if not marks_are_current(catalog):
            refresh_dedup()
            deduplicated = True
    with catalog.session() as session:
        rows, steps = select_rows(_load_rows(session), options, licenses)
    scored = 0
    from corpus.scoring import METHOD as SCORE_METHOD

    missing = [r.program.id for r in rows if r.score is None or r.score.method != SCORE_METHOD]
    if missing and score_missing is not None:
        scored = score_missing(missing)
        wanted = {r.program.id for r in rows}
        with catalog.session() as session:
            rows = [r for r in _load_rows(session) if r.program.id in wanted]
    rows = finish_selection(rows, steps, options)
    if not rows:
        raise HarvestError(
            "no program matches the selection (" + ", ".join(f"{s.name}: -{s.removed}" for s in steps[1:] if s.removed)
            + "); nothing was written"
        )

    ids = [r.program.id for r in rows]
    with catalog.session() as session:
        sources = load_program_sources(session, ids)
        clusters = _clusters(session, ids)
    samples = {r.program.id: _metadata(r, sources[r.program.id], clusters[r.program.id]) for r in rows}

    frames_by_id: dict[int, list] = {}
    if options.images_per_program:
        frames_by_id = _render_images(sources, options, progress)
        failed = [pid for pid in ids if pid not in frames_by_id]
        if failed:
            rows = _step(steps, "render failed during export", rows, [r for r in rows if r.program.id in frames_by_id])
            ids = [r.program.id for r in rows]
            if not rows:
                raise HarvestError("every selected program failed to render its images; nothing was written")

    summary = ExportSummary(out=out, exported=len(ids), shards=0, steps=steps, scored=scored, deduplicated=deduplicated)
    summary.selected_ids_sha256 = hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest_lines: list[str] = []
        if options.format == "webdataset":
            (staging / SHARDS_DIR).mkdir()
        for start in range(0, len(ids), options.shard_size):
            chunk = ids[start : start + options.shard_size]
            shard = shard_name(start // options.shard_size)
            tar = tarfile.open(staging / SHARDS_DIR / shard, "w", format=tarfile.PAX_FORMAT) if options.format == "webdataset" else None
            try:
                for pid in chunk:
                    sample = samples[pid]
                    images = [_png(f) for f in frames_by_id.get(pid, [])]
                    sample.images = [f"f{i}.png" for i in range(len(images))]
                    code = joined_code(sources[pid])
                    if tar is not None:
                        _add_member(tar, f"{sample.key}.frag", code.encode("utf-8", "surrogatepass"))
                        _add_member(tar, f"{sample.key}.json", json.dumps(sample.to_json(), ensure_ascii=False, sort_keys=True).encode())
                        for i, png in enumerate(images):
                            _add_member(tar, f"{sample.key}.f{i}.png", png)
                        manifest_lines.append(json.dumps({**sample.to_json(), "shard": shard}, ensure_ascii=False, sort_keys=True))
                    else:
                        if images:
                            (staging / "images").mkdir(exist_ok=True)
                            for i, png in enumerate(images):
                                (staging / "images" / f"{sample.key}.f{i}.png").write_bytes(png)
                        manifest_lines.append(json.dumps({**sample.to_json(), "code": code}, ensure_ascii=False, sort_keys=True))
                    summary.images += len(images)
                    if progress:
                        progress("write", len(manifest_lines), len(ids))
            finally:
                if tar is not None:
                    tar.close()
            if tar is not None:
                summary.shards += 1
        _write_text(staging / MANIFEST_NAME, "\n".join(manifest_lines) + "\n")
        _write_text(staging / ATTRIBUTION_NAME, attribution_markdown([samples[pid] for pid in ids]))
        info = {
            "harvest_version": __version__,
            "format_version": FORMAT_VERSION,
            "scoring_method": SCORE_METHOD,
            "dedup_method": DEDUP_METHOD,
            # False when near duplicates were exported unchecked (no refresh asked for, and marks stale).
            "near_duplicate_marks_current": marks_are_current(catalog),
            "catalog": str(catalog.path),
            "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                           if k != "shader_cache_dir"} | {"out": str(out)},
            "licenses_resolved": list(licenses) if licenses is not None else None,
            "steps": [asdict(s) for s in steps],
            "exported": len(ids),
            "shards": summary.shards,
            "images": summary.images,
            "selected_ids_sha256": summary.selected_ids_sha256,
        }
        _write_text(staging / EXPORT_INFO_NAME, json.dumps(info, indent=2, sort_keys=True) + "\n")
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an existing (empty, or --overwrite) `out` goes only once we are done."""
    os.chmod(staging, 0o755)
    if out.exists():
        retired = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, retired)
        os.replace(staging, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, out)


def _render_images(
    sources: dict[int, ProgramSource], options: ExportOptions, progress: Callable[[str, int, int], None] | None
) -> dict[int, list]:
    from corpus.scoring import render_frames
    from renderer.frames import frame_specs

    size = options.image_size
    frames: dict[int, list] = {}
    done = 0

    def specs(program_id: int):
        return frame_specs(f"export:{options.seed}:{program_id}", options.images_per_program, size, size)

    for result in render_frames(sources, specs, size, options.executor, shader_cache_dir=options.shader_cache_dir):
        done += 1
        if result.verdict == Verdict.OK and result.frames:
            frames[result.key] = result.frames
        if progress:
            progress("render", done, len(sources))
    return frames
