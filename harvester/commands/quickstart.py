"""`harvest quickstart`: the whole pipeline on the bundled sample programs, offline."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Optional

import typer
from rich.rule import Rule

from harvester.cli_common import DbOption, console
from harvester.errors import HarvestError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def _invoke(args: list[str]) -> None:
    """Run one `harvest` subcommand in this process, exactly as the user would type it."""
    from typer.main import get_command

    from harvester.cli import app

    console.print(Rule(f"harvest {' '.join(args)}", align="left"))
    command = get_command(app)
    try:
        command.main(args=args, prog_name="harvest", standalone_mode=False)
    except typer.Exit as exit_:
        if exit_.exit_code:
            raise HarvestError(f"`harvest {args[0]}` failed (exit {exit_.exit_code}); see above") from None


def quickstart(
    db: DbOption = None,
    workers: Optional[int] = typer.Option(None, "--workers", help="Render workers (default: one per core)."),
    min_diversity: float = typer.Option(0.3, "--min-diversity", help="Diversity threshold of the export."),
    pretrain_steps: int = typer.Option(150, "--pretrain-steps", help="Steps of the short pretraining (0 skips it)."),
    method: str = typer.Option("moco", "--method", help="Pretraining objective: moco or supervised."),
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
    common = ["--db", str(catalog_path)]
    render_workers = [] if workers is None else ["--workers", str(workers)]
    export_dir = folder / "export"
    if probe_data is not None and not probe_data.exists():
        raise HarvestError(f"probe dataset {probe_data} does not exist")

    _invoke(["crawl", "--source", "local", "--path", str(SAMPLES_DIR), *common])
    _invoke(["validate", *render_workers, *common])
    _invoke(["score", *render_workers, *common])
    _invoke(["dedup", *render_workers, *common])
    _invoke(["export", "--min-diversity", str(min_diversity), "--out", str(export_dir), "--overwrite", *render_workers, *common])
    _invoke(["gallery", "--out", str(folder / "gallery.html"), *common])

    checkpoint: Path | None = None
    if pretrain_steps > 0:
        if importlib.util.find_spec("torch") is None:
            console.print("[yellow]skipping pretraining: torch is not installed (pip install 'harvest\\[train]')[/]")
        else:
            run_dir = folder / "runs" / f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
            _invoke(["pretrain", "--data", str(export_dir), "--out", str(run_dir), "--method", method,
                     "--steps", str(pretrain_steps), *common])
            checkpoint = run_dir
    if probe_data is not None and checkpoint is not None:
        _invoke(["probe", "--checkpoint", str(checkpoint), "--data", str(probe_data), "--stage", "all",
                 "--out", str(checkpoint / "probe-pretrained.json")])
        _invoke(["probe", "--checkpoint", "random", "--data", str(probe_data), "--stage", "all",
                 "--out", str(checkpoint / "probe-random.json")])
    _invoke(["stats", *common])
    console.print(
        f"[bold green]quickstart done[/] in {time.monotonic() - started:.0f} s: catalog {catalog_path}, "
        f"dataset {export_dir}, gallery {folder / 'gallery.html'}"
        + (f", run {checkpoint}" if checkpoint else "")
    )


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
