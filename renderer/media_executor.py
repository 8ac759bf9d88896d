"""Every job an executor runs reads its media channels from one folder (`--media-dir`), whichever stage made it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from renderer.executors import Executor
from renderer.jobs import RenderJob, RenderResult


class MediaDirExecutor:
    """Wraps an executor so that each job carries `media_dir` (a path, read in the worker: jobs stay small)."""

    def __init__(self, inner: Executor, media_dir: str) -> None:
        self.inner = inner
        self.media_dir = media_dir

    def run(self, jobs: Iterable[RenderJob | None], on_wait: Callable[[], None] | None = None) -> Iterator[RenderResult]:
        # A None is a stage holding jobs back (see renderer/scheduler.py): it passes through as it is.
        stamped = (replace(job, media_dir=self.media_dir) if job is not None and job.media_dir is None else job
                   for job in jobs)
        return self.inner.run(stamped, on_wait)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> MediaDirExecutor:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.inner.__exit__(*exc_info)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # what a stage reads of the executor it was given (workers, ...)


def with_media_dir(executor: Executor, media_dir: str | None) -> Executor:
    return MediaDirExecutor(executor, media_dir) if media_dir else executor
