"""Drawing catalog programs outside any stage, as a reference the stages' stored results must equal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from renderer.executor_spec import ExecutorSpec
from renderer.jobs import FrameSpec, ProgramSource, RenderJob, RenderResult


def render_frames(
    sources: dict[int, ProgramSource],
    frames: tuple[FrameSpec, ...] | Callable[[int], tuple[FrameSpec, ...]],
    size: int,
    executor: ExecutorSpec,
    timeout_s: float = 10.0,
    shader_cache_dir: Path | None = None,
) -> Iterator[RenderResult]:
    """Render every source at `frames` (or frames(program_id)), keeping the pixels; results in any order."""

    def jobs() -> Iterator[RenderJob]:
        for program_id, source in sources.items():
            specs = frames(program_id) if callable(frames) else frames
            yield RenderJob(key=program_id, program=source, frames=specs, width=size, height=size,
                            timeout_s=timeout_s, keep_frames=True)

    with executor.build(shader_cache_dir) as pool:
        yield from pool.run(jobs())
