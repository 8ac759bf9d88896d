"""Executors run RenderJobs somewhere and hand back one RenderResult per job.

Stage code (validate, score, export) only sees the `Executor` protocol and `make_executor`;
which executor runs the jobs is a command-line choice. Every executor keeps the same promises:
results come in any order, every job gets exactly one result, a job past its timeout gets
`timeout`, a job whose worker died gets `crash`, and the run goes on. Leaving the `with` block
(normally, on an error or on Ctrl-C) leaves no worker behind.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from renderer.errors import RenderError
from renderer.jobs import RenderJob, RenderResult, Verdict
from renderer.scheduler import PooledExecutor

# Consecutive workers that fail to start before the run gives up (EGL missing, driver broken).
MAX_START_FAILURES = 3
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 2.0
DEFAULT_MEMORY_LIMIT_MB = 2048


@runtime_checkable
class Executor(Protocol):
    def run(self, jobs: Iterable[RenderJob | None],
            on_wait: Callable[[], None] | None = None) -> Iterator[RenderResult]:
        """One result per job, in any order; jobs are pulled from `jobs` only as workers free up. A None from
        `jobs` starts nothing (a consumer holding new jobs back); `jobs` is asked again after the next wait.
        `on_wait` is called after every wait (at most about a second apart)."""
        ...

    def close(self) -> None:
        """Stop every worker; safe to call twice."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs to set up before its GL context exists."""

    threads: int = 1  # llvmpipe threads; one per worker so N workers use N cores
    shader_cache_dir: str | None = None
    device_index: int | None = None
    # Address-space cap: a program with a huge array makes LLVM grow by ~70 MB/s until the timeout.
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB
    # Skip LLVM's optimisation passes on llvmpipe: compiling, not drawing, dominates a few small
    # frames (measured: compile time halves, drawing is ~1.5x slower, pixels identical but for
    # programs that read uninitialised variables). Turn off for many or large frames per program.
    fast_compile: bool = True


def worker_environment(settings: WorkerSettings) -> dict[str, str]:
    """Environment for a render worker; must be in place before its context is created."""
    env = {"LP_NUM_THREADS": str(settings.threads)}
    if settings.fast_compile:
        env["GALLIVM_PERF"] = "nopt"
    if settings.shader_cache_dir:
        env["MESA_SHADER_CACHE_DIR"] = settings.shader_cache_dir
        env["MESA_SHADER_CACHE_DISABLE"] = "false"
    return env


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a killed run leaves no worker."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass


def _worker_main(conn: multiprocessing.connection.Connection, settings: WorkerSettings) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.update(worker_environment(settings))
    if settings.memory_limit_mb:
        limit = settings.memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from renderer.context import create_context
    from renderer.worker import render_job

    try:
        ctx = create_context(settings.device_index)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            result = render_job(ctx, job)
        except Exception as exc:  # noqa: BLE001 - a renderer bug must not look like a hang
            conn.send(("result", RenderResult(key=job.key, verdict=Verdict.CRASH, reason=f"renderer error: {exc}")))
            return  # the context may be unusable; the parent starts a fresh worker
        conn.send(("result", result))


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, mp: multiprocessing.context.BaseContext, settings: WorkerSettings) -> None:
        parent_conn, child_conn = mp.Pipe(duplex=True)
        self.settings = settings
        self.process = mp.Process(target=_worker_main, args=(child_conn, settings), daemon=True, name="harvest-render")
        self.process.start()
        child_conn.close()
        self.conn = parent_conn
        self.ready = False
        self.job: RenderJob | None = None
        self.deadline = time.monotonic() + START_TIMEOUT_S

    def send(self, job: RenderJob) -> None:
        self.conn.send(job)
        self.job = job
        self.deadline = time.monotonic() + job.timeout_s

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)
        self.conn.close()

    def describe_exit(self) -> str:
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"worker killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"worker killed by signal {-code}"
        return f"worker exited with status {code}"


class LocalExecutor(PooledExecutor):
    """A pool of spawned processes on this machine, each with its own GL context."""

    def __init__(
        self,
        workers: int = 1,
        shader_cache_dir: Path | None = None,
        *,
        threads_per_worker: int = 1,
        device_index: int | None = None,
        device_indices: tuple[int, ...] = (),
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        fast_compile: bool = True,
    ) -> None:
        if workers < 1:
            raise RenderError("--workers must be at least 1")
        self.workers = workers
        # Workers share these devices round-robin; () leaves every worker on `device_index`.
        self.device_indices = tuple(device_indices)
        self.settings = WorkerSettings(
            threads=threads_per_worker,
            shader_cache_dir=str(shader_cache_dir) if shader_cache_dir else None,
            device_index=device_index,
            memory_limit_mb=memory_limit_mb,
            fast_compile=fast_compile,
        )
        if shader_cache_dir:
            Path(shader_cache_dir).mkdir(parents=True, exist_ok=True)
        self._mp = multiprocessing.get_context("spawn")
        self._pool: list[_Worker] = []
        self._start_failures = 0
        self.respawns = 0

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fill_pool(self) -> None:
        while len(self._pool) < self.workers:
            self._pool.append(_Worker(self._mp, self._next_worker_settings()))

    def _next_worker_settings(self) -> WorkerSettings:
        """Settings for a new worker: on the device fewest live workers use, so a respawn keeps the spread."""
        if not self.device_indices:
            return self.settings
        in_use = collections.Counter(worker.settings.device_index for worker in self._pool)
        device = min(self.device_indices, key=lambda index: in_use[index])
        return dataclasses.replace(self.settings, device_index=device)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._pool.remove(worker)
        self.respawns += 1
        self._fill_pool()

    def _start_failed(self, worker: _Worker, why: str) -> None:
        self._start_failures += 1
        if self._start_failures >= MAX_START_FAILURES:
            self.close()
            raise RenderError(f"render workers cannot start: {why}")
        self._replace(worker)

    def _submit(self, worker: _Worker, job: RenderJob) -> bool:
        try:
            worker.send(job)
        except (BrokenPipeError, OSError):
            self._replace(worker)
            return False
        return True

    def _collect(self, retry: collections.deque[RenderJob]) -> Iterator[RenderResult]:
        """Wait for the next message or deadline, and turn what happened into results."""
        now = time.monotonic()
        wait_s = max(0.0, min(w.deadline for w in self._pool) - now)
        readable = multiprocessing.connection.wait([w.conn for w in self._pool], timeout=min(wait_s, 1.0))
        for worker in [w for w in self._pool if w.conn in readable]:
            result = self._receive(worker)
            if result is not None:
                yield result
        now = time.monotonic()
        for worker in [w for w in self._pool if w.deadline <= now]:
            if worker not in self._pool or worker.conn.closed:
                continue
            if worker.conn.poll():  # finished in time; the consumer was slow to ask
                result = self._receive(worker)
                if result is not None:
                    yield result
                continue
            if not worker.ready:
                self._start_failed(worker, f"no worker was ready within {START_TIMEOUT_S:.0f} s")
                continue
            if worker.job is not None:
                job = worker.job
                self._replace(worker)
                yield RenderResult(key=job.key, verdict=Verdict.TIMEOUT, reason=f"no result within {job.timeout_s:g} s")

    def _receive(self, worker: _Worker) -> RenderResult | None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            job, why = worker.job, worker.describe_exit()
            if not worker.ready:
                self._start_failed(worker, why)
                return None
            self._replace(worker)
            if job is None:
                return None
            return RenderResult(key=job.key, verdict=Verdict.CRASH, reason=why)
        if kind == "ready":
            worker.ready = True
            worker.deadline = float("inf")
            self._start_failures = 0
            return None
        if kind == "failed":
            self._start_failed(worker, str(payload))
            return None
        worker.job = None
        worker.deadline = float("inf")
        return payload

    def worker_devices(self) -> list[int | None]:
        """The EGL device index of each current worker (for diagnostics and tests)."""
        return [w.settings.device_index for w in self._pool]

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for diagnostics and tests)."""
        return [w.process.pid for w in self._pool if w.process.pid is not None]

    def busy_worker_pids(self) -> list[int]:
        """Process ids of the workers that are running a job now."""
        return [w.process.pid for w in self._pool if w.ready and w.job is not None and w.process.pid is not None]

    def close(self) -> None:
        pool, self._pool = self._pool, []
        for worker in pool:
            if worker.job is None and worker.ready:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        stop_by = time.monotonic() + STOP_GRACE_S
        for worker in pool:
            worker.process.join(timeout=max(0.0, stop_by - time.monotonic()))
            worker.kill()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
