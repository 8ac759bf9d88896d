"""Snapshot server for bench/faithful.py, run with the wgpu-shadertoy venv's python (not harvest's).

Protocol, one JSON object a line: stdin gets {"key": str, "code": str, "out": path.npy}; for each,
stdout answers {"key": str, "ok": true} after writing an HxWx3 uint8 array (top row first) to `out`,
or {"key": str, "error": "..."} when wgpu-shadertoy cannot build or draw the program. The parent
enforces timeouts by killing this process, so nothing here guards against a hang.

Uniforms are the ones harvest's side is given: time 1.37 s, mouse (0, 0, 0, 0), and wgpu-shadertoy's
snapshot defaults iTimeDelta 0.167, iFrame 0, iFrameRate 60, iDate (0, 0, 0, 0).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("WGPU_FORCE_OFFSCREEN", "true")

import numpy as np
from wgpu_shadertoy import Shadertoy

TIME_S = 1.37
SIZE = int(os.environ.get("FAITHFUL_SIZE", "128"))


def snapshot(code: str) -> np.ndarray:
    shader = Shadertoy(code, resolution=(SIZE, SIZE), offscreen=True)
    rgba = np.asarray(shader.snapshot(time_float=TIME_S, mouse_pos=(0.0, 0.0, 0.0, 0.0)))
    return np.ascontiguousarray(rgba[:, :, :3])


def main() -> int:
    # Naga and wgpu-native print their validation errors on stdout/stderr: keep our answers on a
    # private copy of stdout and send everything else to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            pixels = snapshot(request["code"])
            temporary = request["out"] + ".part.npy"
            np.save(temporary, pixels)
            os.replace(temporary, request["out"])
            answer = {"key": request["key"], "ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure to build is that program's verdict
            message = " ".join(str(exc).split())[:300] or type(exc).__name__
            answer = {"key": request["key"], "error": f"{type(exc).__name__}: {message}"}
        answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
