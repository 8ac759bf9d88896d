"""Snapshot server for bench/faithful.py: harvest's renderer, same protocol as _wgpu_snapshot.py.

stdin: {"key": str, "code": str, "out": path.npy} a line; stdout: {"key": str, "ok": true} after writing
the HxWx3 uint8 frame (top row first) to `out`, or {"key": str, "error": "verdict: reason"}.
The parent kills this process on a timeout; the GL context lives only in this process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from renderer.context import create_context
from renderer.dialects import wrap
from renderer.jobs import FrameSpec, ProgramSource
from renderer.program import CompiledProgram, ProgramError, link, preflight

SIZE = int(os.environ.get("FAITHFUL_SIZE", "128"))
# wgpu-shadertoy's snapshot(): these differ from harvest's website-like defaults (1/60 s, a fixed date).
FRAME = FrameSpec(time=1.37, mouse=(0.0, 0.0, 0.0, 0.0), frame=0)
WGPU_TIME_DELTA = 0.167
WGPU_DATE = (0.0, 0.0, 0.0, 0.0)


class WgpuUniformsProgram(CompiledProgram):
    """harvest's program with the two uniforms whose values wgpu-shadertoy's snapshot sets differently."""

    def _bind_inputs(self, width: int, height: int, frame: FrameSpec) -> None:
        super()._bind_inputs(width, height, frame)
        self._set("iTimeDelta", WGPU_TIME_DELTA)
        self._set("iDate", WGPU_DATE)


def compile_matching(ctx, source: ProgramSource) -> WgpuUniformsProgram:
    """renderer.program.compile_program, building the subclass above."""
    preflight(source)
    return WgpuUniformsProgram(ctx, source, link(ctx, wrap(source), source.dialect))


def main() -> int:
    ctx = create_context()
    for line in sys.stdin:
        request = json.loads(line)
        code = request["code"]
        try:
            program = compile_matching(ctx, ProgramSource("shadertoy", code))
            try:
                pixels = program.render(FRAME, SIZE, SIZE)
            finally:
                program.release()
            temporary = request["out"] + ".part.npy"
            np.save(temporary, pixels)
            os.replace(temporary, request["out"])
            answer = {"key": request["key"], "ok": True}
        except ProgramError as exc:
            answer = {"key": request["key"], "error": f"{exc.verdict}: {exc.reason}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
