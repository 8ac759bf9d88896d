"""Shared CLI plumbing: the --db option, the console, and turning user mistakes into one line."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

PLAIN_WIDTH = 240
# Each local worker holds a GL context and up to 2 GB; more than this on one machine is a typo, not a plan.
MAX_WORKERS = 256


def _console(stderr: bool = False) -> Console:
    """A console that never cuts a line: off a terminal rich would wrap everything at 80 columns."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PLAIN_WIDTH
    return console


console = _console()
err_console = _console(stderr=True)

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", envvar="HARVEST_DB", help="Catalog file (default ./harvest.db).", show_default=False),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def open_db(db: Path | None, *, writer: bool):
    """Open the catalog; a command that writes to it takes its writer lock (one writer at a time)."""
    from corpus.db import open_catalog

    return open_catalog(db, writer=writer)


WorkersOption = Annotated[
    Optional[int], typer.Option("--workers", help="Render workers (default: one per core).", show_default=False)
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", help="Where to render: local (a process pool) or ray (Ray actors; needs harvest\\[ray]).")
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option("--ray-address", help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: a private Ray.",
                 show_default=False),
]
RayCpusOption = Annotated[float, typer.Option("--ray-cpus-per-actor", help="CPUs Ray reserves for each render actor.")]
RayGpusOption = Annotated[float, typer.Option("--ray-gpus-per-actor", help="GPUs Ray reserves for each render actor.")]


RenderDeviceOption = Annotated[
    str,
    typer.Option("--render-device", help="EGL device(s) local workers render on: auto (EGL's default), cpu (the "
                 "llvmpipe/softpipe device), N, or N,M,... (workers take turns over them)."),
]


def render_devices(choice: str, kind: str = "local") -> tuple[int, ...]:
    """The EGL device indices `--render-device` names; a device that does not exist is one clear line."""
    from harvester.errors import HarvestError
    from renderer.devices import AUTO, resolve_render_devices

    if kind == "ray" and choice.strip().lower() != AUTO:
        raise HarvestError("--render-device needs --executor local (Ray places its actors on devices itself)")
    return resolve_render_devices(choice)


def executor_spec(kind: str, workers: int | None, ray_address: str | None, cpus: float, gpus: float,
                  render_device: str = "auto"):
    """The ExecutorSpec for these CLI options; a bad combination is one clear line."""
    from harvester.errors import HarvestError
    from renderer.executor_spec import EXECUTOR_KINDS, ExecutorSpec

    if kind not in EXECUTOR_KINDS:
        raise HarvestError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTOR_KINDS)}")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise HarvestError(f"--workers must be between 1 and {MAX_WORKERS}")
    if kind != "ray" and ray_address is not None:
        raise HarvestError("--ray-address needs --executor ray")
    return ExecutorSpec(kind=kind, workers=workers, ray_address=ray_address,
                        ray_cpus_per_actor=cpus, ray_gpus_per_actor=gpus,
                        render_devices=render_devices(render_device, kind))


if TYPE_CHECKING:
    from renderer.executor_spec import ExecutorSpec as ChosenExecutor
else:

    class ChosenExecutor:
        """Annotates the one parameter of a command that `executor_options` fills with an ExecutorSpec (the
        real class is not imported here: the command line starts without the renderer)."""


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# In the order `--help` lists them; `executor_kind` is --executor, the name `executor` being the spec's.
_EXECUTOR_PARAMETERS = (
    _option("workers", WorkersOption, None),
    _option("executor_kind", ExecutorOption, "local"),
    _option("ray_address", RayAddressOption, None),
    _option("ray_cpus_per_actor", RayCpusOption, 1.0),
    _option("ray_gpus_per_actor", RayGpusOption, 0.0),
    _option("render_device", RenderDeviceOption, "auto"),
)


def executor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` the executor options (--workers, --executor, --ray-*, --render-device) where its parameter
    annotated ChosenExecutor is, and call it with the ExecutorSpec they make (a bad combination is one error line).

    Typer (and quickstart) read the options from the signature of what this returns."""
    signature = inspect.signature(command, eval_str=True)
    [spec_name] = [name for name, p in signature.parameters.items() if p.annotation is ChosenExecutor]
    parameters: list[inspect.Parameter] = []
    for name, parameter in signature.parameters.items():
        own = parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        parameters += _EXECUTOR_PARAMETERS if name == spec_name else [own]

    @functools.wraps(command)
    def with_executor(**options: Any) -> Any:
        spec = executor_spec(options.pop("executor_kind"), options.pop("workers"), options.pop("ray_address"),
                             options.pop("ray_cpus_per_actor"), options.pop("ray_gpus_per_actor"),
                             options.pop("render_device"))
        return command(**options, **{spec_name: spec})

    with_executor.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_executor.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_executor
