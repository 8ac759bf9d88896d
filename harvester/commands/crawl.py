"""`harvest crawl`: fetch programs from one source into the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from harvester.cli_common import DbOption, console, err_console, open_db
from harvester.errors import HarvestError
from harvester.progress import ProgressView


def crawl(
    source: str = typer.Option(..., "--source", help="shadertoy-public | glslsandbox | git | local", show_default=False),
    db: DbOption = None,
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="SHADERTOY_API_KEY", help="Shadertoy API key (or SHADERTOY_API_KEY).", show_default=False
    ),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="API or gallery root (shadertoy-public, glslsandbox).", show_default=False),
    query: Optional[str] = typer.Option(None, "--query", help="Shadertoy search terms instead of every id.", show_default=False),
    sort: Optional[str] = typer.Option(None, "--sort", help="Shadertoy order: name, love, popular, newest, hot.", show_default=False),
    pages: Optional[int] = typer.Option(None, "--pages", help="Most pages to read (glslsandbox gallery, Shadertoy query).", show_default=False),
    url: Optional[str] = typer.Option(None, "--url", help="git: a repository URL or local repository folder.", show_default=False),
    path: Optional[Path] = typer.Option(None, "--path", help="local: a file or folder of dumps or programs.", show_default=False),
    limit: Optional[int] = typer.Option(None, "--limit", help="Stop after N programs fetched or failed.", show_default=False),
    refresh: bool = typer.Option(False, "--refresh", help="Fetch again ids the catalog already holds."),
    rate: float = typer.Option(2.0, "--rate", help="Requests per second per host (0: no limit, for local benchmarks)."),
    concurrency: int = typer.Option(4, "--concurrency", help="Requests in flight at once."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for a server before retrying."),
    allow_redirects_to_other_hosts: bool = typer.Option(
        False, "--allow-cross-host-redirects", help="Follow redirects to another host (each is logged)."
    ),
) -> None:
    """Fetch programs from one source into the catalog; rerun the same command to resume."""
    from harvester.crawl import CrawlOptions, run_crawl, summary_table
    from harvester.http import HttpPolicy, PoliteClient, register_secret
    from harvester.sources import SourceSettings, open_source

    register_secret(api_key)  # before anything can log or fail
    if limit is not None and limit < 1:
        raise HarvestError("--limit must be at least 1")
    if rate < 0:
        raise HarvestError("--rate must be 0 (no limit) or more")
    if concurrency < 1:
        raise HarvestError("--concurrency must be at least 1")
    if timeout <= 0:
        raise HarvestError("--timeout must be more than 0 seconds")
    settings = SourceSettings(
        api_key=api_key, base_url=base_url, query=query, sort=sort, pages=pages, url=url, path=path,
        concurrency=concurrency,
    )
    policy = HttpPolicy(
        rate_per_host=rate, concurrency=concurrency, read_timeout_s=timeout,
        allow_cross_host_redirects=allow_redirects_to_other_hosts,
    )
    catalog = open_db(db, writer=True)
    try:
        with PoliteClient(policy, secrets=[api_key]) as client:
            crawler = open_source(source, settings, client, catalog.folder / ".harvest-cache")
            with ProgressView(f"crawl {source}", err_console, unit="items") as view:
                summary = run_crawl(catalog, crawler, CrawlOptions(limit=limit, refresh=refresh),
                                    on_progress=lambda p: view.update(p.done, p.total, p.counts))
        console.print(summary_table(summary))
    finally:
        catalog.close()


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl)
