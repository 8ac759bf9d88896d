"""Snapshot server for bench/faithful.py: harvest's renderer, same protocol as _wgpu_snapshot.py.

stdin, one JSON object a line, either {"key", "code", "out": path.npy} (a single-pass program) or
{"key", "shader": {...}, "frames": [n, ...], "outs": [path.npy, ...]} (a Shadertoy API `Shader` with
Buffer A-D passes, simulated from frame 0 as `harvest render --frame N` does: renderer/passes.py).
stdout: {"key": str, "ok": true} after writing each HxWx3 uint8 frame (top row first), or
{"key": str, "error": "verdict: reason"}. The parent kills this process on a timeout; the GL context
lives only in this process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from corpus.render_source import fetched_program_source
from harvester.sources.base import RecordError
from harvester.sources.shadertoy_format import program_from_shader
from renderer.compiler import compile_program
from renderer.context import create_context
from renderer.dialects import wrap
from renderer.jobs import FrameSpec, ProgramSource
from renderer.passes import simulation_frame
from renderer.program import CompiledProgram, ProgramError, link, preflight
from renderer.textures import BoundTexture

SIZE = int(os.environ.get("FAITHFUL_SIZE", "128"))
# wgpu-shadertoy's snapshot(): these differ from harvest's website-like defaults (1/60 s, a fixed date).
# They apply to single-pass programs only; a simulation keeps harvest's own uniforms, and the wgpu side
# is given those instead.
FRAME = FrameSpec(time=1.37, mouse=(0.0, 0.0, 0.0, 0.0), frame=0)
WGPU_TIME_DELTA = 0.167
WGPU_DATE = (0.0, 0.0, 0.0, 0.0)


class WgpuUniformsProgram(CompiledProgram):
    """harvest's program with the two uniforms whose values wgpu-shadertoy's snapshot sets differently."""

    def _bind_inputs(self, width: int, height: int, frame: FrameSpec, buffers: Mapping[str, BoundTexture]) -> None:
        super()._bind_inputs(width, height, frame, buffers)
        self._set("iTimeDelta", WGPU_TIME_DELTA)
        self._set("iDate", WGPU_DATE)


def compile_matching(ctx, source: ProgramSource) -> WgpuUniformsProgram:
    """renderer.program.compile_program, building the subclass above."""
    preflight(source)
    return WgpuUniformsProgram(ctx, source, link(ctx, wrap(source), source.dialect))


def save(pixels: np.ndarray, out: str) -> None:
    temporary = out + ".part.npy"
    np.save(temporary, pixels)
    os.replace(temporary, out)


def snapshot_single(ctx, code: str, out: str) -> None:
    program = compile_matching(ctx, ProgramSource("shadertoy", code))
    try:
        save(program.render(FRAME, SIZE, SIZE), out)
    finally:
        program.release()


def snapshot_simulation(ctx, shader: dict, frames: list[int], outs: list[str]) -> None:
    """Frames `frames` (increasing) of one simulation, as `harvest render --frame N` draws frame N."""
    source = fetched_program_source(program_from_shader(shader))
    program = compile_program(ctx, source)
    try:
        for number, out in zip(frames, outs):
            save(program.render(simulation_frame(number), SIZE, SIZE), out)
    finally:
        program.release()


def answer(ctx, request: dict) -> dict:
    try:
        if "shader" in request:
            snapshot_simulation(ctx, request["shader"], request["frames"], request["outs"])
        else:
            snapshot_single(ctx, request["code"], request["out"])
    except ProgramError as exc:
        return {"key": request["key"], "error": f"{exc.verdict}: {exc.reason}"}
    except RecordError as exc:
        return {"key": request["key"], "error": f"record: {exc}"}
    return {"key": request["key"], "ok": True}


def main() -> int:
    ctx = create_context()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(ctx, json.loads(line))) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
