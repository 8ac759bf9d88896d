"""Shared CLI plumbing: the --db option, the console, and turning user mistakes into one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", envvar="HARVEST_DB", help="Catalog file (default ./harvest.db).", show_default=False),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def open_db(db: Path | None):
    from corpus.db import open_catalog

    return open_catalog(db)
