"""The run loop every executor shares: hand jobs to idle slots, collect results, replace the dead.

An executor (a local process pool, Ray actors) only says how to start a slot, send it a job, wait
for what its slots did and replace one; the order of jobs, retries of jobs that never started, and
what happens to running jobs when the consumer walks away are decided here, once.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from renderer.jobs import RenderJob, RenderResult

_END = object()


class Slot(Protocol):
    """One render worker as the scheduler sees it."""

    ready: bool
    job: RenderJob | None


class PooledExecutor:
    """Base of the executors: subclasses fill `_pool` and implement the four hooks below."""

    _pool: list
    workers: int

    def _fill_pool(self) -> None:
        raise NotImplementedError

    def _submit(self, slot, job: RenderJob) -> bool:
        """Start `job` on `slot`; False if it never started there (it is retried on another slot)."""
        raise NotImplementedError

    def _collect(self, retry: collections.deque[RenderJob]) -> Iterator[RenderResult]:
        """Wait (about a second at most) for slots to finish or pass their deadlines."""
        raise NotImplementedError

    def _replace(self, slot) -> None:
        raise NotImplementedError

    def fit_to(self, jobs: int) -> None:
        """Start no more workers than there are jobs (20 GL contexts for 3 programs help nobody)."""
        if not self._pool:
            self.workers = max(1, min(self.workers, jobs))

    def _check_usable(self) -> None:
        """Raise if this executor can run no more jobs (closed)."""

    def run(self, jobs: Iterable[RenderJob | None], on_wait: Callable[[], None] | None = None) -> Iterator[RenderResult]:
        """One result per job, in any order; jobs are pulled from `jobs` only as slots free up, and a None
        pulled from it starts nothing (it is asked again after the next wait).

        `on_wait` is called after every wait, result or none, so a consumer can act on time (save
        what it holds) even while every slot is busy with a slow program.
        """
        self._check_usable()
        queue = iter(jobs)
        retry: collections.deque[RenderJob] = collections.deque()
        exhausted = False
        self._fill_pool()
        try:
            while True:
                for slot in list(self._pool):
                    if not slot.ready or slot.job is not None or (exhausted and not retry):
                        continue
                    job = retry.popleft() if retry else next(queue, _END)
                    if job is _END:
                        exhausted = True
                        continue
                    if job is None:  # the consumer holds new jobs back until it has taken a result
                        continue
                    if not self._submit(slot, job):
                        retry.append(job)
                if exhausted and not retry and all(slot.job is None for slot in self._pool):
                    return
                yield from self._collect(retry)
                if on_wait is not None:
                    on_wait()
        finally:
            # Jobs still running belong to a run nobody listens to any more (Ctrl-C, an error, close).
            for slot in [s for s in self._pool if s.job is not None]:
                slot.job = None
                self._replace(slot)
