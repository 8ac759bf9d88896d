"""Live data drawn ahead in atlas draws, compiled ahead by a helper, and on chosen EGL devices: the images never
change, only how they are drawn."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpus.export_format import MANIFEST_NAME  # noqa: E402
from pretrain.data import COMPILE_AHEAD_SWAPS, LiveDataConfig, ProgramPool, draw_batch, gl_backend  # noqa: E402
from pretrain.render_devices import rank_render_devices  # noqa: E402
from renderer.compile_ahead import CompileAhead  # noqa: E402
from renderer.devices import EglDevice, egl_devices  # noqa: E402
from renderer.errors import RenderError  # noqa: E402
from renderer.jobs import FrameSpec, ProgramSource  # noqa: E402
from tests.cli import harvest  # noqa: E402
from tests.counting_program import COUNTER  # noqa: E402
from tests.fake_clock import fake_time_in_live_data  # noqa: E402
from tests.fakes.live_backends import FakeBackend, costs_by_name  # noqa: E402

RINGS = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    vec2 p = (fragCoord - 0.5 * iResolution.xy) / iResolution.y;
    float ring = sin(length(p - iMouse.xy / iResolution.xy) * %(rings).1f - iTime * %(speed).1f);
    colour = vec4(0.5 + 0.5 * ring * vec3(%(r).2f, %(g).2f, 1.0 - %(r).2f), 1.0);
}
"""


def ring_programs(count: int) -> list[ProgramSource]:
    rng = np.random.default_rng(11)
    return [ProgramSource("shadertoy", RINGS % dict(rings=4 + 3 * i, speed=rng.uniform(0.5, 2.0),
                                                     r=rng.uniform(0, 1), g=rng.uniform(0, 1)))
            for i in range(count)]


SOURCES = [*ring_programs(6), COUNTER]  # the simulation keeps its per-step path beside the atlas draws
CONFIG = LiveDataConfig(size=24, batch_size=12, pool_size=4, swap_every=4, mixup=3, seed=7, simulation_stride=2,
                        simulation_run_frames=(5, 20), max_frame_s=30.0, max_compile_s=120.0)


def _stream(config: LiveDataConfig, batches: int):
    """The stream's first batches, and its pool and backend (closed) to look at."""
    backend = gl_backend(config)
    pool = ProgramPool(SOURCES, config, (config.seed, 0, 0), backend)
    try:
        drawn = [draw_batch(pool, b * config.batch_size, config.batch_size, config) for b in range(batches)]
    finally:
        pool.close()
        backend.close()
    return drawn, pool, backend


def test_atlas_draws_give_the_same_batches_bit_for_bit():
    with_atlas, pool, _ = _stream(CONFIG, 3)
    without, plain_pool, _ = _stream(replace(CONFIG, atlas=False), 3)
    for a, b in zip(with_atlas, without):
        assert np.array_equal(a.images, b.images)
        assert np.array_equal(a.label_index, b.label_index) and np.array_equal(a.label_weight, b.label_weight)
    labels = {int(p) for batch in with_atlas for p in batch.label_index.flatten()}
    assert 6 in labels and len(labels) >= 5  # the simulation and most single-pass programs were drawn
    single_pass_draws = sum(int(p) != 6 for batch in with_atlas for p in batch.label_index.flatten())
    assert 0 < pool.atlas_draws < single_pass_draws and plain_pool.atlas_draws == 0
    assert len({image.tobytes() for batch in with_atlas for image in batch.images}) == 36


def test_compile_ahead_gives_the_same_batches_and_compiles_what_enters_next():
    config = replace(CONFIG, compile_ahead=True)
    ahead, _, backend = _stream(config, 2)
    plain, _, _ = _stream(CONFIG, 2)
    for a, b in zip(ahead, plain):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.label_index, b.label_index)
    assert backend.ahead is not None and backend.ahead.prepared + backend.ahead.abandoned >= 1


def test_the_helper_answers_what_it_was_asked_to_compile():
    config = replace(CONFIG, compile_ahead=True)
    backend = gl_backend(config)
    try:
        backend.prepare(SOURCES[:3])
        deadline = time.monotonic() + 120  # generous: the helper shares two busy cores
        while backend.ahead.prepared < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            backend.ahead.advance()
        assert (backend.ahead.prepared, backend.ahead.abandoned) == (3, 0)
        backend.prepare(SOURCES[:3])  # each program is asked for once
        assert backend.ahead.prepared == 3 and not backend.ahead._in_flight
    finally:
        backend.close()


class _Helper:
    """A helper process that answers only when told to."""

    def __init__(self) -> None:
        self.asked: list[ProgramSource] = []
        self.answers = 0

    def prepare(self, source: ProgramSource) -> None:
        self.asked.append(source)

    def prepared(self) -> int:
        answers, self.answers = self.answers, 0
        return answers

    def kill(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_helper_is_never_asked_for_a_program_the_stream_went_past():
    a, b, c, d = ring_programs(4)
    helper = _Helper()
    ahead = CompileAhead(helper, deadline_s=1e9, outstanding=1)  # type: ignore[arg-type]
    ahead.want([a, b, c])
    ahead.want([c, d])  # b entered the pool meanwhile: the stream compiled it itself
    helper.answers = 1
    ahead.advance()
    helper.answers = 1
    ahead.advance()
    assert helper.asked == [a, c, d] and ahead.prepared == 2


class _PreparingBackend(FakeBackend):
    def __init__(self, clock) -> None:
        super().__init__(clock, costs_by_name({}, 0.01))
        self.requests: list[list[ProgramSource]] = []

    def prepare(self, sources) -> None:
        self.requests.append(list(sources))


def test_the_helper_hears_of_the_programs_of_the_next_swaps_not_only_the_next_batch(monkeypatch):
    clock = fake_time_in_live_data(monkeypatch)
    sources = ring_programs(40)
    config = LiveDataConfig(size=4, batch_size=4, pool_size=2, swap_every=2)
    backend = _PreparingBackend(clock)
    pool = ProgramPool(sources, config, (0, 0, 0), backend)
    draw_batch(pool, 0, 4, config)
    draw_batch(pool, 4, 4, config)
    coming = pool.entering(8, COMPILE_AHEAD_SWAPS * config.swap_every)
    assert len(coming) == COMPILE_AHEAD_SWAPS and backend.requests[1] == [sources[p] for p in coming]


def test_entering_names_the_programs_each_swap_brings():
    config = LiveDataConfig(pool_size=3, swap_every=4)
    pool = ProgramPool(ring_programs(8), config, (0, 0, 0), backend=None)  # type: ignore[arg-type]
    # Swap j (at image 4j) puts its program into slot (j - 1) mod 3.
    brought = [pool.programs_at(n)[(n // 4 - 1) % 3] for n in range(4, 40, 4)]
    assert pool.entering(1, 39) == brought and len(brought) == 9
    assert pool.entering(4, 1) == [pool.programs_at(4)[0]] and pool.entering(5, 3) == []


def test_an_atlas_draw_gets_one_frame_budget_per_frame(caplog, monkeypatch):
    clock = fake_time_in_live_data(monkeypatch)
    sources = [ProgramSource("shadertoy", f"// {name}") for name in ("quick", "slow")]
    config = LiveDataConfig(size=4, pool_size=2, max_frame_s=0.1)
    pool = ProgramPool(sources, config, (0, 0, 0), backend=FakeBackend(clock, costs_by_name({"slow": 0.2}, 0.05)))
    pool.live_at(0)
    frames = [FrameSpec(time=t) for t in (1.0, 2.0, 3.0, 4.0)]
    assert pool.draw_ahead(0, frames, 4)  # 4 x 0.05 s against 4 x 0.1 s
    assert not pool.draw_ahead(1, frames, 4)  # 4 x 0.2 s: the program leaves, as a slow frame would make it
    assert pool.too_slow == {1} and pool.live_at(1) == [0]
    assert caplog.records[-1].getMessage().endswith("left a render pool: an atlas draw of 4 frames took over 0.4 s")
    before = clock.now
    assert int(pool.render(0, frames[2], 4)[0, 0, 0]) == 30 and clock.now == before  # handed out, not drawn


GPU0, GPU1 = EglDevice(0, False, ()), EglDevice(1, False, ())
CPU_DEVICE = EglDevice(2, True, ("EGL_MESA_device_software",))


def test_each_rank_renders_on_its_own_device():
    found = [GPU0, GPU1, CPU_DEVICE]
    assert [rank_render_devices("auto", r, 3, found) for r in range(3)] == [(0,), (1,), (0,)]
    assert rank_render_devices("auto", 0, 1, [CPU_DEVICE]) == ()  # no GPU: EGL's default
    assert rank_render_devices("cpu", 1, 2, found) == (2,)
    assert [rank_render_devices("0,1,2", r, 2, found) for r in range(2)] == [(0, 2), (1,)]
    assert [rank_render_devices("1", r, 2, found) for r in range(2)] == [(1,), (1,)]
    with pytest.raises(RenderError, match="render device 3 does not exist"):
        rank_render_devices("3", 0, 1, found)
    config = LiveDataConfig(render_devices=(0, 2))
    assert [config.for_stream(w).device_index for w in range(3)] == [0, 2, 0]
    assert LiveDataConfig().for_stream(1).device_index is None


def _export(folder) -> str:
    folder.mkdir()
    lines = [{"key": f"local-{i:08d}", "id": i, "source": "local", "source_id": f"r{i}", "url": "", "title": f"r{i}",
              "author": "tests", "license": "CC0-1.0", "license_origin": "declared", "dialect": "shadertoy",
              "channels": [None] * 4, "buffer_passes": 0, "verdict": "ok", "reason": "", "diversity": None,
              "colorfulness": None, "fill": None, "likes": None, "published_at": None, "code": source.image}
             for i, source in enumerate(ring_programs(3), start=1)]
    (folder / MANIFEST_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(folder)


def test_pretrain_names_its_renderer_and_refuses_a_missing_device(tmp_path):
    data = _export(tmp_path / "export")
    common = ("pretrain", "--data", data, "--width", "8", "--size", "16", "--batch-size", "4", "--steps", "1",
              "--workers", "0", "--device", "cpu", "--method", "supervised")
    missing = str(len(egl_devices()))
    refused = harvest(*common, "--out", str(tmp_path / "missing"), "--render-device", missing)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: render device {missing} does not exist: EGL reports {missing} device(s), numbered from 0"]
    assert not (tmp_path / "missing").exists()
    done = harvest(*common, "--out", str(tmp_path / "run"), "--render-device", "cpu", "--no-atlas")
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("rendering on: ")]
    assert ("llvmpipe" in line or "softpipe" in line) and line.endswith("]")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["atlas"] is False
