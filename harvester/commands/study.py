"""`harvest study`: probe accuracy against the number of programs pretrained on, at a fixed image budget."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer

from harvester.cli_common import DbOption, console, err_console
from harvester.commands.train import require_torch
from harvester.errors import HarvestError


def study(
    probe_data: Path = typer.Option(..., "--probe-data", help=".npz with x_train/y_train/x_test/y_test, or a folder with train/CLASS/ and test/CLASS/."),
    data: Optional[Path] = typer.Option(None, "--data", help="Export folder (default ./export, else the catalog's ok programs)."),
    db: DbOption = None,
    programs: Optional[str] = typer.Option(None, "--programs", help="Program counts, e.g. 1,4,16 (default 1, 4, 16, 64, ... and the export's size)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Seeds per run: 0..N-1 (default 1 on CPU, 3 on a GPU)."),
    methods: str = typer.Option("supervised,simclr,supcon", "--methods", help="Comma-separated: supervised, moco, simclr, supcon."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps per run, the same for every count (default 250 on CPU, 2,000 on a GPU)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per step (default 64 on CPU, 256 on a GPU)."),
    size: Optional[int] = typer.Option(None, "--size", help="Side of trained and probed images (default 32 on CPU, 64 on a GPU)."),
    width: Optional[int] = typer.Option(None, "--width", help="Channels of the first ResNet-18 stage (default 32 on CPU, 64 on a GPU)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Render workers (default cores - 1 on CPU, cores - 2 on a GPU)."),
    mixup: int = typer.Option(1, "--mixup", help="Programs blended per image (1 = off)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate of every run (default: each method's rate per 256 images, scaled to the batch)."),
    out: Path = typer.Option(Path("study"), "--out", help="Study folder: created, or continued when made with the same options."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
) -> None:
    """Pretrain on a growing number of programs (the same number of images each time), probe every backbone and
    random init, and write study.json, study.md and study.png. Rerun the same command to continue a stopped study.

    On a GPU (CUDA present) the defaults grow: 8x the images per run (256 x 2,000), 64 px, width 64, 3 seeds."""
    require_torch()
    from pretrain.stopping import exit_code, signal_name, stop_on_signals
    from pretrain.study import run_study
    from pretrain.study_records import StudyFolder

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HarvestError("harvest study runs in one process: start it without torchrun")
    config, study_data, env = _resolve(probe_data, data, db, programs, seeds, methods, dict(
        steps=steps, batch_size=batch_size, size=size, width=width, workers=workers), mixup, device, lr)
    folder = StudyFolder(out)
    console.print(
        f"study of {len(study_data.programs)} programs from {study_data.export_name}: counts "
        f"{','.join(map(str, config.programs))} x {', '.join(config.methods)} x {config.seeds} seed(s), "
        f"{config.images_per_run:,} images per run ({config.steps} steps x {config.batch_size}) at {config.size} "
        f"px, width {config.width}{'' if config.lr is None else f', peak lr {config.lr:g}'}, on {env.device} -> {out}",
        markup=False, highlight=False, soft_wrap=True,
    )
    with stop_on_signals() as stop:
        outcome = run_study(config, folder, study_data, env, stop=stop, on_run=_RunLines())
    console.print(outcome.table, markup=False, highlight=False, soft_wrap=True)
    for note in outcome.notes:
        console.print(note, markup=False, highlight=False)
    if outcome.stopped_by:
        err_console.print(
            f"stopped by {signal_name(outcome.stopped_by)} with {len(outcome.records)} runs finished; the same "
            "command continues the study", markup=False, highlight=False, soft_wrap=True,
        )
        raise SystemExit(exit_code(outcome.stopped_by))
    written = "study.json, study.md" + ("" if outcome.notes else ", study.png")
    console.print(f"{written} in {out}" + ("" if outcome.ran else " (every run was already done)"),
                  markup=False, highlight=False)


def _resolve(probe_data, data, db, programs, seeds, methods, overrides: dict, mixup: int, device, lr):
    """The study's configuration, its programs and probe set, and the device: every bad option is one line."""
    from pretrain.distributed import DistEnv, pick_device
    from pretrain.probe import load_probe_data
    from pretrain.programs import load_programs
    from pretrain.study import StudyData
    from pretrain.study_config import (
        StudyConfig,
        fingerprint_probe,
        fingerprint_programs,
        log_ladder,
        machine_budget,
        parse_counts,
        parse_methods,
    )

    chosen_device = pick_device(0, device)
    budget = machine_budget(chosen_device.type, os.cpu_count() or 1)
    resolved = {name: value if value is not None else getattr(budget, name) for name, value in overrides.items()}
    if resolved["size"] < 16:
        raise HarvestError("--size must be at least 16 pixels")
    if resolved["width"] < 8:
        raise HarvestError("--width must be at least 8")
    method_list = parse_methods(methods)
    probe = load_probe_data(probe_data, resolved["size"])
    export, origin = load_programs(data, db)
    config = StudyConfig(
        programs=parse_counts(programs) if programs is not None else log_ladder(len(export)),
        seeds=seeds if seeds is not None else budget.seeds, methods=method_list, mixup=mixup, arch="resnet18",
        export_programs=len(export), export_fingerprint=fingerprint_programs([p.key for p in export]),
        probe_fingerprint=fingerprint_probe(probe), device=chosen_device.type, lr=lr, **resolved,
    )
    config.validate()
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=chosen_device)
    return config, StudyData(export, probe, origin, Path(probe_data).name), env


class _RunLines:
    """One plain line per finished run, with an estimate of the time the remaining runs need."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ran = 0

    def __call__(self, event) -> None:
        record = event.record
        self.ran += 1
        elapsed = time.monotonic() - self.started
        remaining = timedelta(seconds=round(elapsed / self.ran * (event.total - event.done)))
        training = ""
        if record.steps:
            rate = round(record.images_per_s or 0)
            training = f"{record.steps} steps in {timedelta(seconds=round(record.train_s))} ({rate} img/s), "
        knn = "" if record.best_knn_accuracy is None else f", kNN {100 * record.best_knn_accuracy:.1f}"
        console.print(
            f"run {event.done}/{event.total} {record.key.label}: {training}probe stage {record.best_stage} "
            f"{100 * record.best_accuracy:.1f} %{knn} (last stage {100 * record.last_accuracy:.1f}); "
            f"about {remaining} left", markup=False, highlight=False, soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("study")(study)
