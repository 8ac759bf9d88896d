"""The `harvest` command line: parses options and calls one function per command."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable

import typer
from rich.markup import escape

from corpus.errors import CorpusError
from corpus.redaction import redact
from harvester import __version__
from harvester.cli_common import err_console
from harvester.commands import catalog as catalog_commands
from harvester.commands import crawl as crawl_commands
from harvester.commands import curate as curate_commands
from harvester.commands import quickstart as quickstart_commands
from harvester.commands import render as render_commands
from harvester.commands import study as study_commands
from harvester.commands import train as train_commands
from harvester.errors import HarvestError


def _no_value_placeholder_for_flags() -> None:
    """typer 0.29 shows `--resume <bool>` for a flag, which takes no value: show nothing there."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx):  # noqa: ANN001 - click's context
        return None if getattr(self, "is_bool_flag", False) or getattr(self, "count", False) else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_value_placeholder_for_flags()

app = typer.Typer(
    name="harvest",
    help="Collect GLSL image programs, validate them headlessly, export a dataset, pretrain on live renders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"harvest {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """harvest: a corpus of procedural image programs for pretraining vision models."""


for module in (crawl_commands, catalog_commands, render_commands, curate_commands, train_commands, quickstart_commands,
               study_commands):
    module.register(app)


def _say_interrupted(command: Callable[..., object]) -> Callable[..., object]:
    """typer 0.29 ends a command that Ctrl-C stops with exit 130 and not a word: say why it stopped."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return run


def _wrap_commands(group: typer.Typer) -> None:
    for command in group.registered_commands:
        command.callback = _say_interrupted(command.callback)
    for subgroup in group.registered_groups:
        _wrap_commands(subgroup.typer_instance)


_wrap_commands(app)


def _user_errors() -> tuple[type[Exception], ...]:
    """Each layer's own error for a user mistake: all end the command with one line."""
    from pretrain.errors import PretrainError
    from renderer.errors import RenderError

    return HarvestError, CorpusError, RenderError, PretrainError


USER_ERRORS = _user_errors()


def main() -> None:
    # A harvest started from a background shell inherits SIGINT ignored, and Ctrl-C would not stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app(standalone_mode=True)
    except USER_ERRORS as exc:
        err_console.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
