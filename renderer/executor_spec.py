"""Which executor a stage renders on, as one picklable record the CLI fills and the stages pass along.

Stages take an ExecutorSpec and call `build`; none of them knows whether a process pool or a Ray
cluster draws its programs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from renderer.errors import RenderError
from renderer.executors import Executor, LocalExecutor, default_workers

EXECUTOR_KINDS: tuple[str, ...] = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"
    workers: int | None = None  # None: one per core on this machine
    ray_address: str | None = None  # None: a private Ray for the command; "auto": the cluster this node is in
    ray_cpus_per_actor: float = 1.0
    ray_gpus_per_actor: float = 0.0
    render_devices: tuple[int, ...] = ()  # EGL device indices local workers share; (): EGL's default
    media_dir: str | None = None  # where every job's `/media/a/...` channels are read from (renderer/media.py)

    def build(self, shader_cache_dir: Path | None = None) -> Executor:
        from renderer.media_executor import with_media_dir

        return with_media_dir(self._build(shader_cache_dir), self.media_dir)

    def _build(self, shader_cache_dir: Path | None) -> Executor:
        if shader_cache_dir is not None:
            shader_cache_dir.mkdir(parents=True, exist_ok=True)
        if self.kind == "ray":
            return make_executor(
                "ray",
                workers=self.workers,
                shader_cache_dir=shader_cache_dir,
                address=self.ray_address,
                num_cpus_per_actor=self.ray_cpus_per_actor,
                num_gpus_per_actor=self.ray_gpus_per_actor,
            )
        if self.render_devices:
            return make_executor(self.kind, workers=self.workers, shader_cache_dir=shader_cache_dir,
                                 device_indices=self.render_devices)
        return make_executor(self.kind, workers=self.workers, shader_cache_dir=shader_cache_dir)


ExecutorFactory = Callable[..., Executor]


def _ray_executor(**options: object) -> Executor:
    # Imported on demand: Ray is an optional extra, and importing it costs seconds.
    from renderer.ray_executor import RayExecutor

    return RayExecutor(**options)  # type: ignore[arg-type]


_EXECUTORS: dict[str, ExecutorFactory] = {"local": LocalExecutor, "ray": _ray_executor}


def register_executor(kind: str, factory: ExecutorFactory) -> None:
    """Make `make_executor(kind, ...)` build executors with `factory` (e.g. a Ray executor)."""
    _EXECUTORS[kind] = factory


def make_executor(
    kind: str = "local",
    workers: int | None = None,
    shader_cache_dir: Path | None = None,
    **options: object,
) -> Executor:
    """An executor of `kind` with `workers` render workers (default: one per core)."""
    factory = _EXECUTORS.get(kind)
    if factory is None:
        raise RenderError(f"unknown executor {kind!r}; choose one of: {', '.join(sorted(_EXECUTORS))}")
    return factory(workers=workers or default_workers(), shader_cache_dir=shader_cache_dir, **options)
