"""The records that cross the boundary between a stage and the render workers.

A job in, a result out: the renderer never sees the catalog. Everything here must pickle
(jobs travel to spawned processes and Ray actors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Verdict(StrEnum):
    OK = "ok"
    COMPILE_ERROR = "compile_error"
    LINK_ERROR = "link_error"
    BLANK = "blank"
    TIMEOUT = "timeout"
    CRASH = "crash"
    NEEDS_INPUT = "needs_input"
    UNSUPPORTED = "unsupported"


DIALECTS: tuple[str, ...] = ("shadertoy", "glslsandbox", "bookofshaders", "twigl", "raw")

# Channel kinds that we can stand in for with procedural noise; any other kind needs a live input.
SUBSTITUTABLE_CHANNELS: frozenset[str] = frozenset({"texture", "cubemap", "volume", "buffer"})


@dataclass(frozen=True)
class ProgramSource:
    """Everything the renderer needs to draw a program, and nothing about where it came from.

    For `shadertoy`, `common` is prepended to `image` by the wrapper; `channels[i]` is the ctype bound
    to iChannel i (None when unbound). `buffer_passes` > 0 means the program needs Buffer A-D
    passes, which the renderer does not draw yet. `mode` is a dialect's variant: for `twigl` the mode spec
    (`geekest 300es`, see renderer/twigl.py); empty means sniffed from the code.
    """

    dialect: str
    image: str
    common: str = ""
    channels: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
    buffer_passes: int = 0
    mode: str = ""


@dataclass(frozen=True)
class FrameSpec:
    time: float
    mouse: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    frame: int = 0


@dataclass(frozen=True)
class FrameSet:
    """Frames a later stage needs from the same compile, at their own size."""

    name: str
    frames: tuple[FrameSpec, ...]
    width: int
    height: int


@dataclass(frozen=True)
class RenderJob:
    """Render `frames` of one program at `width`x`height`.

    `key` is opaque to the renderer (the catalog's program id); `keep_frames` asks for the pixel
    arrays back (scoring and export need them, validation only needs stats and a thumbnail).
    """

    key: int
    program: ProgramSource
    frames: tuple[FrameSpec, ...]
    width: int = 128
    height: int = 128
    timeout_s: float = 10.0
    keep_frames: bool = False
    # Drawn after an `ok` verdict with the program still compiled, when they fit in half of what is left of
    # the timeout (judged from the verdict frames' times); returned as RenderResult.extras by name. Validation
    # asks for the scoring and near-duplicate frames this way, so no later stage compiles the program again.
    extras: tuple[FrameSet, ...] = ()


@dataclass
class RenderResult:
    key: int
    verdict: Verdict
    reason: str = ""  # human-readable reason for any verdict other than ok
    error_line: int | None = None  # the user's own line number, when the compiler named one
    compile_ms: float | None = None
    render_ms: list[float] = field(default_factory=list)
    frame_means: list[float] = field(default_factory=list)
    frame_stds: list[float] = field(default_factory=list)
    animated: bool | None = None
    thumbnail_png: bytes | None = None
    frames: list[np.ndarray] | None = None  # HxWx3 uint8, top row first, when job.keep_frames
    extras: dict[str, list[np.ndarray]] = field(default_factory=dict)  # job.extras by name, those drawn
