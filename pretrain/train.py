"""The pretraining loop: live batches in, augmented views, one objective, atomic checkpoints, exact resume.

The same code runs alone, under `torchrun --nproc_per_node N` and under the tests' torch.multiprocessing launcher:
every rank renders its own images (its rank is part of every data seed), gradients are averaged by
DistributedDataParallel, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from corpus.export_format import ExportedProgram
from pretrain import augment as aug
from pretrain.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_atomic
from pretrain.data import (
    LiveBatch,
    LiveDataConfig,
    LiveRenders,
    RenderBackend,
    gl_backend,
    live_loader,
)
from pretrain.distributed import DistEnv, StopVote, barrier, broadcast_value
from pretrain.errors import PretrainError
from pretrain.models import ARCHS, BackboneSpec, build_backbone
from pretrain.objectives import (
    ContrastConfig,
    MocoConfig,
    MocoObjective,
    SimclrObjective,
    SupconObjective,
    SupervisedObjective,
)
from pretrain.stopping import StopRequest, children_shielded

METHODS = ("supervised", "moco", "simclr", "supcon")
CONTRASTIVE = ("moco", "simclr", "supcon")  # two views of each image, with the contrastive augmentations
CONFIG_NAME = "config.json"
PROGRAMS_NAME = "programs.json"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "checkpoint.pt"
# Learning rates per 256 images, scaled linearly with the global batch (SGD, momentum 0.9). SimCLR and SupCon
# take SupContrast's SGD rate (0.05 at 256): SimCLR's own 0.3 is for LARS, which plain SGD does not survive.
BASE_LR = {"supervised": 0.1, "moco": 0.03, "simclr": 0.05, "supcon": 0.05}


@dataclass(frozen=True)
class PretrainConfig:
    method: str = "moco"
    arch: str = "resnet18"
    width: int = 64
    stem: str = "imagenet"
    size: int = 64
    batch_size: int = 64  # per rank
    steps: int = 500
    workers: int = 1  # render workers per rank
    mixup: int = 6
    pool_size: int = 32
    swap_every: int = 32
    lr: float | None = None  # None: BASE_LR[method] * global batch / 256
    weight_decay: float = 1e-4
    warmup_steps: int | None = None  # None: 5 % of the steps, at most 100
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 5
    queue_size: int = 4096
    moco_momentum: float = 0.99
    temperature: float = 0.2
    atlas: bool = True  # single-pass frames of a batch in atlas draws (the same images either way)
    compile_ahead: bool | None = None  # None: where a core is free for it (see compile_ahead_default)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise PretrainError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.arch not in ARCHS:
            raise PretrainError(f"unknown architecture {self.arch!r} (choose from {', '.join(ARCHS)})")
        for name in ("width", "size", "batch_size", "steps", "mixup", "pool_size", "swap_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise PretrainError(f"--{name.replace('_', '-')} must be at least 1")
        if self.width < 8:
            raise PretrainError("--width must be at least 8")
        if self.size < 16:
            raise PretrainError("--size must be at least 16 pixels")
        if self.method in CONTRASTIVE and self.batch_size < 2:
            raise PretrainError(f"{self.method} needs a batch of at least 2 images")
        if self.workers < 0:
            raise PretrainError("--workers cannot be negative")

    @classmethod
    def from_json(cls, data: dict) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def machine_defaults(method: str, device: torch.device) -> dict:
    """Defaults sized for the machine: a short smoke run on a CPU, a real run on a GPU."""
    cores = os.cpu_count() or 1
    # The study's best contrastive setting blends 6 programs; SupCon's positives need one program per image.
    mixup = 6 if method in ("moco", "simclr") else 1
    if device.type == "cuda":
        return dict(batch_size=256, steps=20_000, workers=max(1, min(cores - 2, 16)), width=64, mixup=mixup,
                    queue_size=65_536, moco_momentum=0.999, checkpoint_every=1000)
    return dict(batch_size=64, steps=300, workers=max(1, min(cores - 1, 8)), width=64, mixup=mixup,
                queue_size=4096, moco_momentum=0.99, checkpoint_every=100)


def compile_ahead_default(device: torch.device, workers: int, local_world_size: int) -> bool:
    """Compile ahead where it does not take a core from drawing: on a GPU (drawing waits on the GPU, the CPU
    compiles) or when every drawing process, its helper and the trainer each have a core. On 2 cores the helper
    only moves the compile from one busy core to another (bench/pipeline.py measures it)."""
    if device.type == "cuda":
        return True
    cores = os.cpu_count() or 1
    return workers > 0 and cores >= local_world_size * (2 * workers + 1)


@dataclass(frozen=True)
class StepMetrics:
    step: int  # steps completed
    steps: int
    loss: float
    accuracy: float
    lr: float
    images_per_s: float  # all ranks, over the last log interval
    data_wait: float  # share of the interval spent waiting for rendered batches
    elapsed_s: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    start_step: int
    step: int
    final_loss: float | None
    images_per_s: float | None
    checkpoint: Path
    programs: int
    stopped_by: int = 0  # the signal that stopped the run early (0: it ran to its end)


def new_run_dir(runs_root: Path, config: PretrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = runs_root / f"{config.method}-{config.arch}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _write_json_atomic(payload: object, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _program_record(program: ExportedProgram, label: int) -> dict:
    return {"label": label, "key": program.key, "program_id": program.program_id, "title": program.title,
            "author": program.author, "license": program.license, "url": program.url}


def learning_rate(config: PretrainConfig, world_size: int, step: int) -> float:
    peak = config.lr if config.lr is not None else BASE_LR[config.method] * config.batch_size * world_size / 256
    warmup = config.warmup_steps if config.warmup_steps is not None else min(100, config.steps // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_objective(config: PretrainConfig, num_classes: int) -> nn.Module:
    backbone = build_backbone(BackboneSpec(config.arch, config.width, config.stem))
    if config.method == "supervised":
        return SupervisedObjective(backbone, num_classes)
    if config.method == "simclr":
        return SimclrObjective(backbone, ContrastConfig(temperature=config.temperature))
    if config.method == "supcon":
        return SupconObjective(backbone, ContrastConfig(temperature=config.temperature))
    return MocoObjective(
        backbone,
        MocoConfig(queue_size=config.queue_size, momentum=config.moco_momentum, temperature=config.temperature),
    )


def _augment_seed(config: PretrainConfig, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([config.seed, rank, step, 3]).generate_state(1)[0])


def make_views(batch: LiveBatch, config: PretrainConfig, count: int, rank: int, step: int,
               device: torch.device) -> list[torch.Tensor]:
    images = aug.to_unit_float(batch.images.to(device, non_blocking=True))
    recipe = aug.contrastive(config.size) if config.method in CONTRASTIVE else aug.supervised(config.size)
    generator = torch.Generator(device=device)
    generator.manual_seed(_augment_seed(config, rank, step))
    return [aug.augment(images, config.size, recipe, generator) for _ in range(count)]


def _autocast(device: torch.device):
    if device.type != "cuda":
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


class _RunFiles:
    """The run folder, written by rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.checkpoint = run_dir / CHECKPOINT_NAME

    def start(self, config: PretrainConfig, programs: list[ExportedProgram], origin: str) -> None:
        if not self.enabled:
            return
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir()
        _write_json_atomic({"config": asdict(config), "origin": origin, "programs": len(programs)},
                           self.run_dir / CONFIG_NAME)
        _write_json_atomic([_program_record(p, i) for i, p in enumerate(programs)], self.run_dir / PROGRAMS_NAME)

    def trim_metrics(self, step: int) -> None:
        """Drop lines logged after the checkpoint a resumed run restarts from, so the log reads as one run."""
        path = self.run_dir / METRICS_NAME
        if not self.enabled or not path.is_file():
            return
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(temporary, path)

    def log(self, metrics: StepMetrics) -> None:
        if self.enabled:
            with open(self.run_dir / METRICS_NAME, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(metrics.to_json(), sort_keys=True) + "\n")

    def save(self, payload: dict) -> None:
        if self.enabled:
            save_atomic(payload, self.checkpoint)


def read_run_config(run_dir: Path) -> PretrainConfig:
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise PretrainError(f"{run_dir} is not a pretraining run folder ({CONFIG_NAME} is missing)")
    return PretrainConfig.from_json(json.loads(path.read_text(encoding="utf-8"))["config"])


def next_batch(batches: Iterator[LiveBatch]) -> LiveBatch:
    try:
        return next(batches)
    except RuntimeError as exc:
        if "timed out" not in str(exc):
            raise
        raise PretrainError(
            "the render workers sent no batch for 300 s: a program is taking minutes a frame (llvmpipe caps "
            "loops, not time); choose other programs (--num-programs, --seed) or a higher --min-diversity export"
        ) from None


class _Trainer:
    """The model, its optimizer and their checkpoint: one optimizer step at a time."""

    def __init__(self, config: PretrainConfig, programs: list[ExportedProgram], env: DistEnv,
                 files: _RunFiles) -> None:
        self.config, self.env, self.files = config, env, files
        self.keys = [p.key for p in programs]
        torch.manual_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts them)
        self.objective = build_objective(config, len(programs)).to(env.device)
        self.optimizer = torch.optim.SGD(
            [p for p in self.objective.parameters() if p.requires_grad], lr=0.0, momentum=0.9,
            weight_decay=config.weight_decay,
        )
        self.autocast, self.scaler = _autocast(env.device)
        self.model: nn.Module = self.objective

    def restore(self) -> int:
        """Load the run's checkpoint; the step it was taken at."""
        payload = load_checkpoint(self.files.checkpoint)
        if payload.get("program_keys") != self.keys:
            raise PretrainError(f"the programs differ from those {self.files.run_dir} was trained on: "
                               "resume with the same data")
        self.objective.load_state_dict(payload["objective"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scaler is not None and payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        torch.set_rng_state(payload["torch_rng"])
        return int(payload["step"])

    def wrap_distributed(self) -> None:
        if self.env.distributed:
            self.model = DistributedDataParallel(
                self.objective, device_ids=[self.env.device.index] if self.env.device.type == "cuda" else None,
                broadcast_buffers=False,  # MoCo's queue stays in step through all_gather; BN statistics stay per rank
            )

    def step(self, batch: LiveBatch, step: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step: the loss and accuracy tensors (not read, to keep the GPU busy) and the lr."""
        config, device = self.config, self.env.device
        lr = learning_rate(config, self.env.world_size, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        views = make_views(batch, config, self.objective.num_views, self.env.rank, step, device)
        label_index = batch.label_index.to(device, non_blocking=True)
        label_weight = batch.label_weight.to(device, non_blocking=True)
        with self.autocast:
            loss, accuracy = self.model(views, label_index, label_weight)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss, accuracy, lr

    def checkpoint(self, step: int) -> None:
        config = self.config
        self.files.save({
            "format": CHECKPOINT_FORMAT,
            "backbone_spec": BackboneSpec(config.arch, config.width, config.stem).to_json(),
            "method": config.method,
            "config": asdict(config),
            "step": step,
            "world_size": self.env.world_size,
            "program_keys": self.keys,
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "torch_rng": torch.get_rng_state(),
        })


class _Window:
    """Throughput and data-wait share over the steps since the last log line."""

    def __init__(self, config: PretrainConfig, env: DistEnv) -> None:
        self.images_per_step = config.batch_size * env.world_size
        self.steps_total = config.steps
        self.started = time.perf_counter()
        self.start, self.wait, self.steps = self.started, 0.0, 0

    def next_batch(self, batches: Iterator[LiveBatch]) -> LiveBatch:
        wait_from = time.perf_counter()
        batch = next_batch(batches)
        self.wait += time.perf_counter() - wait_from
        return batch

    def close(self, step: int, loss: float, accuracy: float, lr: float) -> StepMetrics:
        now = time.perf_counter()
        span = max(now - self.start, 1e-9)
        metrics = StepMetrics(step, self.steps_total, loss, accuracy, lr, self.steps * self.images_per_step / span,
                              min(1.0, self.wait / span), now - self.started)
        self.start, self.wait, self.steps = now, 0.0, 0
        return metrics


def _check_run_folder(files: _RunFiles, resume: bool, env: DistEnv) -> None:
    problem = None
    if env.is_main:
        if resume and not files.checkpoint.is_file():
            problem = f"cannot resume: {files.run_dir} has no {CHECKPOINT_NAME}"
        elif not resume and files.run_dir.exists():
            problem = (f"run folder {files.run_dir} already exists (pass --resume to continue it, "
                       "or choose another --out)")
    problem = broadcast_value(env, problem)
    if problem:
        raise PretrainError(problem)


def _live_batches(config: PretrainConfig, programs: list[ExportedProgram], env: DistEnv, start_step: int,
                  backend_factory: Callable[[LiveDataConfig], RenderBackend],
                  render_devices: tuple[int, ...]) -> Iterator[LiveBatch]:
    """The endless batches from `start_step` on; the render workers stop when the iterator is dropped."""
    if env.device.type == "cpu" and config.workers > 0:
        # Renderers and trainer share the cores: intra-op threads that find their core taken spin at every barrier
        # (a 5-10x slowdown measured on 2 cores), so the trainer only takes the cores the renderers leave.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // env.world_size - config.workers))
    data_config = LiveDataConfig(
        size=config.size, batch_size=config.batch_size, pool_size=config.pool_size, swap_every=config.swap_every,
        mixup=config.mixup, seed=config.seed, atlas=config.atlas, render_devices=render_devices,
        compile_ahead=config.compile_ahead if config.compile_ahead is not None else compile_ahead_default(
            env.device, config.workers, int(os.environ.get("LOCAL_WORLD_SIZE", env.world_size))),
    )
    dataset = LiveRenders([p.source for p in programs], data_config, rank=env.rank, start_batch=start_step,
                          backend_factory=backend_factory)
    loader = live_loader(dataset, config.workers, pin_memory=env.device.type == "cuda")
    with children_shielded():  # the workers start here
        return iter(loader)


def run_pretraining(
    config: PretrainConfig,
    run_dir: Path,
    programs: list[ExportedProgram],
    env: DistEnv,
    *,
    resume: bool = False,
    origin: str = "",
    stop_at: int | None = None,
    stop: StopRequest | None = None,
    on_step: Callable[[StepMetrics], None] | None = None,
    backend_factory: Callable[[LiveDataConfig], RenderBackend] = gl_backend,
    render_devices: tuple[int, ...] = (),
    on_start: Callable[[], None] | None = None,
) -> RunSummary:
    """Train `config.steps` steps (or until `stop_at`, which simulates an interruption) and checkpoint at the end.
    With `resume`, restart from `run_dir`'s checkpoint: model, optimizer, MoCo queue, scaler and the data position
    (every data and augmentation seed derives from run seed, rank and step). Once `stop` holds a signal (on any
    rank), every rank stops after its current step, checkpoints and returns; the summary names the signal.
    `render_devices`: the EGL devices this rank's render workers take turns over (pretrain/render_devices.py);
    `on_start` is called on rank 0 once the run folder is checked, before the first batch."""
    config.validate()
    files = _RunFiles(run_dir, env.is_main)
    _check_run_folder(files, resume, env)
    trainer = _Trainer(config, programs, env, files)
    start_step = trainer.restore() if resume else 0
    if resume:
        files.trim_metrics(start_step)
    else:
        files.start(config, programs, origin)
    barrier(env)
    if on_start is not None and env.is_main:
        on_start()
    trainer.wrap_distributed()
    vote = StopVote(env)
    end_step = config.steps if stop_at is None else min(stop_at, config.steps)
    step, last_loss, rate, stopped_by = start_step, None, None, 0
    batches = _live_batches(config, programs, env, start_step, backend_factory, render_devices)
    window = _Window(config, env)
    trainer.objective.train()
    try:
        while step < end_step:
            stopped_by = vote.agree(stop.signum if stop is not None else 0)
            if stopped_by:
                break
            loss, accuracy, lr = trainer.step(window.next_batch(batches), step)
            step += 1
            window.steps += 1
            if step % config.log_every == 0 or step == end_step:
                last_loss = float(loss.item())  # only here: reading the loss waits for the GPU
                if not math.isfinite(last_loss):
                    raise PretrainError(f"the loss diverged at step {step}: lower --lr")
                metrics = window.close(step, last_loss, float(accuracy.item()), lr)
                rate = metrics.images_per_s
                files.log(metrics)
                if on_step is not None and env.is_main:
                    on_step(metrics)
            if step % config.checkpoint_every == 0 and step < end_step:
                trainer.checkpoint(step)
    except KeyboardInterrupt:  # a caller that did not pass `stop`: keep what the finished steps learnt
        if step > start_step:
            trainer.checkpoint(step)
        raise
    finally:
        del batches  # stops the render workers
    trainer.checkpoint(step)
    barrier(env)
    return RunSummary(run_dir, start_step, step, last_loss, rate, files.checkpoint, len(programs), stopped_by)


def resolved_config(base: PretrainConfig, overrides: dict) -> PretrainConfig:
    """`base` with every override that is not None."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
