"""Running a crawl from tests the way the CLI does, without the CLI."""

from __future__ import annotations

from sqlmodel import Session, select

from corpus.models import CrawlFailure, CrawlRun, Program, ProgramPass
from harvester.crawl import CrawlOptions, CrawlSummary, run_crawl
from harvester.http import HttpPolicy, PoliteClient
from harvester.sources import SourceSettings, open_source

FAST_POLICY = HttpPolicy(rate_per_host=0, retries=2, backoff_base_s=0.01, backoff_max_s=0.05, read_timeout_s=0.5,
                         connect_timeout_s=0.5, total_timeout_s=5, max_bytes=100_000)


def crawl(catalog, name: str, settings: SourceSettings, options: CrawlOptions | None = None,
          policy: HttpPolicy = FAST_POLICY) -> CrawlSummary:
    with PoliteClient(policy, secrets=[settings.api_key]) as client:
        source = open_source(name, settings, client, catalog.folder / ".harvest-cache")
        return run_crawl(catalog, source, options or CrawlOptions())


def programs(catalog) -> list[Program]:
    with Session(catalog.engine) as s:
        return list(s.exec(select(Program).order_by(Program.id)).all())


def passes_of(catalog, program_id: int) -> list[ProgramPass]:
    with Session(catalog.engine) as s:
        return list(s.exec(select(ProgramPass).where(ProgramPass.program_id == program_id).order_by(ProgramPass.id)).all())


def failures(catalog) -> list[CrawlFailure]:
    with Session(catalog.engine) as s:
        return list(s.exec(select(CrawlFailure).order_by(CrawlFailure.id)).all())


def runs(catalog) -> list[CrawlRun]:
    with Session(catalog.engine) as s:
        return list(s.exec(select(CrawlRun).order_by(CrawlRun.id)).all())
