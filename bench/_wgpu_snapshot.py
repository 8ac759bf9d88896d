"""Snapshot server for bench/faithful.py, run with the wgpu-shadertoy venv's python (not harvest's).

Protocol, one JSON object a line: stdin gets {"key": str, "code": str, "out": path.npy} (a single-pass
program) or {"key": str, "shader": {...}, "frames": [n, ...], "outs": [path.npy, ...]} (a Shadertoy API
`Shader` with Buffer A-D passes); for each, stdout answers {"key": str, "ok": true} after writing every
HxWx3 uint8 array (top row first), or {"key": str, "error": "..."} when wgpu-shadertoy cannot build or
draw the program. The parent enforces timeouts by killing this process, so nothing here guards against
a hang.

Single-pass uniforms are the ones harvest's side is given: time 1.37 s, mouse (0, 0, 0, 0), and
wgpu-shadertoy's snapshot defaults iTimeDelta 0.167, iFrame 0, iFrameRate 60, iDate (0, 0, 0, 0).

A multi-pass program is built by wgpu-shadertoy's own `Shadertoy.from_json` (its passes in record order,
Buffer A-D then Image; a buffer read binds that buffer's latest texture). Its `snapshot` draws one frame
of every pass with the uniforms it is given, so frames 0..N are stepped here with harvest's simulation
clock: iFrame n, iTime n/60, iTimeDelta 1/60, iFrameRate 60, mouse 0 and harvest's fixed iDate.
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
FRAME_RATE = 60.0


def rgb(snapshot) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(snapshot)[:, :, :3])


def save(pixels: np.ndarray, out: str) -> None:
    temporary = out + ".part.npy"
    np.save(temporary, pixels)
    os.replace(temporary, out)


def snapshot_single(code: str, out: str) -> None:
    shader = Shadertoy(code, resolution=(SIZE, SIZE), offscreen=True)
    save(rgb(shader.snapshot(time_float=TIME_S, mouse_pos=(0.0, 0.0, 0.0, 0.0))), out)


def snapshot_simulation(record: dict, frames: list[int], outs: list[str]) -> None:
    wanted = dict(zip(frames, outs))
    shader = Shadertoy.from_json({"Shader": record}, resolution=(SIZE, SIZE), offscreen=True)
    for number in range(max(frames) + 1):
        seconds = number / FRAME_RATE
        # harvest's iDate: a fixed day whose clock runs with the frame's time (renderer/program.py).
        pixels = shader.snapshot(time_float=seconds, time_delta=1.0 / FRAME_RATE, frame=number,
                                 framerate=FRAME_RATE, mouse_pos=(0.0, 0.0, 0.0, 0.0),
                                 date=(2024.0, 0.0, 1.0, 43200.0 + seconds))
        if number in wanted:
            save(rgb(pixels), wanted[number])


def answer(request: dict) -> dict:
    try:
        if "shader" in request:
            snapshot_simulation(request["shader"], request["frames"], request["outs"])
        else:
            snapshot_single(request["code"], request["out"])
    except Exception as exc:  # noqa: BLE001 - any failure to build is that program's verdict
        message = " ".join(str(exc).split())[:300] or type(exc).__name__
        return {"key": request["key"], "error": f"{type(exc).__name__}: {message}"}
    return {"key": request["key"], "ok": True}


def main() -> int:
    # Naga and wgpu-native print their validation errors on stdout/stderr: keep our answers on a
    # private copy of stdout and send everything else to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        answers.write(json.dumps(answer(json.loads(line))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
