"""`harvest quickstart`: the whole pipeline on the bundled sample programs, offline."""

from __future__ import annotations

import importlib.util
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.rule import Rule

from harvester.cli_common import DbOption, console
from harvester.commands.quickstart_probe import print_comparison
from harvester.errors import HarvestError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
# The short run: SupCon (frames of one program are positives) at 32 px, width 64, 600 steps of 64 images at a peak
# learning rate of 0.05. Of the settings screened (README, the quickstart's short run) it is the one whose probe beat
# random init of the same network at the best stage on each of 3 seeds; supervised learning of the export's few
# programs is solved within 200 steps and leaves the early stages as random init made them.
SHORT_RUN_METHOD = "supcon"
SHORT_RUN_STEPS = 600
SHORT_RUN_SIZE = 32
SHORT_RUN_WIDTH = 64
SHORT_RUN_LR = {"supcon": 0.05}  # the screened rate, 4x the default at batch 64; other methods keep their defaults


def _step(title: str, command: Callable[..., object], **given: object) -> None:
    """Run one command's function as the user would run it, with its own defaults for what is not given.

    The functions are called directly, not through the command line, so quickstart never re-enters the app.
    """
    console.print(Rule(title, align="left") if console.is_terminal else f"== {title}", highlight=False)
    arguments = {}
    for name, parameter in inspect.signature(command).parameters.items():
        default = parameter.default
        arguments[name] = given[name] if name in given else getattr(default, "default", default)
    try:
        command(**arguments)
    except typer.Exit as exit_:
        if exit_.exit_code:
            raise HarvestError(f"`{title}` failed (exit {exit_.exit_code}); see above") from None


def quickstart(
    db: DbOption = None,
    workers: Optional[int] = typer.Option(None, "--workers", help="Render workers (default: one per core)."),
    min_diversity: float = typer.Option(0.3, "--min-diversity", help="Diversity threshold of the export."),
    pretrain_steps: int = typer.Option(SHORT_RUN_STEPS, "--pretrain-steps", help="Steps of the short pretraining (0 skips it)."),
    method: str = typer.Option(SHORT_RUN_METHOD, "--method", help="Pretraining objective: supervised, moco, simclr or supcon."),
    probe_data: Optional[Path] = typer.Option(
        None, "--probe-data", help="A probe dataset (.npz or image folder): compare the pretrained model with random init."
    ),
) -> None:
    """Crawl the bundled samples, validate, score, dedup, export, write a gallery and pretrain briefly
    (and, given --probe-data, probe the model against random init)."""
    from corpus.db import default_db_path

    started = time.monotonic()
    catalog_path = (db or default_db_path()).resolve()
    folder = catalog_path.parent
    export_dir = folder / "export"
    if probe_data is not None and not probe_data.exists():
        raise HarvestError(f"probe dataset {probe_data} does not exist")

    from harvester.commands import catalog, crawl, curate, render, train

    workers_given = {"workers": workers}
    _step("crawl the bundled samples", crawl.crawl, source="local", path=SAMPLES_DIR, db=catalog_path)
    _step("validate", render.validate, db=catalog_path, **workers_given)
    _step("score", curate.score, db=catalog_path, **workers_given)
    _step("dedup", curate.dedup, db=catalog_path, **workers_given)
    _step("export", curate.export, db=catalog_path, min_diversity=min_diversity, out=export_dir, overwrite=True,
          **workers_given)
    _step("gallery", curate.gallery, db=catalog_path, out=folder / "gallery.html")

    checkpoint: Path | None = None
    if pretrain_steps > 0:
        if importlib.util.find_spec("torch") is None:
            console.print("[yellow]skipping pretraining: torch is not installed (pip install 'harvest\\[train]')[/]")
        else:
            run_dir = folder / "runs" / f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
            _step("pretrain", train.pretrain, data=export_dir, out=run_dir, method=method, steps=pretrain_steps,
                  db=catalog_path, size=SHORT_RUN_SIZE, width=SHORT_RUN_WIDTH, lr=SHORT_RUN_LR.get(method))
            checkpoint = run_dir
    if probe_data is not None and checkpoint is not None:
        _step("probe the pretrained model", train.probe, checkpoint=str(checkpoint), data=probe_data, stage="all",
              size=SHORT_RUN_SIZE, out=checkpoint / "probe-pretrained.json")
        _step("probe random init", train.probe, checkpoint="random", data=probe_data, stage="all",
              size=SHORT_RUN_SIZE, width=SHORT_RUN_WIDTH, out=checkpoint / "probe-random.json")
        print_comparison(checkpoint / "probe-pretrained.json", checkpoint / "probe-random.json")
    _step("stats", catalog.stats, db=catalog_path)
    console.print(
        f"[bold green]quickstart done[/] in {time.monotonic() - started:.0f} s: catalog {catalog_path}, "
        f"dataset {export_dir}, gallery {folder / 'gallery.html'}"
        + (f", run {checkpoint}" if checkpoint else "")
    )


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
