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
from corpus.models import ImageSignatureRow, Program, Validation, utcnow
from corpus.signatures import SIGNATURE_SET, signature_frame_set, signature_row
from corpus.stage_runner import BatchPolicy, CatalogProgram, Renders, StageEvent, run_stage
from corpus.scoring import SCORE_SET, ProgramScores, score_frame_set, score_frames, score_row
from renderer import RENDERER_VERSION
from renderer.frames import frame_specs
from renderer.passes import checkpoint_frames
from renderer.jobs import FrameSet, RenderJob, RenderResult

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
    # While each `ok` program is compiled, also draw the frames that scoring (8 at 128 px) and near-duplicate
    # search (2 at 64 px) need, and store its scores and image signature: `score` and `dedup` then compile only
    # programs that lack them, so curation compiles each program once (bench/scale.py).
    score: bool = True
    signatures: bool = True


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


def extra_frame_sets(options: ValidateOptions, simulation: bool = False) -> tuple[FrameSet, ...]:
    """The scoring and signature frames, exactly as `harvest score` and `harvest dedup` would draw them. For a
    simulation, scoring (128 px) comes first: at the default size it continues the run the verdict drew."""
    sets: list[FrameSet] = []
    if options.score:
        sets.append(score_frame_set(simulation))
    if options.signatures:
        sets.append(signature_frame_set(simulation))
    return tuple(sets)


def validation_job(program: CatalogProgram, options: ValidateOptions) -> RenderJob:
    if program.code.multipass:
        return simulation_job(program, options)
    return RenderJob(
        key=program.id,
        program=program.code,
        frames=frame_specs(frame_seed_key(program.source, program.source_id, options.seed), options.frames,
                           options.size, options.size),
        width=options.size,
        height=options.size,
        timeout_s=options.timeout_s,
        extras=extra_frame_sets(options),
    )


def simulation_job(program: CatalogProgram, options: ValidateOptions) -> RenderJob:
    """A multi-pass program is simulated from frame 0 and judged at checkpoints along the way (as many as
    fit in the timeout, at least the first); its scoring and signature frames follow along simulations too."""
    return RenderJob(
        key=program.id,
        program=program.code,
        frames=checkpoint_frames(options.frames),
        width=options.size,
        height=options.size,
        timeout_s=options.timeout_s,
        extras=extra_frame_sets(options, simulation=True),
        min_frames=1,
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
        frames=len(result.render_ms) or options.frames,  # a simulation may judge fewer frames than asked
        renderer_version=RENDERER_VERSION,
        validated_at=utcnow(),
        standins=None if result.standins is None else [standin.to_json() for standin in result.standins],
    )


def take_scores(result: RenderResult) -> ProgramScores | None:
    """The scores of a result that carries the scoring frames; the frames are dropped, they are big."""
    frames = result.extras.pop(SCORE_SET, None)
    return score_frames(frames, seed=result.key) if frames else None


def take_signature(result: RenderResult) -> ImageSignatureRow | None:
    frames = result.extras.pop(SIGNATURE_SET, None)
    return signature_row(result.key, frames) if frames else None


class ValidateStage:
    """Judge each pending program; with `score`, also keep the scores of its `ok` frames."""

    name = "validate"

    def __init__(self, options: ValidateOptions) -> None:
        self.options = options
        self.verdicts: list[Validation] = []
        self.scores: dict[int, ProgramScores] = {}
        self.signatures: list[ImageSignatureRow] = []
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
        signature = take_signature(result)
        if signature is not None:
            self.signatures.append(signature)
        return str(result.verdict)

    def save(self, session: Session) -> None:
        """Each program's verdict (and scores, when drawn) replaces its previous one."""
        for row in self.verdicts:
            session.merge(row)
        for program_id, values in self.scores.items():
            session.merge(score_row(program_id, values))
        for signature in self.signatures:
            session.merge(signature)
        self.verdicts, self.scores, self.signatures = [], {}, []


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
