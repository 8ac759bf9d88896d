"""`harvest pretrain` and `harvest probe`. torch is imported inside the commands, so the rest of the CLI starts
fast and works without it."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from harvester.cli_common import DbOption, RenderDeviceOption, console, err_console
from harvester.commands.train_progress import step_reporter
from harvester.errors import HarvestError
from harvester.media_option import MediaDirOption, checked_media_dir

TORCH_MISSING = "pretraining needs torch: pip install 'harvest[train]'"


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise HarvestError(TORCH_MISSING) from None


def pretrain(
    data: Optional[Path] = typer.Option(None, "--data", help="Export folder (default ./export, else the catalog's ok programs)."),
    db: DbOption = None,
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default a new ./runs/METHOD-ARCH-TIME)."),
    method: Optional[str] = typer.Option(None, "--method", help="moco (MoCo v2), simclr (SimCLR), supcon (SupCon: same program = positive) or supervised (classify programs). Default moco."),
    arch: Optional[str] = typer.Option(None, "--arch", help="resnet18, resnet34 or resnet50. Default resnet18."),
    width: Optional[int] = typer.Option(None, "--width", help="Channels of the first stage (64 = standard)."),
    size: Optional[int] = typer.Option(None, "--size", help="Image side in pixels (default 64)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per step per process."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps (on --resume: extend a run)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Render workers per process (0: render in the trainer)."),
    num_programs: Optional[int] = typer.Option(None, "--num-programs", help="Train on a seeded random subset of N programs."),
    mixup: Optional[int] = typer.Option(None, "--mixup", help="Programs blended per image (1 = off; default 6 for moco and simclr, 1 for supervised and supcon)."),
    pool_size: Optional[int] = typer.Option(None, "--pool-size", help="Compiled programs per render worker (default 32)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default per 256 images: 0.03 moco, 0.05 simclr and supcon, 0.1 supervised)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed: weights, programs drawn, images, augmentations."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
    media_dir: MediaDirOption = None,
    atlas: bool = typer.Option(True, "--atlas/--no-atlas", help="Draw a batch's frames of a program in one atlas draw (the same images either way)."),
    compile_ahead: Optional[bool] = typer.Option(None, "--compile-ahead/--no-compile-ahead", help="Compile the programs about to enter the pool in a helper process (default: on a GPU, or when a core is free for it).", show_default=False),
    render_device: RenderDeviceOption = "auto",
) -> None:
    """Pretrain a ResNet on images rendered live from the programs (no image is stored)."""
    _use_media_dir(media_dir)
    require_torch()
    from pretrain.distributed import broadcast_value, init_distributed, shutdown
    from pretrain.programs import choose_programs, load_programs
    from pretrain.train import new_run_dir, read_run_config, resolved_config

    if resume and out is None:
        raise HarvestError("--resume needs --out RUN_DIR (the run to continue)")
    env = init_distributed(device)
    try:
        devices = _rank_devices(render_device, env)
        if resume:
            config = read_run_config(out)
            config = resolved_config(config, {"steps": steps, "compile_ahead": compile_ahead, "atlas": atlas})
        else:
            config = _new_run_config(method, env.device, dict(
                arch=arch, width=width, size=size, batch_size=batch_size, steps=steps, workers=workers,
                mixup=mixup, pool_size=pool_size, lr=lr, seed=seed, checkpoint_every=checkpoint_every,
                atlas=atlas, compile_ahead=compile_ahead,
            ))
        config.validate()
        all_programs, origin = load_programs(data, db)
        programs = choose_programs(all_programs, num_programs, config.seed)
        if resume:
            run_dir = out
        else:
            run_dir = broadcast_value(env, out if out is not None else new_run_dir(Path("runs"), config))
        if env.is_main:
            console.print(
                f"{config.method} {config.arch} (width {config.width}) at {config.size} px on {env.device}"
                f"{f' x{env.world_size}' if env.distributed else ''}: {len(programs)} programs from {origin}, "
                f"batch {config.batch_size}, MixUp {config.mixup}, {config.workers} render worker(s), "
                f"pool {min(config.pool_size, len(programs))} -> {run_dir}",
                markup=False, highlight=False, soft_wrap=True,
            )
        summary = _train_with_progress(config, run_dir, programs, env, resume, origin, devices)
    finally:
        shutdown(env)
    if summary.stopped_by:
        _report_stop(summary, config, env, {"--data": data, "--db": db, "--num-programs": num_programs,
                                            "--device": device, "--media-dir": media_dir,
                                            "--render-device": None if render_device == "auto" else render_device})
    if env.is_main:
        loss = summary.final_loss if summary.final_loss is None else round(summary.final_loss, 4)
        console.print(
            f"[bold]{summary.step}[/] steps done (from {summary.start_step}); last loss {loss}, "
            f"{0 if summary.images_per_s is None else round(summary.images_per_s)} images/s; "
            f"checkpoint {escape(str(summary.checkpoint))}",
            highlight=False, soft_wrap=True,
        )


def _use_media_dir(media_dir: Optional[Path]) -> None:
    """Every drawing process this run starts (DataLoader workers' too) inherits the environment: the folder goes
    there, so live data binds media channels without each layer passing it on."""
    from renderer.media import MEDIA_DIR_ENV

    checked = checked_media_dir(media_dir)
    if checked is not None:
        os.environ[MEDIA_DIR_ENV] = checked


def _new_run_config(method: Optional[str], device, overrides: dict):
    from pretrain.train import PretrainConfig, machine_defaults, resolved_config

    chosen = method or "moco"
    base = resolved_config(PretrainConfig(method=chosen), machine_defaults(chosen, device))
    return resolved_config(base, overrides)


def _rank_devices(render_device: str, env) -> tuple[int, ...]:
    """This rank's render devices; a device that does not exist is one error line (RenderError) before any work."""
    from pretrain.render_devices import rank_render_devices

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", env.world_size))
    return rank_render_devices(render_device, env.local_rank, local_world)


def _print_renderers(devices: tuple[int, ...]) -> None:
    """Say once which GL renderer draws (rank 0's devices), so llvmpipe standing in for a GPU is plain to see."""
    from renderer.devices import describe_render_devices

    for line in describe_render_devices(devices):
        err_console.print(f"rendering on: {line}", highlight=False, markup=False)


def _train_with_progress(config, run_dir, programs, env, resume, origin, devices):
    from pretrain.stopping import stop_on_signals
    from pretrain.train import run_pretraining

    options = dict(resume=resume, origin=origin, render_devices=devices, on_start=lambda: _print_renderers(devices))
    with stop_on_signals() as stop:
        if not env.is_main:
            return run_pretraining(config, run_dir, programs, env, stop=stop, **options)
        images_per_step = config.batch_size * env.world_size
        with step_reporter(console, config.steps, images_per_step, config.log_every) as on_step:
            return run_pretraining(config, run_dir, programs, env, stop=stop, on_step=on_step, **options)


def resume_command(run_dir: Path, steps: int, passed: dict[str, object], world_size: int = 1,
                   local_world_size: int | None = None) -> str:
    """The shell command that continues `run_dir`, built from known options only (never the raw command line, so
    nothing else the user typed is echoed). `passed` holds the options that choose the same programs and device."""
    words = ["pretrain", "--out", str(run_dir), "--resume", "--steps", str(steps)]
    for option, value in passed.items():
        if value is not None:
            words += [option, str(value)]
    if world_size == 1:
        return shlex.join(["harvest", *words])
    per_node = local_world_size or world_size
    launcher = ["torchrun", "--nproc_per_node", str(per_node)]
    if per_node != world_size:  # several nodes: the rendezvous options are the user's own
        launcher += ["--nnodes", str(world_size // per_node)]
    return shlex.join([*launcher, "-m", "harvester.cli", *words])


def _report_stop(summary, config, env, passed: dict[str, object]) -> None:
    """One line (rank 0) with the step and the command that resumes, then the signal's exit code on every rank."""
    from pretrain.stopping import exit_code, signal_name

    if env.is_main:
        local = os.environ.get("LOCAL_WORLD_SIZE")
        command = resume_command(summary.run_dir, config.steps, passed, env.world_size,
                                 int(local) if local else None)
        err_console.print(
            f"stopped by {signal_name(summary.stopped_by)} at step {summary.step} of {config.steps}; "
            f"checkpoint {summary.checkpoint}; resume with: {command}",
            markup=False, highlight=False, soft_wrap=True,
        )
    raise SystemExit(exit_code(summary.stopped_by))  # not typer.Exit: `quickstart` must stop too


def probe(
    checkpoint: str = typer.Option(..., "--checkpoint", help="A checkpoint file or run folder, or `random` for an untrained network."),
    data: Path = typer.Option(..., "--data", help=".npz with x_train/y_train/x_test/y_test, or a folder with train/CLASS/ and test/CLASS/."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture (random: default resnet18; a checkpoint's must match)."),
    width: int = typer.Option(64, "--width", help="Width of a `random` network."),
    size: int = typer.Option(64, "--size", help="Side the probe images are resized to."),
    stage: str = typer.Option("all", "--stage", help="last, best (chosen on held-out train images) or all."),
    recalibrate_bn: bool = typer.Option(False, "--recalibrate-bn", help="Re-estimate batch-norm statistics on the train images."),
    seed: int = typer.Option(0, "--seed", help="Seed of a `random` network's weights."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report as JSON here."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
) -> None:
    """Linear and kNN probes of frozen features: top-1 on the test split, per backbone stage."""
    if stage not in ("last", "best", "all"):
        raise HarvestError("--stage must be last, best or all")
    if size < 16:
        raise HarvestError("--size must be at least 16 pixels")
    require_torch()
    import torch

    from pretrain.checkpoints import backbone_from_checkpoint
    from pretrain.distributed import pick_device
    from pretrain.models import ARCHS, BackboneSpec, build_backbone
    from pretrain.probe import load_probe_data, run_probe

    if checkpoint == "random":
        chosen = arch or "resnet18"
        if chosen not in ARCHS:
            raise HarvestError(f"unknown architecture {chosen!r} (choose from {', '.join(ARCHS)})")
        if width < 8:
            raise HarvestError("--width must be at least 8")
        torch.manual_seed(seed)
        backbone = build_backbone(BackboneSpec(chosen, width))
    else:
        backbone, _ = backbone_from_checkpoint(Path(checkpoint), arch)
    probe_data = load_probe_data(data, size)
    with console.status(f"probing {checkpoint} on {len(probe_data.x_train)}+{len(probe_data.x_test)} images"):
        report = run_probe(backbone, probe_data, size, pick_device(0, device), checkpoint=checkpoint,
                           data_name=str(data), recalibrate_bn=recalibrate_bn)
    shown = {"last": [report.last], "best": [report.best], "all": report.stages}[stage]
    table = Table(title=f"linear and kNN probes of {checkpoint} ({report.arch}, width {report.width}, {size} px)",
                  title_justify="left")
    for column in ("stage", "features", "L2", "val top-1", "test top-1", "kNN test top-1"):
        table.add_column(column, justify="right")
    for result in shown:
        marker = " (best)" if result.stage == report.best.stage else ""
        knn = "-" if result.knn is None else f"{result.knn.test_accuracy:.3f}"
        table.add_row(f"{result.stage}{marker}", str(result.dim), f"{result.l2:g}", f"{result.val_accuracy:.3f}",
                      f"{result.test_accuracy:.3f}", knn)
    console.print(table)
    if out is not None:
        temporary = out.with_name(f".{out.name}.tmp")
        try:
            temporary.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, out)
        except OSError as exc:
            raise HarvestError(f"cannot write {out}: {exc.strerror}") from None
        console.print(f"report written to {out}")


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
    app.command("probe")(probe)
