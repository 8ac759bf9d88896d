"""`harvest score`, `harvest dedup`, `harvest export` and `harvest gallery`: options in, one call out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from corpus.wording import counted
from harvester.cli_common import (
    ChosenExecutor,
    DbOption,
    console,
    err_console,
    executor_options,
    open_db,
)
from harvester.media_option import MediaDirOption, with_media
from harvester.progress import ProgressView, StepsProgress


def _cache(catalog) -> Path:
    """The Mesa shader cache `harvest validate` fills: programs compiled there compile ~8x faster here."""
    from corpus.validation import shader_cache_dir

    return shader_cache_dir(catalog)


def _score_with_progress(catalog, program_ids: list[int] | None, executor, rescore: bool = False):
    from corpus.scoring import score_catalog

    with ProgressView("scoring", err_console) as view:
        summary = score_catalog(catalog, program_ids, executor=executor, rescore=rescore,
                                shader_cache_dir=_cache(catalog),
                                on_event=lambda event: view.update(event.done, event.total, event.counts))
    if summary.interrupted:
        raise _interrupted("scores")
    return summary


def _interrupted(what: str) -> typer.Exit:
    err_console.print(f"interrupted: the {what} finished so far are saved; run the same command again to go on")
    return typer.Exit(130)


def _print_thresholds(catalog) -> None:
    from corpus.scoring import threshold_counts

    with catalog.session() as session:
        total, counts = threshold_counts(session)
    table = Table(title=f"--min-diversity keeps (of {total} scored, ok, non-duplicate programs)", title_justify="left")
    table.add_column("threshold", justify="right")
    table.add_column("programs kept", justify="right")
    table.add_column("share", justify="right")
    for threshold, kept in counts.items():
        table.add_row(f"{threshold:.1f}", str(kept), f"{kept / total:.0%}" if total else "-")
    console.print(table)


@executor_options
def score(
    db: DbOption = None,
    executor: ChosenExecutor = None,
    rescore: bool = typer.Option(False, "--rescore", help="Score every ok program again, not only unscored ones."),
    media_dir: MediaDirOption = None,
) -> None:
    """Render ok programs at several times and mouse positions and store diversity, colorfulness and fill."""
    catalog = open_db(db, writer=True)
    spec = with_media(executor, media_dir)
    summary = _score_with_progress(catalog, None, spec, rescore)
    failed = ", ".join(f"{k}: {v}" for k, v in sorted(summary.failed.items())) or "none"
    rate = summary.scored / summary.seconds if summary.seconds else 0.0
    if summary.scored == 0 and not summary.failed:
        console.print("nothing to score: every ok program has a current score (validation scores them as it goes)")
    else:
        console.print(f"scored {counted(summary.scored, 'program')} in {summary.seconds:.1f} s ({rate:.1f}/s); failed to render: {failed}")
    _print_thresholds(catalog)


@executor_options
def dedup(
    db: DbOption = None,
    executor: ChosenExecutor = None,
    images: bool = typer.Option(True, "--images/--no-images", help="Also compare rendered frames (perceptual hashes)."),
    media_dir: MediaDirOption = None,
) -> None:
    """Mark near duplicates (code MinHash, frame hashes); each cluster keeps its most liked, then oldest program."""
    catalog = open_db(db, writer=True)
    _run_dedup(catalog, with_media(executor, media_dir), images)


def _run_dedup(catalog, executor, images: bool = True) -> None:
    from corpus.dedup import dedup_catalog

    hashed = 0
    with ProgressView("hashing frames", err_console) as view:

        def advance(count: int) -> None:
            nonlocal hashed
            hashed += count
            view.update(hashed)

        summary = dedup_catalog(catalog, executor=executor, images=images, progress=advance,
                                shader_cache_dir=_cache(catalog))
    marked = sum(summary.near_duplicates.values())
    console.print(
        f"{counted(summary.programs, 'program')} compared: {counted(summary.code_pairs, 'code pair')}, "
        f"{counted(summary.image_pairs, 'image pair')} ({counted(summary.image_programs, 'program')} hashed, "
        f"{summary.image_rendered} drawn now, the rest when validated); "
        f"{counted(marked, 'near duplicate')} in {counted(summary.clusters, 'cluster')} "
        f"(code: {summary.near_duplicates.get('code', 0)}, image: {summary.near_duplicates.get('image', 0)})"
    )


@executor_options
def export(
    db: DbOption = None,
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder (default: ./export next to the catalog).", show_default=False),
    min_diversity: Optional[float] = typer.Option(None, "--min-diversity", help="Keep programs whose diversity is at least this (0-1)."),
    license: Optional[str] = typer.Option(None, "--license", help="Keep only these licence ids, comma-separated."),
    commercial_safe: bool = typer.Option(False, "--commercial-safe", help="Keep only licences that allow commercial use."),
    source: Optional[str] = typer.Option(None, "--source", help="Keep only programs from this source."),
    format: str = typer.Option("webdataset", "--format", help="webdataset (tar shards) or jsonl (code in the manifest)."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Programs per shard."),
    images_per_program: int = typer.Option(0, "--images-per-program", help="Render this many frames per program into the dataset."),
    size: int = typer.Option(256, "--size", help="Side of the rendered images in pixels."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Export at most this many programs (a seeded sample)."),
    seed: int = typer.Option(0, "--seed", help="Seed for --limit sampling and image frame times."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing, non-empty output folder."),
    keep_duplicates: bool = typer.Option(False, "--keep-duplicates", help="Also export exact and near duplicates."),
    exact_only: bool = typer.Option(False, "--exact-only", help="Keep only programs validated without stand-ins for their media channels."),
    media_dir: MediaDirOption = None,
    executor: ChosenExecutor = None,
) -> None:
    """Write a licence-aware dataset: WebDataset shards, manifest.jsonl, ATTRIBUTION.md and export.json."""
    from corpus.export import ExportOptions, export_catalog

    options = ExportOptions(
        out=out, min_diversity=min_diversity,
        licenses=tuple(x for x in license.split(",") if x.strip()) if license is not None else None,
        commercial_safe=commercial_safe, source=source, format=format, shard_size=shard_size,
        images_per_program=images_per_program, image_size=size, limit=limit, seed=seed, overwrite=overwrite,
        keep_duplicates=keep_duplicates, exact_only=exact_only,
        executor=with_media(executor, media_dir),
    )
    catalog = open_db(db, writer=True)
    options = replace(options, shader_cache_dir=_cache(catalog))

    def refresh_dedup() -> None:
        from corpus.dedup import last_run

        last = last_run(catalog)
        console.print("near duplicates: the catalog changed since the last dedup (or it never ran); running it now")
        _run_dedup(catalog, options.executor, images=last.images if last is not None else True)

    def score_missing(ids: list[int]) -> int:
        console.print(f"scoring {counted(len(ids), 'program')} that have no score yet")
        return _score_with_progress(catalog, ids, options.executor).scored

    try:
        # Drawn from the first event on: scoring and dedup on the way draw their own views first.
        with StepsProgress(err_console, {"export": "exporting"}) as view:
            summary = export_catalog(catalog, options, score_missing=score_missing, refresh_dedup=refresh_dedup,
                                     on_event=lambda event: view(event.stage, event.done, event.total, event.counts))
    except KeyboardInterrupt:
        err_console.print("interrupted: nothing of this export was written; the previous one is untouched")
        raise typer.Exit(130) from None
    table = Table(title="selection", title_justify="left")
    table.add_column("step")
    table.add_column("removed", justify="right")
    table.add_column("remaining", justify="right")
    for step in summary.steps:
        table.add_row(step.name, "" if step.name == "catalog" else str(step.removed), str(step.remaining))
    console.print(table)
    if options.min_diversity is not None or summary.scored:
        _print_thresholds(catalog)
    console.print(summary.describe(), highlight=False)


def gallery(
    db: DbOption = None,
    out: Path = typer.Option(Path("gallery.html"), "--out", help="The HTML file to write."),
    verdict: Optional[str] = typer.Option(None, "--verdict", help="Only programs with this verdict (ok, blank, pending, ...)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many programs per verdict."),
    export: Optional[Path] = typer.Option(
        None, "--export", help="Mark the programs of this export (default: ./export beside the catalog, if it is one of it).",
        show_default=False),
) -> None:
    """Write one static HTML page with every program's thumbnail, licence, verdict and scores."""
    from corpus.gallery import write_gallery

    catalog = open_db(db, writer=False)
    count = write_gallery(catalog, out, verdict=verdict, limit=limit, export=export)
    console.print(f"wrote {count} programs to {out}")


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("dedup")(dedup)
    app.command("export")(export)
    app.command("gallery")(gallery)
