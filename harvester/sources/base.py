"""The one small interface every source implements, and helpers they share.

A source turns a place (an API, a gallery, a repository, a folder of dumps) into a stream of
`SourceItem`s in a fixed order; each item carries the cursor to save once it is stored, so an
interrupted crawl resumes after the last item that was committed. Sources know nothing of SQL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from corpus.records import FetchedProgram, FetchFailure
from harvester.errors import HarvestError

# (catalog source, source id) -> should it be fetched? False for ids the catalog already holds.
WantedFn = Callable[[str, str], bool]


@dataclass(frozen=True)
class AlreadyKnown:
    """An id the catalog holds already, not fetched again (no --refresh)."""

    source: str
    source_id: str


@dataclass(frozen=True)
class SourceItem:
    result: FetchedProgram | FetchFailure | AlreadyKnown
    cursor: dict  # JSON-serialisable; where to resume after this item


class Source(Protocol):
    """What `harvester.crawl.run_crawl` needs from a source."""

    name: str  # the crawler's name, e.g. "shadertoy-public"
    scope: str  # what is crawled (base URL + query, a path, a repository); never holds a secret
    # Set once items() reached the source's real end (not a --pages bound): the next crawl starts over.
    exhausted: bool

    @property
    def total(self) -> int | None:
        """How many items this run expects, once known (for the progress bar)."""
        ...

    def params(self) -> dict:
        """The options of this crawl, for the crawl-run record; never holds a secret."""
        ...

    def items(self, cursor: dict, wanted: WantedFn) -> Iterator[SourceItem]:
        """Items from `cursor` on ({} = the beginning), in a fixed order."""
        ...


class SourceUnavailable(HarvestError):
    """A failure that ends the crawl (wrong key, unreachable host, bot challenge): nothing more can be fetched."""


class RecordError(ValueError):
    """A record that cannot be turned into a program; its message is the failure reason."""


def unix_seconds_to_utc(value: object) -> datetime | None:
    """Shadertoy dates are unix seconds, often as strings; None when absent or nonsense."""
    try:
        seconds = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


K = TypeVar("K")
R = TypeVar("R")


def _done(value: R) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def fetch_in_order(
    keys: Iterable[K],
    fetch: Callable[[K], R],
    concurrency: int,
    skip: Callable[[K], R | None] = lambda key: None,
) -> Iterator[tuple[K, R]]:
    """(key, fetch(key)) in the order of `keys`, fetching up to `concurrency` at once.

    `skip(key)` may return a ready result (e.g. AlreadyKnown) so that key is never fetched. Exceptions
    from `fetch` surface when their key's turn comes. Closing the iterator early cancels what is queued.
    """
    if concurrency <= 1:
        for key in keys:
            ready = skip(key)
            yield key, (ready if ready is not None else fetch(key))
        return
    window: deque[tuple[K, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="harvest-fetch")
    try:
        for key in keys:
            ready = skip(key)
            window.append((key, _done(ready) if ready is not None else pool.submit(fetch, key)))
            while len(window) > concurrency * 2 or (window and window[0][1].done()):
                head_key, head = window.popleft()
                yield head_key, head.result()
        while window:
            head_key, head = window.popleft()
            yield head_key, head.result()
    finally:
        for _, future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
