"""Multi-pass programs in live data: a slot keeps its simulation running, restarts it at seeded frames, and a
resumed stream draws what an uninterrupted one drew."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pretrain.data import (  # noqa: E402
    InProcessGLBackend,
    LiveBatch,
    LiveDataConfig,
    LiveRenders,
    ProgramPool,
    draw_image,
    live_loader,
)
from pretrain.simulations import SimulationClock  # noqa: E402
from renderer.jobs import BufferPass, FrameSpec, ProgramSource  # noqa: E402
from tests.counting_program import COUNTER  # noqa: E402
from tests.fake_clock import FakeClock, fake_time_in_live_data  # noqa: E402
from tests.fakes.live_backends import FakeBackend  # noqa: E402

STILL = ProgramSource("shadertoy", "void mainImage(out vec4 c, in vec2 f) { c = vec4(0.2, 0.4, 0.6, 1.0); }")
CONFIG = LiveDataConfig(size=8, batch_size=6, pool_size=2, swap_every=4, mixup=1, seed=5, simulation_stride=3,
                        simulation_run_frames=(10, 40), max_frame_s=30.0, max_compile_s=120.0)


def _count_and_frame(image: np.ndarray) -> tuple[int, int]:
    """The frames the buffer counted and the iFrame of the image pass, mod 256 (live images have no alpha)."""
    red, green, blue = (int(v) for v in image[0, 0, :3])
    return red + 256 * green, blue


def _batches(sources, config, count: int, start_batch: int = 0, backend_factory=None):
    if backend_factory is None:
        stream = iter(LiveRenders(sources, config, start_batch=start_batch))
    else:  # in a worker of its own: a second GL context here would leave the tests' context no longer current
        loader = live_loader(LiveRenders(sources, config, start_batch, backend_factory=backend_factory), 1)
        stream = (LiveBatch(b.images.permute(0, 2, 3, 1).numpy(), b.label_index.numpy(), b.label_weight.numpy())
                  for b in loader)
    return [next(stream) for _ in range(count)]


def test_a_simulation_is_drawn_along_runs_that_restart():
    batches = _batches([COUNTER, STILL], CONFIG, 5)
    schedule = ProgramPool([COUNTER, STILL], CONFIG, (CONFIG.seed, 0, 0), backend=None)  # type: ignore[arg-type]
    schedule.live_at = lambda n: [0, 1]  # type: ignore[method-assign]  # only the schedule: nothing compiled
    seen = []
    for b, batch in enumerate(batches):
        for j, (image, label) in enumerate(zip(batch.images, batch.label_index[:, 0])):
            if int(label) != 0:
                assert tuple(image[0, 0]) == (51, 102, 153)
                continue
            number = b * CONFIG.batch_size + j
            schedule.live_at(number)
            expected = schedule.simulation_draw(0, number)
            count, frame = _count_and_frame(image)
            # Every frame up to the one drawn was simulated once, in this run only.
            assert (count, frame) == (expected.frame.frame + 1, expected.frame.frame % 256)
            seen.append((expected.run, frame))
    runs = [run for run, _ in seen]
    assert len(set(runs)) >= 2, "the simulation never restarted"
    for (run, frame), (next_run, next_frame) in pairwise(seen):
        if next_run == run:
            assert next_frame >= frame  # frames go on within a run...
    assert any(next_frame < frame for (_, frame), (_, next_frame) in pairwise(seen))  # ...and start again
    assert max(frame for _, frame in seen) > 9  # frames further on than the first draws


def test_simulated_images_repeat_for_a_seed_and_on_resume():
    # Three programs for two slots: the simulation also leaves its slot and comes back, restarting there.
    sources = [COUNTER, STILL, ProgramSource("shadertoy", STILL.image.replace("0.2", "0.9"))]
    first = _batches(sources, CONFIG, 4)
    again = _batches(sources, CONFIG, 4, backend_factory=InProcessGLBackend)
    resumed = _batches(sources, CONFIG, 2, start_batch=2)  # a fresh simulation, caught up to its frame
    for a, b in zip(first, again):
        assert torch.equal(torch.as_tensor(a.images), torch.as_tensor(b.images))
    for a, b in zip(first[2:], resumed):
        assert torch.equal(torch.as_tensor(a.images), torch.as_tensor(b.images))
        assert torch.equal(torch.as_tensor(a.label_index), torch.as_tensor(b.label_index))
    assert any(int(label) == 0 for batch in first[2:] for label in batch.label_index[:, 0])
    other_seed = _batches(sources, LiveDataConfig(**{**CONFIG.__dict__, "seed": 6}), 4)
    assert any(not torch.equal(torch.as_tensor(a.images), torch.as_tensor(b.images)) for a, b in zip(first, other_seed))


def test_the_clock_restarts_within_its_range_and_is_a_function_of_the_image():
    clock = SimulationClock((1, 2, 3), stride=4, draws_per_image=1, slots=2, run_frames=(5, 9), size=16)
    draws = [clock.draw(0, 100, n) for n in range(100, 300)]
    frames = [d.frame.frame for d in draws]
    assert frames[0] == 0 and max(frames) <= 8
    lengths = np.diff([0] + clock._run_ends[(0, 100)]).tolist()
    assert all(5 <= length <= 9 for length in lengths) and len(set(lengths)) > 1
    for draw in draws:
        assert draw.frame.time == pytest.approx(draw.frame.frame / 60)
    # One mouse a run; a later tenure of the same program has runs of its own.
    by_run = {}
    for draw in draws:
        assert by_run.setdefault(draw.run, draw.frame.mouse) == draw.frame.mouse
    fresh = SimulationClock((1, 2, 3), stride=4, draws_per_image=1, slots=2, run_frames=(5, 9), size=16)
    assert fresh.draw(0, 100, 250) == clock.draw(0, 100, 250)
    assert clock.draw(0, 400, 400).run == (400, 0)


class _FakeSimulation:
    """Every step costs `step_s` on the fake clock; it counts what it was asked to simulate."""

    def __init__(self, clock: FakeClock, step_s: float) -> None:
        self.clock, self.step_s = clock, step_s
        self.next_frame = 0

    def steps_to(self, frame: FrameSpec, width: int, height: int) -> int:
        return frame.frame + 1 - self.next_frame if frame.frame + 1 >= self.next_frame else frame.frame + 1

    def restart(self) -> None:
        self.next_frame = 0

    def render(self, frame: FrameSpec, width: int, height: int, budget_s: float) -> np.ndarray:
        self.clock.now += self.step_s * self.steps_to(frame, width, height)
        self.next_frame = frame.frame + 1
        return np.zeros((height, width, 3), np.uint8)

    def release(self) -> None:
        pass


def _simulations(clock: FakeClock, source) -> _FakeSimulation:
    return _FakeSimulation(clock, 0.3 if "slow" in source.image else 0.02)


def test_simulation_steps_count_against_the_frame_budget(caplog, monkeypatch):
    clock = fake_time_in_live_data(monkeypatch)
    fast, slow = (ProgramSource("shadertoy", f"// {name}", buffers=(BufferPass("buffer_a", "// a"),), buffer_passes=1)
                  for name in ("fast", "slow"))
    config = LiveDataConfig(size=4, pool_size=2, mixup=1, simulation_stride=20, max_frame_s=0.1)
    pool = ProgramPool([fast, slow], config, (0, 0, 0), backend=FakeBackend(clock, _simulations))
    for number in range(60):
        draw_image(pool, number, config)
    # The fast one simulates about 20 steps a draw, 0.4 s in all: far over one frame's 0.1 s, within 0.1 s a step.
    assert pool.too_slow == {1}
    [message] = [r.getMessage() for r in caplog.records]
    assert "left a render pool: a frame and its" in message and "simulation steps took over" in message
