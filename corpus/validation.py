"""The validate stage: render every program that has no current verdict, judge it, store the verdict.

The renderer never sees the catalog: this module turns rows into RenderJobs, hands them to an
executor (whichever kind), and is the only writer of the results, in small transactions, so an
interrupted run keeps everything finished and a rerun picks up the rest.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from corpus.db import Catalog
from corpus.models import Program, Validation, utcnow
from corpus.render_source import load_program_sources
from corpus.scoring import SCORE_FRAMES, SCORE_SEED_KEY, SCORE_SIZE, ProgramScores, score_frames, score_row
from renderer import RENDERER_VERSION
from renderer.executors import Executor
from renderer.frames import frame_specs
from renderer.jobs import FrameSpec, RenderJob, RenderResult

JOB_CHUNK = 64  # programs whose code is loaded at once while jobs are handed out
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class ValidateOptions:
    size: int = 128
    frames: int = 4
    timeout_s: float = 10.0
    limit: int | None = None
    revalidate: bool = False
    source: str | None = None
    seed: int = 0  # part of every program's frame seed: same seed, same frames
    batch_size: int = 32  # results per transaction
    batch_seconds: float = 2.0  # ...or sooner, so a slow run still saves often
    # Also draw the scoring frames of every `ok` program while it is compiled, and store its scores (only at the
    # scoring size, 128 px). Off by default: on llvmpipe the 8 extra frames halve validation's speed and save
    # only ~10 % over a separate `harvest score`, which finds the shader cache warm (bench/validate.py).
    score: bool = False


@dataclass
class ValidateReport:
    selected: int = 0
    done: int = 0
    counts: collections.Counter = field(default_factory=collections.Counter)
    seconds: float = 0.0
    interrupted: bool = False
    scored: int = 0  # `ok` programs scored on the way

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def shader_cache_dir(catalog: Catalog) -> Path:
    """Mesa's shader cache lives beside the catalog, so reruns over the same programs compile fast."""
    return catalog.folder / ".harvest-cache" / "mesa"


def select_pending(session: Session, options: ValidateOptions) -> list[int]:
    """Ids of the programs to (re)validate, oldest first."""
    query = select(Program.id).order_by(Program.id)
    if options.source:
        query = query.where(Program.source == options.source)
    if not options.revalidate:
        current = select(Validation.program_id).where(Validation.renderer_version == RENDERER_VERSION)
        query = query.where(Program.id.not_in(current))
    if options.limit is not None:
        query = query.limit(options.limit)
    return list(session.exec(query).all())


def frame_seed_key(source: str, source_id: str, seed: int) -> str:
    return f"{source}:{source_id}:{seed}"


def _score_frames(options: ValidateOptions) -> tuple[FrameSpec, ...]:
    if not options.score or options.size != SCORE_SIZE:
        return ()
    return frame_specs(SCORE_SEED_KEY, SCORE_FRAMES, SCORE_SIZE, SCORE_SIZE)


def build_jobs(catalog: Catalog, program_ids: list[int], options: ValidateOptions) -> Iterator[RenderJob]:
    """RenderJobs for `program_ids`, loading code a chunk at a time (the executor pulls lazily)."""
    extra_frames = _score_frames(options)
    for start in range(0, len(program_ids), JOB_CHUNK):
        chunk = program_ids[start : start + JOB_CHUNK]
        with Session(catalog.engine) as session:
            sources = load_program_sources(session, chunk)
            names = {
                row[0]: (row[1], row[2])
                for row in session.exec(select(Program.id, Program.source, Program.source_id).where(Program.id.in_(chunk)))
            }
        for program_id in chunk:
            if program_id not in sources:
                continue  # deleted since it was selected
            source, source_id = names[program_id]
            yield RenderJob(
                key=program_id,
                program=sources[program_id],
                frames=frame_specs(frame_seed_key(source, source_id, options.seed), options.frames, options.size, options.size),
                width=options.size,
                height=options.size,
                timeout_s=options.timeout_s,
                extra_frames=extra_frames,
            )


def validation_row(result: RenderResult, options: ValidateOptions) -> Validation:
    return Validation(
        program_id=result.key,
        verdict=str(result.verdict),
        reason=result.reason[:MAX_REASON_CHARS],
        error_line=result.error_line,
        compile_ms=result.compile_ms,
        render_ms=list(result.render_ms),
        animated=result.animated,
        frame_means=list(result.frame_means),
        frame_stds=list(result.frame_stds),
        thumbnail_png=result.thumbnail_png,
        size=options.size,
        frames=options.frames,
        renderer_version=RENDERER_VERSION,
        validated_at=utcnow(),
    )


def take_scores(result: RenderResult) -> ProgramScores | None:
    """The scores of a result that carries the scoring frames; the frames are dropped, they are big."""
    frames, result.extra_frames = result.extra_frames, None
    return score_frames(frames, seed=result.key) if frames else None


def save_results(catalog: Catalog, results: list[RenderResult], options: ValidateOptions,
                 scores: dict[int, ProgramScores] | None = None) -> None:
    """One transaction: each program's verdict (and scores, when drawn) replaces its previous one."""
    with catalog.session() as session:
        for result in results:
            session.merge(validation_row(result, options))
        for program_id, values in (scores or {}).items():
            session.merge(score_row(program_id, values))


def validate(
    catalog: Catalog,
    executor: Executor,
    options: ValidateOptions,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[RenderResult], None] | None = None,
) -> ValidateReport:
    """Validate the pending programs on `executor`. Ctrl-C returns early with `interrupted` set,
    after saving every result received so far."""
    report = ValidateReport()
    with catalog.session() as session:
        program_ids = select_pending(session, options)
    report.selected = len(program_ids)
    if on_start:
        on_start(report.selected)
    started = time.monotonic()
    batch: list[RenderResult] = []
    scores: dict[int, ProgramScores] = {}
    last_save = time.monotonic()
    try:
        for result in executor.run(build_jobs(catalog, program_ids, options)):
            batch.append(result)
            program_scores = take_scores(result)
            if program_scores is not None:
                scores[result.key] = program_scores
                report.scored += 1
            report.done += 1
            report.counts[str(result.verdict)] += 1
            if on_result:
                on_result(result)
            if len(batch) >= options.batch_size or time.monotonic() - last_save >= options.batch_seconds:
                save_results(catalog, batch, options, scores)
                batch, scores, last_save = [], {}, time.monotonic()
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if batch:
            save_results(catalog, batch, options, scores)
        report.seconds = time.monotonic() - started
    return report

