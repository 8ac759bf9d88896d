"""The records that cross the boundary between a stage and the render workers.

A job in, a result out: the renderer never sees the catalog. Everything here must pickle
(jobs travel to spawned processes and Ray actors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from renderer.glsl_text import without_comments


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

# Channel kinds that we can stand in for: procedural noise for images, the drawn pass for a buffer, and a
# keyboard with no key down. Any other kind needs a live input.
SUBSTITUTABLE_CHANNELS: frozenset[str] = frozenset({"texture", "cubemap", "volume", "buffer", "keyboard"})
BUFFER_KINDS: tuple[str, ...] = ("buffer_a", "buffer_b", "buffer_c", "buffer_d")
_BACKBUFFER_UNIFORM = re.compile(r"\buniform\s+(?:(?:lowp|mediump|highp)\s+)?sampler2D\s+[\w\s,]*\bbackbuffer\b")
PASS_TITLES: dict[str, str] = {"image": "Image", "buffer_a": "Buffer A", "buffer_b": "Buffer B",
                               "buffer_c": "Buffer C", "buffer_d": "Buffer D"}


@dataclass(frozen=True)
class ChannelSampler:
    """How a channel is sampled; an empty field means the website's default for the channel's kind."""

    filter: str = ""  # nearest | linear | mipmap
    wrap: str = ""  # clamp | repeat
    vflip: bool | None = None


@dataclass(frozen=True)
class ChannelBinding:
    """What one iChannel of a pass reads: `kind` is Shadertoy's ctype; for a buffer, `buffer` names the pass
    read (buffer_a..d), empty when the record does not say which; for media (texture, cubemap, volume),
    `media` is the record's source, e.g. `/media/a/NAME.png` (renderer/media.py)."""

    kind: str
    buffer: str = ""
    sampler: ChannelSampler = ChannelSampler()
    media: str = ""


@dataclass(frozen=True)
class Standin:
    """A channel drawn with a stand-in instead of what the website binds: the pass (image, buffer_a..d), the
    channel, its kind, the media it names (empty when none) and why it was not read from --media-dir."""

    pass_kind: str
    channel: int
    kind: str
    media: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {"pass": self.pass_kind, "channel": self.channel, "kind": self.kind, "media": self.media,
                "reason": self.reason}


Bindings = tuple[ChannelBinding | None, ChannelBinding | None, ChannelBinding | None, ChannelBinding | None]
NO_BINDINGS: Bindings = (None, None, None, None)


@dataclass(frozen=True)
class BufferPass:
    """One of Buffer A-D: its kind (buffer_a..d), its code and what its channels read."""

    kind: str
    code: str
    inputs: Bindings = NO_BINDINGS


@dataclass(frozen=True)
class ProgramSource:
    """Everything the renderer needs to draw a program, and nothing about where it came from.

    For `shadertoy`, `common` is prepended to every pass by the wrapper; `channels[i]` is the ctype bound
    to iChannel i of the image pass (None when unbound) and `inputs`, when given, the same bindings with
    their buffer and sampler. `buffers` are the Buffer A-D passes (renderer/passes.py draws them);
    `buffer_passes` counts them as the catalog does, so a source with a count but no `buffers` lacks their
    code. `cube_pass` marks a Cube A pass, which is not drawn. `mode` is a dialect's variant: for `twigl`
    the mode spec (`geekest 300es`, see renderer/twigl.py); empty means sniffed from the code.
    """

    dialect: str
    image: str
    common: str = ""
    channels: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
    buffer_passes: int = 0
    mode: str = ""
    inputs: Bindings | None = None
    buffers: tuple[BufferPass, ...] = ()
    cube_pass: bool = False

    @property
    def image_inputs(self) -> Bindings:
        if self.inputs is not None:
            return self.inputs
        bindings = [ChannelBinding(kind) if kind else None for kind in self.channels]
        return (bindings[0], bindings[1], bindings[2], bindings[3])

    @property
    def reads_backbuffer(self) -> bool:
        """A GLSL Sandbox program that declares `backbuffer`: it reads its own previous frame."""
        return self.dialect == "glslsandbox" and bool(_BACKBUFFER_UNIFORM.search(without_comments(self.image)))

    @property
    def multipass(self) -> bool:
        """Drawn as a simulation (frame n after frames 0..n-1): it has Buffer A-D passes, or it reads
        `backbuffer` (renderer/passes.py draws both)."""
        return bool(self.buffers) or self.buffer_passes > 0 or self.reads_backbuffer


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
    # the timeout (judged from the verdict frames' pace, or a simulation's pace of steps); returned as
    # RenderResult.extras by name. Validation asks for the scoring and near-duplicate frames this way, so no
    # later stage compiles the program again.
    extras: tuple[FrameSet, ...] = ()
    # For a multi-pass program (a simulation, see renderer/passes.py): once this many frames are drawn, the
    # worker may judge those alone when the next one would not be reached well within the timeout.
    # None: every frame or a timeout.
    min_frames: int | None = None
    # The folder `/media/a/...` channels are read from (renderer/media.py), in the worker; None: stand-ins only.
    media_dir: str | None = None


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
    standins: list[Standin] | None = None  # channels drawn with stand-ins; None when the program was not compiled
