"""One runner for every stage that renders catalog programs (validate, score, dedup frames, export images).

A stage says which programs it wants, what job each becomes, what a result means and how to write
what it gathered; the runner owns everything else, once: pulling jobs lazily, saving in batches of
N results or T seconds (also while every worker is busy with a slow program), Ctrl-C (what is done
is saved, the report says `interrupted`), progress events for whoever draws them, and the summary.
Only the process that runs this writes the catalog; render workers never see it. A stage that writes
elsewhere (export's shards) says `writes_catalog = False`, and a stage that must bound what it holds says when
no job may start (`may_start`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlmodel import Session, select

from corpus.db import Catalog
from corpus.models import Program
from corpus.render_source import load_program_sources
from renderer.jobs import ProgramSource, RenderJob, RenderResult

SOURCE_CHUNK = 64  # programs whose code is in memory at once while jobs are handed out


class Stage(Protocol):
    """What one stage does with the programs it renders."""

    name: str

    def select(self, session: Session) -> list[int]:
        """Catalog ids of the programs to render, in order."""
        ...

    def job(self, program: CatalogProgram) -> RenderJob:
        ...

    def consume(self, result: RenderResult) -> str:
        """Keep what `result` means for the next save; returns the outcome it is counted under."""
        ...

    def save(self, session: Session | None) -> None:
        """Write everything consumed since the last save (one transaction), then forget it. The session is
        None for a stage whose `writes_catalog` is False."""
        ...


class Renders(Protocol):
    def run(self, jobs, on_wait: Callable[[], None] | None = None) -> Iterator[RenderResult]:
        """One result per job; `jobs` may yield None: no job may start now, ask again after the next result."""
        ...


@dataclass(frozen=True)
class CatalogProgram:
    """A program as a stage turns it into a job: its id, its name at its source and its code."""

    id: int
    source: str
    source_id: str
    code: ProgramSource


@dataclass(frozen=True)
class BatchPolicy:
    results: int = 32
    seconds: float = 2.0


@dataclass(frozen=True)
class StageEvent:
    stage: str
    kind: Literal["start", "result", "saved", "end"]
    total: int
    done: int
    counts: dict[str, int]
    outcome: str = ""


@dataclass
class StageReport:
    stage: str
    selected: int = 0
    done: int = 0
    counts: collections.Counter = field(default_factory=collections.Counter)
    seconds: float = 0.0
    interrupted: bool = False
    saves: int = 0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def catalog_programs(catalog: Catalog, program_ids: list[int]) -> Iterator[CatalogProgram]:
    """The programs of `program_ids` in order, loading their code a chunk at a time."""
    for start in range(0, len(program_ids), SOURCE_CHUNK):
        chunk = program_ids[start : start + SOURCE_CHUNK]
        with Session(catalog.engine) as session:
            sources = load_program_sources(session, chunk)
            names = {
                row[0]: (row[1], row[2])
                for row in session.exec(select(Program.id, Program.source, Program.source_id).where(Program.id.in_(chunk)))
            }
        for program_id in chunk:
            if program_id in sources:  # else deleted since it was selected
                source, source_id = names[program_id]
                yield CatalogProgram(id=program_id, source=source, source_id=source_id, code=sources[program_id])


class _Batch:
    """Results consumed but not yet saved, and when the last save happened."""

    def __init__(self, catalog: Catalog, stage: Stage, policy: BatchPolicy, report: StageReport,
                 emit: Callable[[str, str], None]) -> None:
        self.catalog, self.stage, self.policy, self.report, self.emit = catalog, stage, policy, report, emit
        self.unsaved = 0
        self.last_save = time.monotonic()

    def add(self) -> None:
        self.unsaved += 1
        if self.unsaved >= self.policy.results:
            self.save()
        else:
            self.save_if_due()

    def save_if_due(self) -> None:
        if self.unsaved and time.monotonic() - self.last_save >= self.policy.seconds:
            self.save()

    def save(self) -> None:
        if self.unsaved:
            if getattr(self.stage, "writes_catalog", True):
                with self.catalog.session() as session:
                    self.stage.save(session)
            else:
                self.stage.save(None)
            self.report.saves += 1
            self.unsaved = 0
            self.emit("saved", "")
        self.last_save = time.monotonic()


def _jobs(catalog: Catalog, stage: Stage, program_ids: list[int]) -> Iterator[RenderJob | None]:
    may_start: Callable[[], bool] | None = getattr(stage, "may_start", None)
    for program in catalog_programs(catalog, program_ids):
        while may_start is not None and not may_start():
            yield None
        yield stage.job(program)


def run_stage(catalog: Catalog, executor: Renders, stage: Stage, policy: BatchPolicy = BatchPolicy(),
              on_event: Callable[[StageEvent], None] | None = None,
              program_ids: list[int] | None = None) -> StageReport:
    """Render the programs `stage` selects (or `program_ids`) on `executor` and save what it makes of them."""
    report = StageReport(stage=stage.name)

    def emit(kind: str, outcome: str) -> None:
        if on_event is not None:
            on_event(StageEvent(stage.name, kind, report.selected, report.done, dict(report.counts), outcome))

    if program_ids is None:
        with Session(catalog.engine) as session:
            program_ids = stage.select(session)
    report.selected = len(program_ids)
    if hasattr(executor, "fit_to"):
        executor.fit_to(len(program_ids))
    emit("start", "")
    batch = _Batch(catalog, stage, policy, report, emit)
    started = time.monotonic()
    try:
        for result in executor.run(_jobs(catalog, stage, program_ids), on_wait=batch.save_if_due):
            outcome = stage.consume(result)
            report.done += 1
            report.counts[outcome] += 1
            emit("result", outcome)
            batch.add()
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        batch.save()
        report.seconds = time.monotonic() - started
    emit("end", "")
    return report
