"""Live pretraining data: every image is rendered on the fly by a pool of compiled programs; nothing is stored.

Each stream (one per DataLoader worker per rank) owns its GL context and a pool of `pool_size` compiled programs.
It visits the programs in its share of an endless sequence of seeded permutations (a rank's W streams take every
W-th item each, so together they cover W times what one would): the pool starts with the first `pool_size` programs
of that share, and after every `swap_every` images one slot (round-robin) is replaced by
the next program of the sequence, so every program is visited and no compile stalls a whole batch.

Pool size trades diversity for speed: an image (or a MixUp of K) is drawn from the programs in the pool, so a
batch holds at most `pool_size` distinct programs; compiling costs ~200 ms on llvmpipe against a few ms per frame,
so a swap every `swap_every` images adds about 200 ms / swap_every to each image. A bigger pool gives more
distinct programs per batch (what contrastive negatives and classification both want), a smaller `swap_every`
cycles through the corpus faster; both cost compile time and GL memory.

A slot holding a simulation (Buffer A-D, or a GLSL Sandbox backbuffer) keeps it running and draws frames along it,
restarting it at seeded intervals (pretrain/simulations.py); the steps between two draws count against the frame
budget of the draw that needs them.

Single-pass frames are drawn ahead, a batch at a time (pretrain/batch_plan.py): every frame the batch's images will
ask of one program is drawn in one atlas draw (renderer/atlas.py), and the images take them in their own order, so
they are the same bit for bit as with `atlas=False`. An atlas draw of N frames gets N frame budgets.

Programs about to enter the pool are compiled ahead by a helper process (renderer/compile_ahead.py) when
`compile_ahead` is on, so the stream's own compile of them is a hit in Mesa's shader cache. The helper competes
with drawing for the cores: it pays where a core would otherwise be idle (see the README's live-data benchmark).

Everything random comes from seeds derived from (run seed, rank, worker, image number): the pool's content at
image n is computed, not remembered, so a run restarted at step s renders exactly the batches it would have.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pretrain.batch_plan import draw_ahead, plan_image
from pretrain.simulations import SimulationClock, SimulationDraw
from renderer.atlas import DEFAULT_TILES
from renderer.compile_ahead import CompileAhead
from renderer.drawing_process import DrawingProcess, DrawTimeout, ProgramsInContext
from renderer.jobs import FrameSpec, ProgramSource

log = logging.getLogger(__name__)

# Labels: 0..N-1 in the order of the program list; seed-stream tags keep unrelated draws independent.
_SEQUENCE_TAG = 1
# The helper is asked for the programs of this many swaps ahead (at least the next batch's): a heavy program's
# cold compile takes seconds on llvmpipe, more than a batch of drawing, and with one batch of notice the stream
# met it uncompiled (bench/pipeline.py).
COMPILE_AHEAD_SWAPS = 8


@dataclass(frozen=True)
class LiveDataConfig:
    size: int = 64
    batch_size: int = 64
    pool_size: int = 32
    swap_every: int = 32
    mixup: int = 1  # K programs blended per image; 1 = no MixUp
    dirichlet_alpha: float = 1.0
    time_range: tuple[float, float] = (0.1, 10.0)
    seed: int = 0
    # A program slower than this leaves the stream's pool for the rest of the run: one heavy ray marcher
    # would otherwise hold up every batch it is drawn into. The drawing process is killed at these budgets,
    # so even a frame that would take minutes costs only this. Timing depends on the machine, so a run
    # repeats exactly only when no program crosses these budgets.
    max_frame_s: float = 1.0
    max_compile_s: float = 20.0
    # Simulations (see pretrain/simulations.py): frames simulated per draw on average, and the seeded range of
    # frames after which a simulation starts again from frame 0.
    simulation_stride: int = 4
    simulation_run_frames: tuple[int, int] = (1, 600)
    # Drawing: single-pass frames of a batch in atlas draws of up to `atlas_tiles` (same images either way),
    # the next programs compiled ahead by a helper process, and the EGL devices this rank's streams take turns
    # over (() = EGL's default device; a backend draws on the first).
    atlas: bool = True
    atlas_tiles: int = DEFAULT_TILES
    compile_ahead: bool = False
    render_devices: tuple[int, ...] = ()

    @property
    def device_index(self) -> int | None:
        return self.render_devices[0] if self.render_devices else None

    def for_stream(self, stream: int) -> LiveDataConfig:
        """The config a stream's backend gets: on the stream's own device of the rank's."""
        if not self.render_devices:
            return self
        return replace(self, render_devices=(self.render_devices[stream % len(self.render_devices)],))


class LiveBatch(NamedTuple):
    images: torch.Tensor  # (B, 3, H, W) uint8 for the trainer; workers send (B, H, W, 3) arrays
    label_index: torch.Tensor  # (B, K) int64: program indices
    label_weight: torch.Tensor  # (B, K) float32: MixUp weights, rows sum to 1


class Drawable(Protocol):
    def render(self, frame: FrameSpec, width: int, height: int, budget_s: float) -> np.ndarray:
        """The frame; a backend that can stop a draw raises TooSlow past `budget_s`."""
        ...

    def render_many(self, frames: Sequence[FrameSpec], width: int, height: int, budget_s: float) -> list[np.ndarray]:
        """Each frame as `render` draws it (in one atlas draw where the backend can), one budget for all."""
        ...

    def release(self) -> None: ...


class Simulated(Drawable, Protocol):
    """A drawable simulation (renderer/passes.py): it draws frame n after simulating up to it."""

    def steps_to(self, frame: FrameSpec, width: int, height: int) -> int:
        """The simulation steps drawing `frame` takes from where the simulation is."""
        ...

    def restart(self) -> None:
        """Simulate from frame 0 again for the next frame drawn."""
        ...


class TooSlow(Exception):
    """A compile or a frame passed its time budget (raised by backends that can stop it early)."""


class RenderBackend(Protocol):
    """Turns program sources into drawables; None when a program does not compile. A backend may also have
    `prepare(sources)`: compile these soon-needed programs in the background (see renderer/compile_ahead.py)."""

    def compile(self, source: ProgramSource) -> Drawable | None: ...

    def close(self) -> None: ...


class _InProcessDrawable:
    def __init__(self, programs: ProgramsInContext, program) -> None:
        self.programs = programs
        self.program = program

    def render(self, frame: FrameSpec, width: int, height: int, budget_s: float) -> np.ndarray:
        return self.programs.draw(self.program, (frame,), width, height)[0]  # nothing here can stop it

    def render_many(self, frames: Sequence[FrameSpec], width: int, height: int, budget_s: float) -> list[np.ndarray]:
        return self.programs.draw(self.program, frames, width, height)

    def steps_to(self, frame: FrameSpec, width: int, height: int) -> int:
        return self.program.steps_to(frame, width, height)

    def restart(self) -> None:
        self.program.restart()

    def release(self) -> None:
        self.program.release()


class InProcessGLBackend:
    """Draws in the calling process: no isolation, so a program stuck in one GL call holds the caller.
    Kept to measure what isolation costs (bench/pipeline.py)."""

    def __init__(self, config: LiveDataConfig | None = None) -> None:
        self.config = config or LiveDataConfig()
        self._programs: ProgramsInContext | None = None

    def compile(self, source: ProgramSource) -> Drawable | None:
        if self._programs is None:
            from renderer.context import create_context

            tiles = self.config.atlas_tiles if self.config.atlas else 0
            self._programs = ProgramsInContext(create_context(self.config.device_index), tiles)
        program = self._programs.build(source)
        return None if program is None else _InProcessDrawable(self._programs, program)

    def close(self) -> None:
        if self._programs is not None:
            self._programs.ctx.release()
            self._programs = None


class _IsolatedDrawable:
    def __init__(self, process: DrawingProcess, key: int, deadline_s: float) -> None:
        self.process = process
        self.key = key
        self.deadline_s = deadline_s

    def render(self, frame: FrameSpec, width: int, height: int, budget_s: float) -> np.ndarray:
        try:
            return self.process.render(self.key, frame, width, height, budget_s)
        except DrawTimeout as exc:
            raise TooSlow(str(exc)) from None

    def render_many(self, frames: Sequence[FrameSpec], width: int, height: int, budget_s: float) -> list[np.ndarray]:
        try:
            return self.process.render_many(self.key, frames, width, height, budget_s)
        except DrawTimeout as exc:
            raise TooSlow(str(exc)) from None

    def steps_to(self, frame: FrameSpec, width: int, height: int) -> int:
        try:
            return self.process.steps_to(self.key, frame, width, height, self.deadline_s)
        except DrawTimeout as exc:
            raise TooSlow(str(exc)) from None

    def restart(self) -> None:
        self.process.restart(self.key)

    def release(self) -> None:
        self.process.release(self.key)


class IsolatedGLBackend:
    """Draws in a child process that is killed when a compile or a frame passes its budget, so one
    program stuck in a GL call costs `max_frame_s`, a restart and some recompiles, never the run."""

    def __init__(self, config: LiveDataConfig) -> None:
        self.config = config
        tiles = config.atlas_tiles if config.atlas else 0
        self.process = DrawingProcess(device_index=config.device_index, atlas_tiles=tiles)
        self._next_key = 0
        self.ahead: CompileAhead | None = None
        if config.compile_ahead:
            helper = DrawingProcess(device_index=config.device_index, atlas_tiles=tiles)
            self.ahead = CompileAhead(helper, config.max_compile_s)

    def prepare(self, sources: Sequence[ProgramSource]) -> None:
        if self.ahead is not None:
            self.ahead.want(sources)

    def compile(self, source: ProgramSource) -> Drawable | None:
        self._next_key += 1
        try:
            compiled = self.process.compile(self._next_key, source, self.config.max_compile_s)
        except DrawTimeout as exc:
            raise TooSlow(str(exc)) from None
        return _IsolatedDrawable(self.process, self._next_key, self.config.max_frame_s) if compiled else None

    def close(self) -> None:
        self.process.close()
        if self.ahead is not None:
            self.ahead.close()


def gl_backend(config: LiveDataConfig) -> RenderBackend:
    return IsolatedGLBackend(config)


class ProgramPool:
    """The compiled programs of one stream at a given image number, derived from the stream's seed."""

    def __init__(
        self, sources: Sequence[ProgramSource], config: LiveDataConfig, stream_seed: tuple[int, ...],
        backend: RenderBackend, streams: int = 1,
    ) -> None:
        self.sources = sources
        self.config = config
        self.stream_seed = stream_seed  # (run seed, rank, stream)
        self.backend = backend
        self.slots = min(config.pool_size, len(sources))
        # The rank's `streams` streams share one sequence, stream s taking items s, s + streams, ...: together
        # they visit `streams` times the programs one stream does before any program comes back.
        self.streams = max(1, streams)
        self._offset = stream_seed[-1] % self.streams
        self._sequence_seed = (*stream_seed[:-1], 0)
        self._cycles_kept = 4 + self.streams * (self.slots + 1) // max(1, len(sources))
        self._permutations: dict[int, np.ndarray] = {}
        self._slot_programs: list[int | None] = [None] * self.slots
        self._swaps_done: int | None = None
        self._compiled: dict[int, Drawable | None] = {}
        self._too_slow: set[int] = set()
        self.compiles = 0
        self.simulation_steps = 0  # steps simulated for the frames drawn (a measure of what simulations cost)
        self.clock = SimulationClock(stream_seed, config.simulation_stride, config.mixup, self.slots,
                                     config.simulation_run_frames, config.size)
        self._entered: dict[int, int] = {}  # program -> the image at which it entered its slot
        self._runs: dict[int, tuple[int, int]] = {}  # simulation run each compiled simulation last drew
        self._ahead: set[int] = set()  # compiled for a later image than the pool's, kept until they enter
        self._drawn_ahead: dict[tuple[int, FrameSpec], list[np.ndarray]] = {}  # frames drawn in atlas draws
        self.atlas_draws = 0

    def _sequence_item(self, position: int) -> int:
        count = len(self.sources)
        shared = position * self.streams + self._offset
        cycle = shared // count
        if cycle not in self._permutations:
            if len(self._permutations) >= self._cycles_kept:  # a pool spans a few cycles at most
                self._permutations.pop(min(self._permutations))
            rng = np.random.default_rng([*self._sequence_seed, _SEQUENCE_TAG, cycle])
            self._permutations[cycle] = rng.permutation(count)
        return int(self._permutations[cycle][shared % count])

    def occupants_at(self, image_number: int) -> list[tuple[int, int]]:
        """(program index, image at which it entered) of each slot at `image_number`: slot s starts with sequence
        item s, and swap j (j = 1, 2, ...) puts sequence item slots + j - 1 into slot (j - 1) mod slots."""
        if self.slots == len(self.sources):
            return [(program, 0) for program in range(self.slots)]  # the whole corpus fits: nothing to rotate
        swap_every = max(1, self.config.swap_every)
        swaps = image_number // swap_every
        held = []
        for slot in range(self.slots):
            if swaps <= slot:
                held.append((self._sequence_item(slot), 0))
            else:
                last_swap = slot + 1 + self.slots * ((swaps - 1 - slot) // self.slots)
                held.append((self._sequence_item(self.slots + last_swap - 1), last_swap * swap_every))
        return held

    def programs_at(self, image_number: int) -> list[int]:
        """Program index held by each slot at `image_number` (see `occupants_at`)."""
        return [program for program, _ in self.occupants_at(image_number)]

    def live_at(self, image_number: int) -> list[int]:
        """Bring the pool to `image_number` (compiling what entered, releasing what left); the live programs."""
        swaps = image_number // max(1, self.config.swap_every)
        if swaps == self._swaps_done:
            wanted = self._slot_programs
        else:
            occupants = self.occupants_at(image_number)
            wanted = [program for program, _ in occupants]
            # A program held by two slots at once (where two permutations meet) runs on its earlier tenure's clock.
            self._entered = {}
            for program, entered in occupants:
                self._entered[program] = min(entered, self._entered.get(program, entered))
            self.clock.keep_only(set(self._entered.items()))
        self._swaps_done = swaps
        if wanted != self._slot_programs:
            self._ahead -= set(wanted)
            for program in set(self._compiled) - set(wanted) - self._ahead:
                drawable = self._compiled.pop(program)
                if drawable is not None:
                    drawable.release()
            for program in wanted:
                if program not in self._compiled:
                    self._compiled[program] = self._compile(program)
            self._slot_programs = wanted
        live = [p for p in wanted if self._compiled.get(p) is not None]
        if not live:
            raise RuntimeError(
                f"none of the {len(wanted)} programs in the render pool compiled (image {image_number}); "
                "is the export validated?"
            )
        return live

    def preview_live(self, image_number: int) -> list[int]:
        """The live programs at a later `image_number`, as `live_at` will find them, compiling what enters by
        then (kept until it does) and releasing nothing."""
        wanted = self.programs_at(image_number)
        for program in wanted:
            if program not in self._compiled:
                self._compiled[program] = self._compile(program)
                self._ahead.add(program)
        return [p for p in wanted if self._compiled.get(p) is not None]

    def entering(self, first_image: int, count: int) -> list[int]:
        """The programs that enter the pool at images first_image..first_image + count - 1, in order."""
        if self.slots == len(self.sources):
            return []
        swap_every = max(1, self.config.swap_every)
        first_swap = max(1, -(-first_image // swap_every))
        last_swap = (first_image + count - 1) // swap_every
        return [self._sequence_item(self.slots + j - 1) for j in range(first_swap, last_swap + 1)]

    def compile_ahead(self, first_image: int, count: int) -> None:
        """Ask the backend to compile in the background what enters at images first_image.. (and, before the pool
        is filled, its first programs from the last one back, to meet the stream's own compiles halfway)."""
        prepare = getattr(self.backend, "prepare", None)
        if prepare is None:
            return
        upcoming = self.entering(first_image, count)
        if not self._compiled:
            upcoming = [*reversed(self.programs_at(first_image)), *upcoming]
        fresh = [p for p in dict.fromkeys(upcoming) if p not in self._compiled and p not in self._too_slow]
        prepare([self.sources[p] for p in fresh])

    def forget_drawn_ahead(self) -> None:
        self._drawn_ahead.clear()

    def draw_ahead(self, program: int, frames: Sequence[FrameSpec], size: int) -> bool:
        """Draw `frames` of a single-pass program in one draw, to be handed out by `render`; False when the
        program has (just) left the pool. The draw's budget is one `max_frame_s` per frame."""
        drawable = self._compiled.get(program)
        if drawable is None:
            return False
        if not hasattr(drawable, "render_many"):
            return True  # a backend that draws one frame at a time: `render` draws them when asked
        budget = self.config.max_frame_s * len(frames)
        started = time.perf_counter()
        try:
            drawn = drawable.render_many(frames, size, size, budget)
        except TooSlow:
            drawn = None
        except Exception:  # as in `render`: a program that fails to draw leaves the pool
            self._discard(program)
            return False
        if drawn is None or time.perf_counter() - started > budget:
            self._discard(program)
            self._drop_slow(program, f"an atlas draw of {len(frames)} frames took over {budget:g} s")
            return False
        self.atlas_draws += 1
        for frame, pixels in zip(frames, drawn):
            self._drawn_ahead.setdefault((program, frame), []).append(pixels)
        return True

    def _drop_slow(self, program: int, what: str) -> None:
        self._too_slow.add(program)
        log.warning("program with label %d (see programs.json) left a render pool: %s", program, what)

    @property
    def too_slow(self) -> frozenset[int]:
        """Programs dropped from this pool for exceeding `max_compile_s` or `max_frame_s`."""
        return frozenset(self._too_slow)

    def _compile(self, program: int) -> Drawable | None:
        self._runs.pop(program, None)
        if program in self._too_slow:
            return None
        started = time.perf_counter()
        self.compiles += 1
        try:
            drawable = self.backend.compile(self.sources[program])
        except TooSlow:
            self._drop_slow(program, f"compiling took over {self.config.max_compile_s:g} s")
            return None
        if drawable is not None and time.perf_counter() - started > self.config.max_compile_s:
            drawable.release()
            self._drop_slow(program, f"compiling took over {self.config.max_compile_s:g} s")
            return None
        return drawable

    def simulated(self, program: int) -> bool:
        return self.sources[program].multipass

    def simulation_draw(self, program: int, image_number: int) -> SimulationDraw:
        """The frame of a simulation that `program` (held by the pool at `image_number`) draws there."""
        return self.clock.draw(program, self._entered.get(program, 0), image_number)

    def _frames_needed(self, program: int, frame: FrameSpec, size: int, run: tuple[int, int] | None) -> int:
        """Frames a draw costs: 1, plus for a simulation the steps from where it is (from 0 in a new run)."""
        if run is None:
            return 1
        simulation: Simulated = self._compiled[program]  # type: ignore[assignment]
        if self._runs.get(program, run) != run:
            simulation.restart()
        self._runs[program] = run
        steps = simulation.steps_to(frame, size, size)
        self.simulation_steps += steps
        return 1 + steps

    def _discard(self, program: int) -> None:
        drawable = self._compiled.get(program)
        if drawable is not None:
            drawable.release()
        self._compiled[program] = None

    def render(self, program: int, frame: FrameSpec, size: int, run: tuple[int, int] | None = None) -> np.ndarray | None:
        """The frame, or None when the program has (just) left the pool. `run` names a simulation's run (see
        pretrain/simulations.py); each simulation step counts as a frame against the budget, `max_frame_s`."""
        drawable = self._compiled.get(program)
        if drawable is None:
            return None
        ready = self._drawn_ahead.get((program, frame)) if run is None else None
        if ready:
            return ready.pop()
        started, frames = time.perf_counter(), 1
        try:
            frames = self._frames_needed(program, frame, size, run)
            budget = self.config.max_frame_s * frames
            pixels = drawable.render(frame, size, size, budget)
        except TooSlow:
            self._discard(program)
            self._drop_slow(program, self._over_budget(frames))
            return None
        except Exception:  # a program that compiles but fails to draw leaves the pool instead of ending the run
            self._discard(program)
            return None
        if time.perf_counter() - started > budget:
            self._discard(program)
            self._drop_slow(program, self._over_budget(frames))
        return pixels

    def _over_budget(self, frames: int) -> str:
        if frames == 1:
            return f"a frame took over {self.config.max_frame_s:g} s"
        return f"a frame and its {frames - 1} simulation steps took over {self.config.max_frame_s * frames:g} s"

    def close(self) -> None:
        for drawable in self._compiled.values():
            if drawable is not None:
                drawable.release()
        self._compiled.clear()
        self._ahead.clear()
        self._drawn_ahead.clear()
        self._runs.clear()
        self._slot_programs = [None] * self.slots


def _draw_one(pool: ProgramPool, program: int, frame: FrameSpec, image_number: int,
              config: LiveDataConfig) -> np.ndarray | None:
    """A single-pass program at its planned time and mouse, a simulation at its frame of this image."""
    if not pool.simulated(program):
        return pool.render(program, frame, config.size)
    draw = pool.simulation_draw(program, image_number)
    return pool.render(program, draw.frame, config.size, run=draw.run)


def draw_image(pool: ProgramPool, image_number: int, config: LiveDataConfig) -> tuple[np.ndarray, list[int], list[float]]:
    """One training image: K programs of the pool, each at a random time and mouse (a simulation: at its frame),
    blended with Dirichlet weights (pretrain/batch_plan.py plans them)."""
    size = config.size
    for attempt in range(8):
        live = pool.live_at(image_number)
        plan = plan_image(pool.stream_seed, image_number, attempt, live, config)
        blend = np.zeros((size, size, 3), dtype=np.float32)
        complete = True
        for program, weight, frame in zip(plan.programs, plan.weights, plan.frames):
            pixels = _draw_one(pool, program, frame, image_number, config)
            if pixels is None:
                complete = False  # the program just left the pool; draw again with the next attempt's seed
                break
            blend += float(weight) * pixels[..., :3].astype(np.float32)
        if complete:
            image = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
            return image, list(plan.programs), list(plan.weights)
    raise RuntimeError(f"programs kept failing to draw at image {image_number}")


def draw_batch(pool: ProgramPool, first_image: int, count: int, config: LiveDataConfig) -> LiveBatch:
    """Images first_image.. of a stream as plain arrays (NHWC), its single-pass frames drawn ahead in atlas draws
    when `config.atlas`, and what enters the pool next compiled ahead when the backend can."""
    pool.compile_ahead(first_image + count, max(count, COMPILE_AHEAD_SWAPS * max(1, config.swap_every)))
    if config.atlas:
        draw_ahead(pool, first_image, count, config)
    images, indices, weights = [], [], []
    for image_number in range(first_image, first_image + count):
        image, chosen, blend = draw_image(pool, image_number, config)
        images.append(image)
        indices.append(chosen)
        weights.append(blend)
    pool.forget_drawn_ahead()
    return LiveBatch(images=np.stack(images), label_index=np.asarray(indices, dtype=np.int64),
                     label_weight=np.asarray(weights, dtype=np.float32))


class LiveRenders(IterableDataset):
    """Endless batches rendered live. Use with `DataLoader(batch_size=None)` (see `live_loader`): each worker
    produces whole batches and the loader takes them round-robin. Global batch b belongs to stream b mod W (W
    workers) as that stream's batch b // W; on a run resumed at `start_batch`, worker w takes up the stream of
    batch start_batch + w, so the batches come out exactly as in an uninterrupted run with the same W."""

    def __init__(
        self,
        sources: Sequence[ProgramSource],
        config: LiveDataConfig,
        rank: int = 0,
        start_batch: int = 0,
        backend_factory: Callable[[LiveDataConfig], RenderBackend] = gl_backend,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("no programs to render")
        self.sources = list(sources)
        self.config = config
        self.rank = rank
        self.start_batch = start_batch
        self.backend_factory = backend_factory

    def __iter__(self) -> Iterator[LiveBatch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per worker: workers are the parallelism
        first_batch = self.start_batch + worker
        stream = first_batch % workers
        backend = self.backend_factory(self.config.for_stream(stream))
        pool = ProgramPool(self.sources, self.config, (self.config.seed, self.rank, stream), backend, streams=workers)
        local_batch = first_batch // workers
        batch_size = self.config.batch_size
        try:
            while True:
                # Plain arrays (NHWC); LiveLoader turns them into tensors on the trainer's side.
                yield draw_batch(pool, local_batch * batch_size, batch_size, self.config)
                local_batch += 1
        finally:
            pool.close()
            backend.close()


def _keep_as_is(batch: LiveBatch) -> LiveBatch:
    return batch


def _start_worker(_worker_id: int) -> None:
    from renderer.executors import die_with_parent

    die_with_parent()  # a worker stuck in a GL call would otherwise outlive a killed trainer


def batch_as_tensors(batch: LiveBatch, pin_memory: bool) -> LiveBatch:
    """(B, 3, H, W) uint8 images in channels-last memory: a view of the NHWC array, so the trainer copies no pixel
    (at 224 px and batch 256 a reorder would be 38 MB of CPU work per step), and the model wants channels-last."""
    images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    tensors = LiveBatch(images, torch.from_numpy(batch.label_index), torch.from_numpy(batch.label_weight))
    return LiveBatch(*(t.pin_memory() for t in tensors)) if pin_memory else tensors


class LiveLoader:
    """Batches of tensors from a DataLoader whose workers send plain arrays.

    Arrays travel pickled through the worker's pipe. torch's own tensor sharing makes the trainer connect
    back to the worker for a file descriptor, and a worker stuck inside a long GL call (which holds the GIL)
    never answers: the trainer then hung past the loader's timeout instead of stopping with an error.
    """

    def __init__(self, loader: DataLoader, pin_memory: bool) -> None:
        self.loader = loader
        self.pin_memory = pin_memory

    def __iter__(self) -> Iterator[LiveBatch]:
        for batch in self.loader:
            yield batch_as_tensors(batch, self.pin_memory)


def live_loader(dataset: LiveRenders, workers: int, pin_memory: bool = False, timeout_s: float = 300.0) -> LiveLoader:
    """A loader whose workers are spawned, so each creates its own GL context in a fresh process."""
    if workers <= 0:
        return LiveLoader(DataLoader(dataset, batch_size=None, num_workers=0, collate_fn=_keep_as_is), pin_memory)
    loader = DataLoader(
        dataset,
        batch_size=None,
        collate_fn=_keep_as_is,
        num_workers=workers,
        multiprocessing_context="spawn",
        worker_init_fn=_start_worker,
        persistent_workers=False,
        prefetch_factor=2,
        timeout=timeout_s,  # a program that hangs the rasteriser ends the run with an error instead of forever
    )
    return LiveLoader(loader, pin_memory)
