"""`harvest db upgrade` and `harvest stats`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from corpus.wording import counted
from harvester.cli_common import DbOption, console, open_db

db_app = typer.Typer(help="Catalog maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Bring the catalog's schema to the newest migration (also done automatically on first use)."""
    from corpus.db import open_catalog, upgrade

    catalog = open_catalog(db, migrate=False, writer=True)
    before, after = upgrade(catalog.engine)
    if before == after:
        console.print(f"{catalog.path}: schema already at revision {after}")
    else:
        console.print(f"{catalog.path}: schema upgraded from {before or 'empty'} to {after}")


def stats(
    db: DbOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Counts by source, dialect, licence and verdict (a program with no verdict yet is `pending`)."""
    from corpus.stats import catalog_stats

    catalog = open_db(db, writer=False)
    with catalog.session() as session:
        result = catalog_stats(session)
    if as_json:
        print(json.dumps(result.to_json(), sort_keys=True))
        return
    if result.programs == 0:
        console.print(f"{catalog.path} holds no programs yet: `harvest crawl --source local --path DIR` "
                      "(or another source) adds some", highlight=False)
        return
    console.print(
        f"[bold]{counted(result.programs, 'program')}[/] in {catalog.path} "
        f"({result.exact_duplicates} exact duplicates, {result.near_duplicates} near duplicates)"
    )
    for title, counts in (
        ("source", result.by_source),
        ("dialect", result.by_dialect),
        ("licence", result.by_license),
        ("verdict", result.by_status),
    ):
        table = Table(title=f"by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("programs", justify="right")
        for key, count in counts.items():
            table.add_row(key, str(count))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("stats")(stats)
