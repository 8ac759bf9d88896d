"""The validate stage: render every program that has no current verdict, judge it, store the verdict.

The renderer never sees the catalog: this module turns rows into RenderJobs, hands them to an
executor (whichever kind), and is the only writer of the results, in small transactions, so an
interrupted run keeps everything finished and a rerun picks up the rest.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from corpus.db import Catalog
from corpus.models import Program, Validation, utcnow
from corpus.stage_runner import BatchPolicy, CatalogProgram, Renders, StageEvent, run_stage
from corpus.scoring import SCORE_FRAMES, SCORE_SEED_KEY, SCORE_SIZE, ProgramScores, score_frames, score_row
from renderer import RENDERER_VERSION
from renderer.frames import frame_specs
from renderer.jobs import FrameSpec, RenderJob, RenderResult

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


def validation_job(program: CatalogProgram, options: ValidateOptions) -> RenderJob:
    return RenderJob(
        key=program.id,
        program=program.code,
        frames=frame_specs(frame_seed_key(program.source, program.source_id, options.seed), options.frames,
                           options.size, options.size),
        width=options.size,
        height=options.size,
        timeout_s=options.timeout_s,
        extra_frames=_score_frames(options),
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


class ValidateStage:
    """Judge each pending program; with `score`, also keep the scores of its `ok` frames."""

    name = "validate"

    def __init__(self, options: ValidateOptions) -> None:
        self.options = options
        self.verdicts: list[Validation] = []
        self.scores: dict[int, ProgramScores] = {}
        self.scored = 0

    def select(self, session: Session) -> list[int]:
        return select_pending(session, self.options)

    def job(self, program: CatalogProgram) -> RenderJob:
        return validation_job(program, self.options)

    def consume(self, result: RenderResult) -> str:
        self.verdicts.append(validation_row(result, self.options))
        program_scores = take_scores(result)
        if program_scores is not None:
            self.scores[result.key] = program_scores
            self.scored += 1
        return str(result.verdict)

    def save(self, session: Session) -> None:
        """Each program's verdict (and scores, when drawn) replaces its previous one."""
        for row in self.verdicts:
            session.merge(row)
        for program_id, values in self.scores.items():
            session.merge(score_row(program_id, values))
        self.verdicts, self.scores = [], {}


def validate(
    catalog: Catalog,
    executor: Renders,
    options: ValidateOptions,
    on_event: Callable[[StageEvent], None] | None = None,
) -> ValidateReport:
    """Validate the pending programs on `executor`. Ctrl-C returns early with `interrupted` set,
    after saving every result received so far."""
    stage = ValidateStage(options)
    policy = BatchPolicy(results=options.batch_size, seconds=options.batch_seconds)
    run = run_stage(catalog, executor, stage, policy, on_event)
    return ValidateReport(selected=run.selected, done=run.done, counts=run.counts, seconds=run.seconds,
                          interrupted=run.interrupted, scored=stage.scored)
