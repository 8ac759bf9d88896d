"""Render jobs on Ray actors: the same promises as the local pool, on a cluster.

Each actor is one Ray worker process holding one GL context, created inside that process. The
driver hands every idle actor one job at a time, collects results with `ray.wait` as they finish
and yields them; the catalog never leaves the driver. A job past its timeout gets `timeout` and
its actor is killed and replaced; a job whose actor died gets `crash` and the actor is replaced;
the run goes on. Closing the executor (or leaving `run` early, e.g. on Ctrl-C) kills the actors
still working, and shuts down a Ray instance this executor started itself.

Ray is an optional dependency, imported only when a RayExecutor is built.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderer.errors import RenderError
from renderer.executors import (
    MAX_START_FAILURES,
    START_TIMEOUT_S,
    WorkerSettings,
    worker_environment,
)
from renderer.jobs import RenderJob, RenderResult, Verdict
from renderer.ray_connect import MAX_REASON_CHARS, init_ray
from renderer.ray_connect import short_error as _short
from renderer.scheduler import PooledExecutor

if TYPE_CHECKING:
    from types import ModuleType

INSTALL_HINT = "--executor ray needs Ray: pip install 'harvest[ray]'"
# How long one ray.wait may block, so deadlines are checked at least this often.
POLL_S = 1.0

log = logging.getLogger(__name__)


def import_ray() -> ModuleType:
    """The `ray` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RenderError(INSTALL_HINT) from exc
    return ray


class RenderActor:
    """The body of one Ray actor: a GL context in its own worker process, rendering one job at a time."""

    def __init__(self, settings: WorkerSettings, use_assigned_gpu: bool) -> None:
        # llvmpipe and Mesa's shader cache read these when the context is created, not later.
        os.environ.update(worker_environment(settings))
        if settings.shader_cache_dir:
            try:
                Path(settings.shader_cache_dir).mkdir(parents=True, exist_ok=True)
            except OSError:
                # The driver's path need not exist on every node: render uncached rather than not at all.
                os.environ.pop("MESA_SHADER_CACHE_DIR", None)
        device_index = settings.device_index
        if device_index is None and use_assigned_gpu:
            import ray

            # Ray names the GPU it reserved for this actor; on the usual NVIDIA node EGL lists
            # the GPUs in the same order (pass device_index to override).
            assigned = ray.get_gpu_ids()
            device_index = int(assigned[0]) if assigned else None
        from renderer.context import create_context

        self._ctx = create_context(device_index)

    def ready(self) -> int:
        """The worker's process id, once the context exists."""
        return os.getpid()

    def render(self, job: RenderJob) -> tuple[RenderResult, bool]:
        """The job's result, and whether this actor can take another job."""
        from renderer.worker import render_job

        try:
            return render_job(self._ctx, job), True
        except Exception as exc:  # noqa: BLE001 - a renderer bug must not look like a hang
            # The context may be unusable now: the driver replaces this actor.
            return RenderResult(key=job.key, verdict=Verdict.CRASH, reason=f"renderer error: {exc}"), False


@dataclass(eq=False)  # two handles are the same actor only if they are the same object
class _Actor:
    """The driver's handle on one actor and the call it is waiting on."""

    handle: Any
    pending: Any  # ObjectRef of ready() while starting, of render(job) while busy, None while idle
    deadline: float
    pid: int | None = None
    job: RenderJob | None = None

    @property
    def ready(self) -> bool:
        return self.pid is not None


_EXIT_DETAIL = re.compile(r"Worker exit type: (\w+) Worker exit detail: (.+?\.)(?: |$)")


def _death_reason(error: BaseException) -> str:
    """"actor process died (SYSTEM_ERROR: ...)" rather than Ray's paragraph of ids and advice."""
    text = " ".join(str(error).split())
    found = _EXIT_DETAIL.search(text)
    if found:
        return f"ray actor process died ({found.group(1)}: {found.group(2)})"[:MAX_REASON_CHARS]
    return f"ray actor died: {text[:MAX_REASON_CHARS]}"


_WORKER_DIED = "A worker died or was killed while executing a task"


def _quiet_worker_death_notices(ray_worker_module: ModuleType) -> None:
    """Send Ray's paragraph about each dead worker to the log instead of the user's terminal.

    A crashing program kills its actor by design; the job's `crash` verdict already says so, and
    the notice would tear through the progress bar. Other Ray messages still reach the terminal.
    """
    original = getattr(ray_worker_module, "print_to_stdstream", None)
    if original is None or getattr(original, "_harvest_quiet", False):
        return

    def print_unless_worker_death(data: dict, *args: Any, **kwargs: Any) -> None:
        lines = data.get("lines", []) if isinstance(data, dict) else []
        if data.get("pid") == "raylet" and any(_WORKER_DIED in str(line) for line in lines):
            for line in lines:
                log.info("ray: %s", line)
            return
        original(data, *args, **kwargs)

    print_unless_worker_death._harvest_quiet = True  # type: ignore[attr-defined]
    ray_worker_module.print_to_stdstream = print_unless_worker_death


class RayExecutor(PooledExecutor):
    """`workers` Ray actors, each with its own GL context, on a local Ray or an existing cluster.

    `address=None` uses the Ray already initialised in this process, or else starts a private local
    one with `workers * num_cpus_per_actor` CPUs (shut down again on close); `address="auto"` (or
    `ray://host:10001`, `host:6379`) joins an existing cluster. `num_cpus_per_actor` and
    `num_gpus_per_actor` are the Ray resources each actor reserves; `threads_per_worker` is
    llvmpipe's thread count inside each actor (keep it equal to `num_cpus_per_actor`).
    `shader_cache_dir` must be a path that every node can write (it is created if missing).
    """

    def __init__(
        self,
        workers: int | None = None,
        shader_cache_dir: Path | str | None = None,
        *,
        address: str | None = None,
        num_cpus_per_actor: float = 1,
        num_gpus_per_actor: float = 0,
        threads_per_worker: int | None = None,
        device_index: int | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise RenderError("--workers must be at least 1")
        if num_cpus_per_actor < 0 or num_gpus_per_actor < 0:
            raise RenderError("Ray actor resources (CPUs, GPUs per actor) must not be negative")
        self._ray = import_ray()
        try:
            import ray._private.worker as ray_worker_module

            _quiet_worker_death_notices(ray_worker_module)
        except ImportError:  # a Ray without this private module prints the notices: harmless
            pass
        self.num_cpus_per_actor = num_cpus_per_actor
        self.num_gpus_per_actor = num_gpus_per_actor
        threads = threads_per_worker or max(1, math.ceil(num_cpus_per_actor))
        self.settings = WorkerSettings(
            threads=threads,
            shader_cache_dir=str(shader_cache_dir) if shader_cache_dir else None,
            device_index=device_index,
        )
        self._initialised_ray = False
        self._connect(address, workers)
        self.workers = self._actor_count(workers)
        self._actor_class = self._ray.remote(RenderActor).options(
            num_cpus=num_cpus_per_actor,
            num_gpus=num_gpus_per_actor,
            max_restarts=0,  # the driver replaces dead actors itself, and says why they died
            max_task_retries=0,
        )
        self._pool: list[_Actor] = []
        self._start_failures = 0
        self._preempted: set[int] = set()
        self.respawns = 0
        self._closed = False

    # --- the cluster ---------------------------------------------------------------------------

    def _connect(self, address: str | None, workers: int | None) -> None:
        if self._ray.is_initialized():
            return
        init_ray(self._ray, address, (workers or 1) * self.num_cpus_per_actor)
        self._initialised_ray = True

    def _actor_count(self, workers: int | None) -> int:
        """`workers`, or as many actors as the cluster has room for; never more than it can hold."""
        resources = self._ray.cluster_resources()
        room = math.inf
        if self.num_cpus_per_actor > 0:
            room = min(room, resources.get("CPU", 0) // self.num_cpus_per_actor)
        if self.num_gpus_per_actor > 0:
            room = min(room, resources.get("GPU", 0) // self.num_gpus_per_actor)
        if room < 1:
            self.close()
            raise RenderError(
                f"the Ray cluster has no room for an actor with {self.num_cpus_per_actor:g} CPU and "
                f"{self.num_gpus_per_actor:g} GPU (it has {resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU)"
            )
        if workers is None:
            return int(room) if room != math.inf else 1
        if workers > room:
            log.warning("the Ray cluster has room for %d render actors, not %d: using %d", room, workers, room)
            return int(room)
        return workers

    # --- actors --------------------------------------------------------------------------------

    def _start_actor(self) -> _Actor:
        handle = self._actor_class.remote(self.settings, self.num_gpus_per_actor > 0)
        return _Actor(handle=handle, pending=handle.ready.remote(), deadline=time.monotonic() + START_TIMEOUT_S)

    def _fill_pool(self) -> None:
        while len(self._pool) < self.workers:
            self._pool.append(self._start_actor())

    def _kill(self, actor: _Actor) -> None:
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead, or the cluster is gone: nothing left to stop
            pass

    def _replace(self, actor: _Actor) -> None:
        self._kill(actor)
        self._pool.remove(actor)
        self.respawns += 1
        self._fill_pool()

    def _start_failed(self, actor: _Actor, why: str) -> None:
        self._start_failures += 1
        if self._start_failures >= MAX_START_FAILURES:
            self.close()
            raise RenderError(f"Ray render actors cannot start: {why}")
        self._replace(actor)

    # --- running jobs --------------------------------------------------------------------------

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise RenderError("this Ray executor is closed")

    def _submit(self, actor: _Actor, job: RenderJob) -> bool:
        actor.job = job
        actor.pending = actor.handle.render.remote(job)
        actor.deadline = time.monotonic() + job.timeout_s
        return True

    def _collect(self, retry: collections.deque[RenderJob]) -> Iterator[RenderResult]:
        """Wait for the next finished call or deadline, and turn what happened into results."""
        ray = self._ray
        waiting = {actor.pending: actor for actor in self._pool if actor.pending is not None}
        if not waiting:
            return
        wait_s = max(0.0, min(min(a.deadline for a in waiting.values()) - time.monotonic(), POLL_S))
        finished, rest = ray.wait(list(waiting), num_returns=1, timeout=wait_s)
        if finished and rest:  # take everything else that is done too, not just the first
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            finished += more
        for ref in finished:
            result = self._receive(waiting[ref], retry)
            if result is not None:
                yield result
        now = time.monotonic()
        overdue = [a for ref, a in waiting.items() if ref not in finished and a.deadline <= now and a in self._pool]
        for actor in overdue:
            if not actor.ready:
                self._start_failed(actor, f"no actor was ready within {START_TIMEOUT_S:.0f} s")
                continue
            job = actor.job
            if job is not None:
                self._replace(actor)
                yield RenderResult(key=job.key, verdict=Verdict.TIMEOUT, reason=f"no result within {job.timeout_s:g} s")

    def _receive(self, actor: _Actor, retry: collections.deque[RenderJob]) -> RenderResult | None:
        ray = self._ray
        if not actor.ready:
            try:
                actor.pid = ray.get(actor.pending)
            except ray.exceptions.RayError as exc:
                self._start_failed(actor, _short(exc))
                return None
            actor.pending, actor.deadline = None, math.inf
            self._start_failures = 0
            return None
        job = actor.job
        assert job is not None
        try:
            result, usable = ray.get(actor.pending)
        except ray.exceptions.RayActorError as exc:
            self._replace(actor)
            if getattr(exc, "preempted", False) and job.key not in self._preempted:
                # The node was taken away, which says nothing about the program: try it once more.
                self._preempted.add(job.key)
                retry.append(job)
                return None
            return RenderResult(key=job.key, verdict=Verdict.CRASH, reason=_death_reason(exc))
        except ray.exceptions.RayError as exc:
            self._replace(actor)
            return RenderResult(key=job.key, verdict=Verdict.CRASH, reason=f"ray call failed: {_short(exc)}")
        actor.job, actor.pending, actor.deadline = None, None, math.inf
        if not usable:
            self._replace(actor)
        return result

    def wait_ready(self) -> None:
        """Start the actors and wait until each has its GL context (or the start fails for good).

        Optional: `run` starts them itself. Call it between runs (e.g. to time renders without startup).
        """
        self._fill_pool()
        while any(not a.ready for a in self._pool):
            for _ in self._collect(collections.deque()):
                pass  # only actors that are starting are waited on here: no job results to lose

    def busy_worker_pids(self) -> list[int]:
        """Process ids of the actors that are running a job now."""
        return [a.pid for a in self._pool if a.job is not None and a.pid is not None]

    def worker_pids(self) -> list[int]:
        """Process ids of the ready actors (for diagnostics and tests; on this machine only for a local Ray)."""
        return [a.pid for a in self._pool if a.pid is not None]

    def close(self) -> None:
        """Kill every actor; shut down the local Ray this executor started, or leave the cluster it
        joined (which keeps running). Safe to call twice."""
        pool, self._pool = getattr(self, "_pool", []), []
        for actor in pool:
            self._kill(actor)
        if self._initialised_ray and not getattr(self, "_closed", False):
            self._ray.shutdown()
        self._closed = True
