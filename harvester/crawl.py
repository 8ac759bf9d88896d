"""The crawl driver: one source in, catalog rows out, resumable.

It opens a crawl run, loads the (source, scope) cursor, pulls items from the source, ingests each
program or records each failure, and commits in small batches together with the cursor of the last
item in the batch. A crash (even `kill -9`) loses at most the uncommitted batch, whose cursor was not
saved either, so rerunning the same command neither duplicates nor skips anything.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.table import Table
from sqlmodel import Session

from corpus.db import Catalog
from corpus.ingest import (
    IngestOutcome,
    IngestResult,
    end_run,
    ingest_or_fail,
    known_source_ids,
    load_cursor,
    record_failure,
    save_cursor,
    start_run,
)
from corpus.models import CrawlRun
from corpus.records import FetchedProgram, FetchFailure
from corpus.redaction import redact, redact_exception
from harvester.errors import HarvestError
from harvester.sources.base import AlreadyKnown, Source, SourceItem

log = logging.getLogger("harvester.crawl")


@dataclass(frozen=True)
class CrawlOptions:
    limit: int | None = None  # stop after this many programs fetched or failed (known ids not counted)
    refresh: bool = False  # fetch ids the catalog already holds
    batch_size: int = 100
    batch_seconds: float = 5.0


@dataclass(frozen=True)
class CrawlProgress:
    """Where a crawl stands, for whoever draws it (the driver draws nothing)."""

    done: int  # items fetched, failed or skipped
    total: int | None  # when the source knows it
    counts: dict[str, int]


@dataclass
class CrawlSummary:
    run_id: int
    source: str
    scope: str
    status: str = "running"  # finished | failed | interrupted
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    skipped: int = 0  # already in the catalog, not fetched
    failed: int = 0
    failure_reasons: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    message: str = ""
    limit_reached: bool = False

    @property
    def processed(self) -> int:
        return self.new + self.updated + self.unchanged + self.duplicates + self.failed

    @property
    def programs_per_s(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, outcome: IngestOutcome) -> None:
        if outcome == IngestOutcome.NEW:
            self.new += 1
        elif outcome == IngestOutcome.UPDATED:
            self.updated += 1
        elif outcome == IngestOutcome.UNCHANGED:
            self.unchanged += 1
        else:
            self.duplicates += 1


def _reason_key(reason: str) -> str:
    """Group failure reasons for the summary: the first clause, without item-specific detail."""
    head = reason.split(":")[0] if reason.startswith(("malformed JSON", "API error", "could not be stored")) else reason
    return head if len(head) <= 100 else head[:99] + "…"


class _Known:
    """Which (source, id) pairs the catalog already holds, loaded once per catalog source."""

    def __init__(self, session: Session, refresh: bool) -> None:
        self._session = session
        self._refresh = refresh
        self._ids: dict[str, set[str]] = {}

    def load(self, source: str) -> set[str]:
        if source not in self._ids:
            self._ids[source] = known_source_ids(self._session, source)
        return self._ids[source]

    def wanted(self, source: str, source_id: str) -> bool:
        """Sources call this from the driver's thread, between items."""
        return self._refresh or source_id not in self.load(source)

    def add(self, source: str, source_id: str) -> None:
        self._ids.setdefault(source, set()).add(source_id)


def _write_counts(run: CrawlRun, summary: CrawlSummary) -> None:
    run.new, run.updated, run.unchanged = summary.new, summary.updated, summary.unchanged
    run.duplicates, run.failed = summary.duplicates, summary.failed


class _RunRecord:
    """One crawl run as the catalog records it: items ingested since the last commit, the cursor to resume from,
    the counts. Committing writes them together, so a resumed crawl never skips or repeats an item."""

    def __init__(self, session: Session, source: Source, scope: str, options: CrawlOptions) -> None:
        self.session, self.source_name, self.scope, self.options = session, source.name, scope, options
        self.started = time.monotonic()
        params = source.params() | {"limit": options.limit, "refresh": options.refresh}
        self.run = start_run(session, source.name, scope, params)
        self.cursor = load_cursor(session, source.name, scope)
        session.commit()
        self.summary = CrawlSummary(run_id=self.run.id, source=source.name, scope=scope)
        self.known = _Known(session, options.refresh)
        self.pending = 0
        self.last_commit = time.monotonic()
        self.last_cursor: dict | None = None

    def ingest(self, item: SourceItem) -> None:
        _ingest_item(self.session, self.run, item, self.summary, self.known)
        self.last_cursor = item.cursor
        self.pending += 1
        if self.pending >= self.options.batch_size or time.monotonic() - self.last_commit >= self.options.batch_seconds:
            self.commit()

    def commit(self) -> None:
        if self.last_cursor is not None:
            save_cursor(self.session, self.source_name, self.scope, self.last_cursor)
        _write_counts(self.run, self.summary)
        self.session.add(self.run)
        self.session.commit()
        self.pending, self.last_commit = 0, time.monotonic()

    def finish(self, status: str, message: str = "") -> None:
        self.summary.status, self.summary.message = status, redact(message)
        self.summary.elapsed_s = time.monotonic() - self.started
        end_run(self.run, status, message)
        self.commit()

    def abandon(self, exc: BaseException) -> None:
        """Something unexpected (a bug, a database error): drop the uncommitted batch, keep the run's record."""
        self.session.rollback()
        self.summary.status = "failed"
        run = self.session.get(CrawlRun, self.run.id) or self.run
        end_run(run, "failed", f"{type(exc).__name__}: {exc}")
        self.session.add(run)
        self.session.commit()


def run_crawl(
    catalog: Catalog,
    source: Source,
    options: CrawlOptions = CrawlOptions(),
    *,
    on_progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlSummary:
    """Crawl `source` into `catalog` and return what happened. Fatal source errors are re-raised as
    HarvestError after the work done so far is committed and the run is marked failed."""
    scope = redact(source.scope)  # sources give a public scope already; this keeps any slip out of the catalog
    with Session(catalog.engine, expire_on_commit=False) as session:
        record = _RunRecord(session, source, scope, options)
        iterator = source.items(record.cursor, record.known.wanted)
        try:
            exhausted = _ingest_items(iterator, record, source, on_progress)
        except HarvestError as exc:
            _close(iterator)
            redact_exception(exc)  # whoever prints it next (the CLI) sees no secret a server quoted back
            record.finish("failed", str(exc))
            raise
        except KeyboardInterrupt:
            _close(iterator)
            record.finish("interrupted", "interrupted by the user")
            raise
        except BaseException as exc:
            _close(iterator)
            redact_exception(exc)
            record.abandon(exc)
            raise
        _close(iterator)
        if exhausted and source.exhausted:
            record.last_cursor = {}  # a finished crawl starts from the beginning next time (known ids are skipped)
        message = f"stopped at --limit {options.limit}" if record.summary.limit_reached else ""
        record.finish("finished", message)
    return record.summary


def _ingest_items(iterator: Iterator[SourceItem], record: _RunRecord, source: Source,
                  on_progress: Callable[[CrawlProgress], None] | None) -> bool:
    """Ingest the source's items until it has no more (True) or --limit is reached (False)."""
    options, summary = record.options, record.summary
    while True:
        if options.limit is not None and summary.processed >= options.limit:
            summary.limit_reached = True
            return False
        try:
            item = next(iterator)
        except StopIteration:
            return True
        record.ingest(item)
        if on_progress is not None:
            on_progress(_progress(source, options, summary))


def _progress(source: Source, options: CrawlOptions, summary: CrawlSummary) -> CrawlProgress:
    total = source.total
    if options.limit is not None and total is not None:
        total = min(total, options.limit + summary.skipped)
    return CrawlProgress(done=summary.processed + summary.skipped, total=total,
                         counts={"new": summary.new, "updated": summary.updated, "failed": summary.failed})


def _close(iterator) -> None:
    close: Callable[[], None] | None = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing must not hide the error that got us here
            log.debug("closing the source failed", exc_info=True)


def _ingest_item(session: Session, run: CrawlRun, item: SourceItem, summary: CrawlSummary, known: _Known) -> None:
    fetched = item.result
    result = ingest_or_fail(session, fetched, run.source) if isinstance(fetched, FetchedProgram) else fetched
    if isinstance(result, IngestResult):
        summary.count(result.outcome)
        known.add(fetched.source, fetched.source_id)
    elif isinstance(result, AlreadyKnown):
        summary.skipped += 1
    elif isinstance(result, FetchFailure):
        record_failure(session, run, result)
        summary.failed += 1
        summary.failure_reasons[_reason_key(redact(result.reason))] += 1
    else:  # a source broke the protocol: that is a bug, not bad input
        raise TypeError(f"source yielded {type(result).__name__}")


def summary_table(summary: CrawlSummary, top_reasons: int = 8) -> Table:
    """The crawl's end-of-run table: counts, then the commonest failure reasons."""
    table = Table(title=f"crawl {summary.source} · {summary.status}", title_justify="left")
    table.add_column("outcome")
    table.add_column("programs", justify="right")
    for label, value in (
        ("new", summary.new),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("duplicates (linked)", summary.duplicates),
        ("skipped (already in catalog)", summary.skipped),
        ("failed", summary.failed),
    ):
        table.add_row(label, str(value))
    for reason, count in summary.failure_reasons.most_common(top_reasons):
        table.add_row(f"  [dim]{reason}[/]", f"[dim]{count}[/]")
    table.caption = f"{summary.processed} in {summary.elapsed_s:.1f} s ({summary.programs_per_s:.1f}/s)" + (
        f" · {summary.message}" if summary.message else ""
    )
    return table
