"""Live pretraining: data from a tiny export rendered by the real renderer, every objective, resume, DDP, CLI."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from corpus.errors import CorpusError  # noqa: E402
from corpus.export_format import MANIFEST_NAME, read_export  # noqa: E402
from harvester.cli import app  # noqa: E402
from pretrain.data import (  # noqa: E402
    LiveBatch,
    LiveDataConfig,
    LiveRenders,
    ProgramPool,
    batch_as_tensors,
    draw_image,
    gl_backend,
    live_loader,
)
from pretrain.distributed import DistEnv  # noqa: E402
from pretrain.errors import PretrainError  # noqa: E402
from pretrain.train import (  # noqa: E402
    PretrainConfig,
    build_objective,
    machine_defaults,
    make_views,
    run_pretraining,
)
from renderer.jobs import FrameSpec, ProgramSource  # noqa: E402
from tests.cli import harvest  # noqa: E402
from tests.fake_clock import fake_time_in_live_data  # noqa: E402
from tests.fakes.live_backends import FakeBackend, costs_by_name  # noqa: E402
from tests.slow_programs import ENDLESS_FRAME  # noqa: E402

PATTERN = """
void mainImage(out vec4 color, in vec2 coord) {
    vec2 uv = coord / iResolution.xy;
    float wave = sin(uv.x * %(fx).1f + iTime * %(speed).1f) * cos(uv.y * %(fy).1f - iMouse.x * 0.01);
    color = vec4(0.5 + 0.5 * wave * vec3(%(r).1f, %(g).1f, %(b).1f), 1.0);
}
"""


def _program_code(index: int) -> str:
    rng = np.random.default_rng(index)
    return PATTERN % dict(fx=2 + 5 * index, fy=3 + 3 * index, speed=rng.uniform(0.5, 3),
                          r=rng.uniform(-1, 1), g=rng.uniform(-1, 1), b=rng.uniform(-1, 1))


def write_tiny_export(folder: Path, count: int = 6, broken: int = 0) -> Path:
    """An export in the manifest-only (`--format jsonl`) layout: one line per program with its code inline."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(count + broken):
        code = _program_code(i) if i < count else "void mainImage(out vec4 c, in vec2 p) { c = nonsense; }"
        lines.append({
            "key": f"local-{i + 1:08d}", "id": i + 1, "source": "local", "source_id": f"p{i}", "url": "",
            "title": f"pattern {i}", "author": "tests", "license": "CC0-1.0", "license_origin": "declared",
            "dialect": "shadertoy", "channels": [None, None, None, None], "buffer_passes": 0, "verdict": "ok",
            "reason": "", "diversity": None, "colorfulness": None, "fill": None, "likes": None,
            "published_at": None, "code": code,
        })
    (folder / MANIFEST_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> Path:
    return write_tiny_export(tmp_path_factory.mktemp("export") / "export")


@pytest.fixture(scope="module")
def programs(tiny_export):
    return read_export(tiny_export)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and spinning threads crawl on a shared, busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def small_config(method: str, **changes) -> PretrainConfig:
    base = dict(method=method, width=8, size=32, batch_size=16, steps=12, workers=0, mixup=1, pool_size=6,
                swap_every=8, queue_size=32, checkpoint_every=4, log_every=1, warmup_steps=0, seed=3,
                lr=0.4 if method == "supervised" else 0.1)
    base.update(changes)
    return PretrainConfig(**base)


def test_dataset_yields_varied_labelled_images(programs):
    sources = [p.source for p in programs]
    config = LiveDataConfig(size=24, batch_size=12, pool_size=3, swap_every=4, mixup=3, seed=1)
    batches = [b for b, _ in zip(iter(live_loader(LiveRenders(sources, config), workers=1)), range(3))]
    first = batches[0]
    assert first.images.shape == (12, 3, 24, 24) and first.images.dtype == torch.uint8
    assert first.label_index.shape == (12, 3) and first.label_weight.shape == (12, 3)
    assert torch.allclose(first.label_weight.sum(dim=1), torch.ones(12), atol=1e-5)
    assert first.images.float().std() > 10  # not blank
    assert len({img.numpy().tobytes() for b in batches for img in b.images}) == 36  # every image differs
    labels = torch.cat([b.label_index.flatten() for b in batches])
    assert labels.min() >= 0 and labels.max() < len(sources)
    assert len(set(labels.tolist())) >= 4  # the pool rotated through more than its 3 slots
    # Same seeds, same images, whether rendered in a worker or in the trainer's own process.
    again = next(iter(live_loader(LiveRenders(sources, config), workers=0)))
    assert torch.equal(again.images, first.images) and torch.equal(again.label_index, first.label_index)


def test_pool_visits_every_program_and_skips_broken_ones(tmp_path):
    programs = read_export(write_tiny_export(tmp_path / "export", count=5, broken=1))
    config = LiveDataConfig(size=16, batch_size=4, pool_size=2, swap_every=2, mixup=1)
    pool = ProgramPool([p.source for p in programs], config, (0, 0, 0), backend=None)  # type: ignore[arg-type]
    assert {p for n in range(0, 40, 2) for p in pool.programs_at(n)} == set(range(6))
    batches = [b for b, _ in zip(iter(LiveRenders([p.source for p in programs], config)), range(12))]
    drawn = {int(i) for b in batches for i in b.label_index.flatten()}
    assert 5 not in drawn and len(drawn) >= 4  # the program that does not compile is never a label


def test_programs_over_the_time_budgets_leave_the_pool(caplog, monkeypatch):
    clock = fake_time_in_live_data(monkeypatch)
    sources = [ProgramSource("shadertoy", f"// {name}") for name in ("fast-a", "slow-draw", "slow-compile", "fast-b")]
    config = LiveDataConfig(size=8, pool_size=4, mixup=1, max_frame_s=0.1, max_compile_s=0.1)
    backend = FakeBackend(clock, costs_by_name({"slow-draw": 0.2}, 0.0),
                          compile_s=lambda source: 0.2 if "slow-compile" in source.image else 0.0)
    pool = ProgramPool(sources, config, (0, 0, 0), backend=backend)
    assert sorted(pool.live_at(0)) == [0, 1, 3]  # the slow compile is dropped at once
    frame = FrameSpec(time=1.0)
    assert pool.render(1, frame, 8) is not None  # the slow frame already drawn is still used...
    assert pool.render(1, frame, 8) is None  # ...but the program has left the pool
    assert sorted(pool.live_at(1)) == [0, 3] and pool.too_slow == {1, 2}
    assert [r.getMessage() for r in caplog.records] == [
        "program with label 2 (see programs.json) left a render pool: compiling took over 0.1 s",
        "program with label 1 (see programs.json) left a render pool: a frame took over 0.1 s",
    ]





def test_a_program_stuck_in_a_frame_costs_its_budget_not_the_run(programs):
    """Drawing happens in a child process that is killed at `max_frame_s`: the heavy program (a frame that never
    ends) leaves the pool, and the images are drawn from the others. The budget is generous, so that the light
    programs stay within it however busy the machine is."""
    sources = [programs[0].source, ProgramSource("shadertoy", ENDLESS_FRAME), programs[1].source]
    config = LiveDataConfig(size=96, pool_size=3, mixup=1, seed=2, max_frame_s=8.0, max_compile_s=120.0)
    backend = gl_backend(config)
    pool = ProgramPool(sources, config, (0, 0, 0), backend)
    try:
        drawn = [draw_image(pool, n, config)[1][0] for n in range(12)]
        assert pool.too_slow == {1} and backend.process.restarts == 1
        assert 1 not in drawn and set(drawn) == {0, 2}
    finally:
        pool.close()
        backend.close()


def test_supervised_steps_lower_the_loss(programs, tmp_path):
    losses = []
    run_pretraining(small_config("supervised", steps=16, lr=0.05), tmp_path / "run", programs, CPU,
                    on_step=lambda m: losses.append(m.loss))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 17))
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_moco_steps_lower_the_loss(programs):
    """On a fixed set of rendered images (fresh augmentations every step) MoCo learns to pick the positive key.
    On the endless stream of a 6-program toy export it needs far more steps than a unit test can afford."""
    config = small_config("moco", width=16, queue_size=32, moco_momentum=0.9)
    renders = LiveRenders([p.source for p in programs], LiveDataConfig(size=32, batch_size=16, mixup=1))
    batch = batch_as_tensors(next(iter(renders)), pin_memory=False)
    torch.manual_seed(0)
    objective = build_objective(config, len(programs))
    optimizer = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    losses, accuracies = [], []
    for step in range(24):
        views = make_views(batch, config, 2, 0, step, torch.device("cpu"))
        loss, accuracy = objective(views, batch.label_index, batch.label_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accuracies.append(accuracy.item())
    # From step 2 on the queue holds real keys: a model that learnt nothing scores ln(33) and 1/33 top-1 there.
    chance_loss = np.log(config.queue_size + 1)
    assert np.mean(losses[-6:]) < chance_loss - 0.1, losses
    assert np.mean(accuracies[-6:]) > 0.25, accuracies
    assert int(objective.queue_pointer) == (24 * 16) % 32


@pytest.mark.parametrize("method", ["simclr", "supcon"])
def test_simclr_and_supcon_steps_lower_the_loss(method, programs):
    """As for MoCo: one fixed batch of rendered images, fresh augmentations every step."""
    config = small_config(method)
    renders = LiveRenders([p.source for p in programs], LiveDataConfig(size=32, batch_size=16, mixup=1))
    batch = batch_as_tensors(next(iter(renders)), pin_memory=False)
    torch.manual_seed(0)
    objective = build_objective(config, len(programs))
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for step in range(12):
        loss, _ = objective(make_views(batch, config, 2, 0, step, torch.device("cpu")), batch.label_index,
                            batch.label_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1, losses


@pytest.mark.parametrize("method", ["simclr", "supcon"])
def test_simclr_and_supcon_runs_checkpoint_a_probeable_backbone(method, programs, tmp_path):
    from pretrain.checkpoints import backbone_from_checkpoint

    losses = []
    summary = run_pretraining(small_config(method, steps=3, checkpoint_every=2, mixup=2), tmp_path / "run",
                              programs, CPU, on_step=lambda m: losses.append(m.loss))
    assert summary.step == 3 and len(losses) == 3 and all(np.isfinite(losses))
    backbone, payload = backbone_from_checkpoint(tmp_path / "run")
    assert payload["method"] == method and payload["step"] == 3
    assert backbone.spec.width == 8


def test_machine_defaults_blend_programs_only_where_the_positives_allow(programs):
    for method, mixup in (("moco", 6), ("simclr", 6), ("supcon", 1), ("supervised", 1)):
        assert machine_defaults(method, torch.device("cpu"))["mixup"] == mixup, method
    with pytest.raises(PretrainError, match="simclr needs a batch of at least 2 images"):
        small_config("simclr", batch_size=1).validate()


def test_resume_continues_exactly(programs, tmp_path):
    config = small_config("moco", steps=6, checkpoint_every=2)
    run_pretraining(config, tmp_path / "straight", programs, CPU)
    stopped = run_pretraining(config, tmp_path / "resumed", programs, CPU, stop_at=3)
    assert stopped.step == 3
    resumed = run_pretraining(config, tmp_path / "resumed", programs, CPU, resume=True)
    assert (resumed.start_step, resumed.step) == (3, 6)
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    again = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    for name, tensor in straight["objective"].items():
        assert torch.allclose(tensor.float(), again["objective"][name].float(), atol=1e-5), name
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_rank(rank: int, world_size: int, port: int, args: list[str]) -> None:
    """One rank, started exactly as torchrun would start `harvest pretrain`: environment, then the CLI."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    app(args, standalone_mode=False)


def test_two_process_gloo_run(tiny_export, tmp_path):
    out = tmp_path / "ddp"
    args = ["pretrain", "--data", str(tiny_export), "--out", str(out), "--method", "moco", "--width", "8",
            "--size", "32", "--batch-size", "8", "--steps", "3", "--workers", "0", "--mixup", "2",
            "--checkpoint-every", "2", "--device", "cpu"]
    torch.multiprocessing.spawn(_cli_rank, args=(2, _free_port(), args), nprocs=2, join=True)
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 3 and checkpoint["world_size"] == 2
    # Both ranks enqueued their keys: 2 ranks x 8 images x 3 steps.
    assert int(checkpoint["objective"]["queue_pointer"]) == 48 % checkpoint["config"]["queue_size"]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 3


def test_cli_pretrain_then_refuses_existing_folder_and_empty_export(tiny_export, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-run"
    common = ["pretrain", "--data", str(tiny_export), "--width", "8", "--size", "32", "--batch-size", "8",
              "--workers", "0", "--device", "cpu", "--method", "supervised"]
    result = runner.invoke(app, [*common, "--out", str(out), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.pt").is_file() and (out / "programs.json").is_file()
    again = harvest(*common, "--out", str(out), "--steps", "2")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "already exists" in again.stderr
    more = runner.invoke(app, ["pretrain", "--out", str(out), "--resume", "--steps", "3", "--data", str(tiny_export)])
    assert more.exit_code == 0, more.output
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / MANIFEST_NAME).write_text("")
    failed = runner.invoke(app, [*common, "--data", str(empty), "--out", str(tmp_path / "x")])
    assert isinstance(failed.exception, CorpusError) and "empty" in str(failed.exception)  # read_export says so
    assert not (tmp_path / "x").exists()


def test_a_batch_reaches_the_trainer_as_a_channels_last_view_of_the_rendered_array():
    rendered = np.random.default_rng(0).integers(0, 256, (4, 8, 6, 3), dtype=np.uint8)
    batch = batch_as_tensors(LiveBatch(rendered, np.zeros(4, np.int64), np.ones(4, np.float32)), pin_memory=False)
    assert batch.images.shape == (4, 3, 8, 6)
    assert batch.images.is_contiguous(memory_format=torch.channels_last)
    assert batch.images.data_ptr() == torch.from_numpy(rendered).data_ptr()  # no copy of the pixels
    assert np.array_equal(batch.images.permute(0, 2, 3, 1).numpy(), rendered)
