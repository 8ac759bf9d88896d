"""`harvest validate` (judge every pending program) and `harvest render` (draw one program to a PNG)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from corpus.wording import counted
from harvester.cli_common import (
    ChosenExecutor,
    DbOption,
    RenderDeviceOption,
    console,
    err_console,
    executor_options,
    open_db,
    render_devices,
)
from harvester.errors import HarvestError
from harvester.media_option import MediaDirOption, checked_media_dir, with_media
from harvester.progress import ProgressView

VERDICT_ORDER = ("ok", "blank", "compile_error", "link_error", "timeout", "crash", "needs_input", "unsupported")


def _verdict_table(counts: dict[str, int], title: str) -> Table:
    total = sum(counts.values()) or 1
    table = Table(title=title, title_justify="left")
    table.add_column("verdict")
    table.add_column("programs", justify="right")
    table.add_column("share", justify="right")
    for name in VERDICT_ORDER:
        if counts.get(name):
            table.add_row(name, str(counts[name]), f"{100.0 * counts[name] / total:.1f} %")
    return table


def _print_render_devices(spec) -> None:
    """Say once which GL renderer draws, so llvmpipe standing in for a GPU is plain to see."""
    from renderer.devices import describe_render_devices

    if spec.kind != "local":
        return  # Ray's actors pick their devices on their own nodes
    for line in describe_render_devices(spec.render_devices):
        err_console.print(f"rendering on: {line}", highlight=False, markup=False)


@executor_options
def validate(
    db: DbOption = None,
    size: int = typer.Option(128, "--size", help="Render size in pixels (square)."),
    frames: int = typer.Option(4, "--frames", help="Frames per program, at times drawn from U(0.1, 10) s."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds a program may take (compile and all frames)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Validate at most this many programs."),
    revalidate: bool = typer.Option(False, "--revalidate", help="Also redo programs that already have a verdict."),
    source: Optional[str] = typer.Option(None, "--source", help="Only programs from this source."),
    executor: ChosenExecutor = None,
    seed: int = typer.Option(0, "--seed", help="Run seed mixed into every program's frame times and mouse."),
    score: bool = typer.Option(True, "--score/--no-score", help="Also draw the scoring and near-duplicate frames of ok programs in the same compile, and store their scores and signatures."),
    media_dir: MediaDirOption = None,
) -> None:
    """Render every program without a current verdict and store ok / blank / compile_error / ... for each."""
    from corpus.validation import ValidateOptions, shader_cache_dir
    from corpus.validation import validate as run_validation

    if not 8 <= size <= 4096:
        raise HarvestError("--size must be between 8 and 4096")
    if not 1 <= frames <= 64:
        raise HarvestError("--frames must be between 1 and 64")
    if timeout <= 0:
        raise HarvestError("--timeout must be positive")
    if limit is not None and limit < 0:
        raise HarvestError("--limit must not be negative")
    spec = with_media(executor, media_dir)
    options = ValidateOptions(
        size=size, frames=frames, timeout_s=timeout, limit=limit, revalidate=revalidate, source=source, seed=seed,
        score=score, signatures=score,
    )
    catalog = open_db(db, writer=True)
    _print_render_devices(spec)  # after the catalog opened: a catalog error stays the only line
    view = ProgressView("validating", err_console, order=VERDICT_ORDER)

    def on_event(event) -> None:
        view.update(event.done, event.total, event.counts)

    try:
        with spec.build(shader_cache_dir(catalog)) as pool, view:
            report = run_validation(catalog, pool, options, on_event=on_event)
    finally:
        catalog.close()
    if report.selected == 0:
        console.print("nothing to validate: every program has a current verdict (use --revalidate to redo them)")
        return
    console.print(_verdict_table(dict(report.counts), f"verdicts of this run ({counted(report.done, 'program')})"))
    console.print(f"{report.done} of {counted(report.selected, 'program')} in {report.seconds:.1f} s ({report.rate:.2f} programs/s)"
                  + (f"; {counted(report.scored, 'ok program')} scored on the way" if report.scored else ""))
    if report.interrupted:
        err_console.print("interrupted: the verdicts above are saved; run `harvest validate` again to resume")
        raise typer.Exit(130)


def _parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text) or re.fullmatch(r"\s*(\d+)\s*", text)
    if not match:
        raise HarvestError(f"--size must look like 512x288 or 256, not {text!r}")
    width = int(match.group(1))
    height = int(match.group(2)) if match.lastindex == 2 else width
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise HarvestError("--size must be between 1 and 8192 pixels a side")
    return width, height


def _parse_mouse(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise HarvestError(f"--mouse must be four numbers X,Y,Z,W, not {text!r}")
    return values  # type: ignore[return-value]


def _program_from_file(path: Path, dialect: Optional[str]):
    from corpus.normalize import sniff_dialect
    from renderer.jobs import DIALECTS, ProgramSource

    if not path.is_file():
        raise HarvestError(f"{path} is not a file")
    if path.suffix.lower() == ".json":
        return _shadertoy_json_program(path)
    code = path.read_bytes().decode("utf-8", errors="replace")
    chosen = dialect or sniff_dialect(code)
    if chosen not in DIALECTS:
        raise HarvestError(f"unknown dialect {chosen!r}; choose one of: {', '.join(DIALECTS)}")
    return ProgramSource(dialect=chosen, image=code)


def _shadertoy_json_program(path: Path):
    """A Shadertoy record (API `{"Shader": ...}` or the site's export), every pass of it."""
    import json

    from corpus.render_source import fetched_program_source
    from harvester.sources.base import RecordError
    from harvester.sources.shadertoy_format import program_from_shader

    try:
        record = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise HarvestError(f"{path.name} is not valid JSON: {exc}") from None
    shader = record.get("Shader", record) if isinstance(record, dict) else record
    try:
        return fetched_program_source(program_from_shader(shader))
    except RecordError as exc:
        raise HarvestError(f"{path.name}: {exc}") from None


def _program_from_catalog(db: Path | None, program_id: int, dialect: Optional[str]):
    from dataclasses import replace

    from corpus.render_source import load_program_sources

    catalog = open_db(db, writer=False)
    try:
        with catalog.session() as session:
            sources = load_program_sources(session, [program_id])
    finally:
        catalog.close()
    if program_id not in sources:
        raise HarvestError(f"no program with id {program_id} in the catalog")
    source = sources[program_id]
    return replace(source, dialect=dialect) if dialect else source


def write_png_atomically(pixels, out: Path) -> None:
    from renderer.images import png_bytes

    data = png_bytes(pixels)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


MAX_FRAME = 1_000_000


def _start_time(time_s: float | None, frame: int | None) -> float:
    """The first frame's time from --time or --frame (frame N is at N/60 s, so its iFrame is N)."""
    from renderer.passes import FRAME_RATE

    if time_s is not None and frame is not None:
        raise HarvestError("give --time or --frame, not both")
    if frame is not None:
        if not 0 <= frame <= MAX_FRAME:
            raise HarvestError(f"--frame must be between 0 and {MAX_FRAME}")
        return frame / FRAME_RATE
    return time_s or 0.0


def render(
    program_id: Optional[int] = typer.Argument(None, metavar="[ID]", help="Catalog id of the program to draw."),
    file: Optional[Path] = typer.Option(None, "--file", help="Draw the program in this file instead of a catalog one."),
    dialect: Optional[str] = typer.Option(None, "--dialect", help="shadertoy, glslsandbox, bookofshaders, twigl or raw (default: sniffed)."),
    time_s: Optional[float] = typer.Option(None, "--time", help="Time of the first frame, in seconds (default 0)."),
    frame: Optional[int] = typer.Option(None, "--frame", help="Frame number of the first frame (iFrame; iTime = N/60). A multi-pass program is simulated from frame 0 up to it."),
    mouse: Optional[str] = typer.Option(None, "--mouse", help="iMouse as X,Y,Z,W in pixels (default 0,0,0,0)."),
    size: str = typer.Option("512x288", "--size", help="WIDTHxHEIGHT in pixels."),
    frames: int = typer.Option(1, "--frames", help="Frames to draw; several make a grid."),
    interval: float = typer.Option(0.5, "--interval", help="Seconds between the frames of a grid."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds the program may take in all."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    db: DbOption = None,
    render_device: RenderDeviceOption = "auto",
    media_dir: MediaDirOption = None,
) -> None:
    """Draw one program to a PNG, as the website shows it when it first loads (mouse untouched)."""
    from dataclasses import replace

    from renderer.executors import LocalExecutor, default_workers
    from renderer.frames import first_load_frames
    from renderer.images import grid
    from renderer.jobs import RenderJob, Verdict

    if (program_id is None) == (file is None):
        raise HarvestError("give either a program ID or --file PATH")
    if out.suffix.lower() != ".png":
        raise HarvestError("--out must name a .png file")
    if not out.parent.is_dir():
        raise HarvestError(f"folder {out.parent} does not exist")
    if not 1 <= frames <= 64:
        raise HarvestError("--frames must be between 1 and 64")
    if timeout <= 0:
        raise HarvestError("--timeout must be positive")
    width, height = _parse_size(size)
    media = checked_media_dir(media_dir)
    specs = first_load_frames(frames, start=_start_time(time_s, frame), interval=interval)
    if mouse is not None:
        position = _parse_mouse(mouse)
        specs = tuple(replace(spec, mouse=position) for spec in specs)
    source = _program_from_file(file, dialect) if file is not None else _program_from_catalog(db, program_id, dialect)
    job = RenderJob(key=0, program=source, frames=specs, width=width, height=height, timeout_s=timeout, keep_frames=True,
                    media_dir=media)
    # No memory cap here: a large --size needs big framebuffers, and the user is watching. Large
    # frames make drawing, not compiling, the cost: keep LLVM's optimisations.
    devices = render_devices(render_device)
    with LocalExecutor(workers=1, threads_per_worker=default_workers(), memory_limit_mb=None, fast_compile=False,
                       device_indices=devices) as pool:
        result = next(iter(pool.run([job])))
    if result.verdict not in (Verdict.OK, Verdict.BLANK):
        raise HarvestError(f"{result.verdict}: {result.reason}")  # a compile error's reason names its line
    write_png_atomically(grid(result.frames or []), out)
    timing = ", ".join(f"{ms:.0f}" for ms in result.render_ms)
    if source.multipass:
        timing += f" (simulated from frame 0 to {specs[-1].frame})"
    console.print(f"wrote {out} ({width}x{height}, {frames} frame(s); compile {result.compile_ms:.0f} ms, render {timing} ms)")
    if result.verdict == Verdict.BLANK:
        err_console.print(f"warning: blank: {result.reason}")
    for standin in result.standins or []:
        err_console.print(f"stand-in: {standin.pass_kind} iChannel{standin.channel} ({standin.kind}"
                          f"{' ' + standin.media if standin.media else ''}): {standin.reason}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("render")(render)
