"""Export's image pass as a stage of the one runner (corpus/stage_runner.py): each program is drawn once, its frames
are kept as PNG bytes, and shards are written in export order as soon as every program they hold is in.

Results come back in any order. A program whose images fail is left out and its place goes to the programs that
follow, so the shards are what they would be had it never been selected, whatever order the results arrive in.
The stage holds the images of at most one shard plus the programs in flight: while results that came early would
take it past that, it lets no new job start (`may_start`). An export without images goes through the same stage on
`CodeOnly`, which draws nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from corpus.export_format import SampleMetadata, joined_code
from corpus.export_shards import ExportItem, png_bytes
from corpus.stage_runner import CatalogProgram
from renderer.frames import frame_specs, seeded_random
from renderer.jobs import FrameSpec, ProgramSource, RenderJob, RenderResult, Verdict
from renderer.passes import simulation_frame

RENDER_TIMEOUT_S = 10.0
# A simulation's frames are only defined after the frames before them, so its export images are frames of one run
# from frame 0, seeded like the rest and in increasing order. They stop at 2 s (frame 119): at 256 px a step of a
# real multi-pass program costs about 50 ms on llvmpipe, so a later frame would not fit in RENDER_TIMEOUT_S.
SIMULATION_LAST_EXPORT_FRAME = 119
KEPT = "exported"  # the outcome a program is counted under when it goes into the export

Describe = Callable[[int, ProgramSource], SampleMetadata]
WriteBatch = Callable[[list[ExportItem]], None]


@dataclass(frozen=True)
class ExportFrames:
    """What each program draws for the export: `count` frames of `size` pixels at times drawn from `seed`."""

    count: int
    size: int
    seed: int
    timeout_s: float = RENDER_TIMEOUT_S


class InOrder:
    """Items that arrive in any order, released in the order of `ids` `size` at a time.

    An id resolved with None (failed, or never started) gives its place to the ids after it. `held` counts the
    items kept and not yet released; `peak` the most it ever was.
    """

    def __init__(self, ids: list[int], size: int) -> None:
        self.ids, self.size = ids, size
        self.cursor = 0  # ids before it are in `ready` or dropped
        self.early: dict[int, ExportItem | None] = {}
        self.ready: list[ExportItem] = []
        self.held = self.peak = 0

    def resolve(self, program_id: int, item: ExportItem | None) -> None:
        self.early[program_id] = item
        if item is not None:
            self.held += 1
            self.peak = max(self.peak, self.held)
        while self.cursor < len(self.ids) and self.ids[self.cursor] in self.early:
            arrived = self.early.pop(self.ids[self.cursor])
            self.cursor += 1
            if arrived is not None:
                self.ready.append(arrived)

    def full_batches(self) -> Iterator[list[ExportItem]]:
        while len(self.ready) >= self.size:
            yield self._release(self.size)

    def rest(self) -> list[ExportItem]:
        """What is left once every id is resolved (the last batch, shorter than `size`)."""
        assert self.cursor == len(self.ids), "ids still unresolved"
        return self._release(len(self.ready))

    def _release(self, count: int) -> list[ExportItem]:
        batch, self.ready = self.ready[:count], self.ready[count:]
        self.held -= len(batch)
        return batch


class ExportImagesStage:
    """Draws the export frames of each selected program and hands complete batches to `write`, in order.

    With `frames` None nothing is drawn (run it on CodeOnly): every program goes in with its code alone.
    `lookahead` is how many programs may be in flight (the executor's workers); the stage keeps no more than
    `shard_size + lookahead` programs' images at once.
    """

    name = "export"
    writes_catalog = False

    def __init__(self, ids: list[int], describe: Describe, write: WriteBatch, shard_size: int,
                 frames: ExportFrames | None, lookahead: int = 1) -> None:
        self.ids, self.describe, self.write, self.frames = ids, describe, write, frames
        self.order = InOrder(ids, shard_size)
        self.capacity = shard_size + max(1, lookahead)
        self.in_flight: dict[int, ExportItem] = {}  # started, result not in yet: metadata and code
        self.started = 0  # how far into `ids` jobs were made

    def select(self, session) -> list[int]:
        return list(self.ids)

    def may_start(self) -> bool:
        return not self.in_flight or self.order.held + len(self.in_flight) < self.capacity

    def job(self, program: CatalogProgram) -> RenderJob:
        self._skip_to(program.id)
        self.in_flight[program.id] = ExportItem(self.describe(program.id, program.code), joined_code(program.code))
        if self.frames is None:
            return RenderJob(key=program.id, program=program.code, frames=())
        frames, size = self.frames, self.frames.size
        specs = export_frame_specs(f"export:{frames.seed}:{program.id}", frames.count, size, program.code.multipass)
        return RenderJob(key=program.id, program=program.code, frames=specs, width=size, height=size,
                         timeout_s=frames.timeout_s, keep_frames=True)

    def consume(self, result: RenderResult) -> str:
        item = self.in_flight.pop(result.key)
        if self.frames is not None and not (result.verdict == Verdict.OK and result.frames):
            self.order.resolve(result.key, None)
            return str(result.verdict)
        # Encoded on arrival: a PNG is far smaller than the frame it replaces.
        item.pngs = [png_bytes(frame) for frame in result.frames or ()]
        item.sample.images = [f"f{i}.png" for i in range(len(item.pngs))]
        self.order.resolve(result.key, item)
        return KEPT

    def save(self, session=None) -> None:
        """Write every batch whose programs are all in; the catalog is not touched."""
        for batch in self.order.full_batches():
            self.write(batch)

    def finish(self) -> None:
        """After a run that was not interrupted: write what is left."""
        self._skip_to(None)
        self.save()
        rest = self.order.rest()
        if rest:
            self.write(rest)

    def _skip_to(self, program_id: int | None) -> None:
        """Ids before `program_id` (all that are left, for None) that got no job: deleted since they were selected."""
        while self.started < len(self.ids) and self.ids[self.started] != program_id:
            self.order.resolve(self.ids[self.started], None)
            self.started += 1
        self.started += 1


class CodeOnly:
    """Stands in for a render pool when an export has no images: every job is ok at once, with no frames."""

    def run(self, jobs: Iterable[RenderJob | None], on_wait: Callable[[], None] | None = None) -> Iterator[RenderResult]:
        for job in jobs:
            if job is not None:
                yield RenderResult(key=job.key, verdict=Verdict.OK)


def export_frame_specs(seed_key: str, count: int, size: int, simulation: bool) -> tuple[FrameSpec, ...]:
    """The frames a program draws for the export: seeded times for a single pass, frames of one run for a simulation."""
    if not simulation:
        return frame_specs(seed_key, count, size, size)
    run = range(SIMULATION_LAST_EXPORT_FRAME + 1)
    numbers = seeded_random(seed_key).sample(run, min(count, len(run)))
    return tuple(simulation_frame(n) for n in sorted(numbers))
