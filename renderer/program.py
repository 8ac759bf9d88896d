"""Compile a program once, render it for many frames."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import moderngl
import numpy as np

from renderer import twigl
from renderer.dialects import COMMON_SOURCE, IMAGE_SOURCE, WrappedProgram, locate
from renderer.jobs import BUFFER_KINDS, PASS_TITLES, SUBSTITUTABLE_CHANNELS, Bindings, FrameSpec, ProgramSource, Verdict
from renderer.textures import BACKBUFFER_UNIT, BoundTexture, channel_textures, effective_sampler

TIME_DELTA = 1.0 / 60.0
FRAME_RATE = 60.0
SAMPLE_RATE = 44100.0
MAX_REASON_CHARS = 500
BACKBUFFER = "backbuffer"  # the key of a feedback program's previous frame among `buffers`
# A full-screen triangle: covers the viewport with one primitive (no diagonal seam).
_TRIANGLE = np.array([-1.0, -1.0, 3.0, -1.0, -1.0, 3.0], dtype="f4").tobytes()
_MESSAGE = re.compile(r"^(\d+):(\d+)\(\d+\): (?:preprocessor )?error: (.*)$", re.MULTILINE)


class ProgramError(Exception):
    """A program that cannot be drawn, with the verdict and a reason a user can read."""

    def __init__(self, verdict: Verdict, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class RenderedFrame:
    pixels: np.ndarray  # HxWx3 uint8, top row first
    nonfinite_fraction: float  # share of pixels with a NaN or infinite channel before clamping


def preflight(source: ProgramSource) -> None:
    """Refuse, before compiling, what we cannot draw faithfully."""
    if source.cube_pass:
        raise ProgramError(Verdict.UNSUPPORTED, "uses a Cube A pass; cubemap passes are not rendered")
    if source.buffer_passes > len(source.buffers):
        raise ProgramError(Verdict.UNSUPPORTED, f"uses {source.buffer_passes} Buffer A-D pass(es) but their code is not here")
    kinds = set(source.channels) | {b.kind for p in source.buffers for b in p.inputs if b}
    live = sorted({kind for kind in kinds if kind and kind not in SUBSTITUTABLE_CHANNELS})
    if live:
        raise ProgramError(Verdict.NEEDS_INPUT, f"needs live input: {', '.join(live)}")
    if not source.image.strip():
        raise ProgramError(Verdict.COMPILE_ERROR, "empty program")
    check_passes(source)


def pass_title(kind: str) -> str:
    return PASS_TITLES.get(kind, kind)


def check_passes(source: ProgramSource) -> None:
    """Refuse a multi-pass record that cannot be drawn as written: an empty pass or a missing buffer."""
    present = {p.kind for p in source.buffers}
    for buffer in source.buffers:
        if buffer.kind not in BUFFER_KINDS:
            raise ProgramError(Verdict.UNSUPPORTED, f"unknown pass kind {buffer.kind[:40]!r}")
        if not buffer.code.strip():
            raise ProgramError(Verdict.COMPILE_ERROR, f"{pass_title(buffer.kind)} has no code")
    readers = [("image", source.image_inputs)] + [(p.kind, p.inputs) for p in source.buffers]
    for reader, inputs in readers:
        for index, binding in enumerate(inputs):
            if binding is None or binding.kind != "buffer":
                continue
            # A single-pass program reading a buffer the record does not name keeps its noise stand-in.
            if binding.buffer not in present and (binding.buffer or source.multipass):
                wanted = pass_title(binding.buffer) if binding.buffer else "a buffer it does not name"
                raise ProgramError(Verdict.UNSUPPORTED,
                                   f"iChannel{index} of {pass_title(reader)} reads {wanted}, which the program does not have")


def parse_driver_message(message: str, dialect: str) -> tuple[str, int | None]:
    """The first error as `reason`, and the user's line number when it is in the user's image code."""
    match = _MESSAGE.search(message)
    if match is None:
        lines = [line.strip() for line in message.splitlines() if line.strip() and not set(line.strip()) <= {"="}]
        detail = [line for line in lines if "error" in line.lower()] or lines[-1:]
        return (detail[0] if detail else "unknown driver error")[:MAX_REASON_CHARS], None
    part, line = locate(int(match.group(2)))
    text = match.group(3).strip()
    if part == IMAGE_SOURCE and line > 0:
        return f"line {line}: {text}"[:MAX_REASON_CHARS], line
    if part == COMMON_SOURCE and dialect == "shadertoy":
        return f"Common pass line {line}: {text}"[:MAX_REASON_CHARS], None
    if "mainImage" in text:
        return "mainImage(out vec4, in vec2) is not defined", None
    return text[:MAX_REASON_CHARS], None


class CompiledProgram:
    """A linked program in one context; `render` draws any frame at any size without recompiling."""

    def __init__(self, ctx: moderngl.Context, source: ProgramSource, program: moderngl.Program,
                 inputs: Bindings | None = None) -> None:
        self.ctx = ctx
        self.source = source
        self.inputs = source.image_inputs if inputs is None else inputs
        self._program = program
        self._vbo = ctx.buffer(_TRIANGLE)
        self._vao = ctx.vertex_array(program, [(self._vbo, "2f", "hv_position")])
        self._framebuffers: dict[tuple[int, int], moderngl.Framebuffer] = {}
        self._textures = channel_textures(ctx)

    def _framebuffer(self, width: int, height: int) -> moderngl.Framebuffer:
        fbo = self._framebuffers.get((width, height))
        if fbo is None:
            # Float target so that NaN and Inf output can be seen before it is clamped.
            color = self.ctx.texture((width, height), 4, dtype="f4")
            fbo = self._framebuffers[(width, height)] = self.ctx.framebuffer(color_attachments=[color])
        return fbo

    def _set(self, name: str, value) -> None:
        uniform = self._program.get(name, None)
        if not isinstance(uniform, moderngl.Uniform):
            return
        if isinstance(value, list) and uniform.array_length < len(value):
            value = value[: uniform.array_length]  # the compiler dropped unused trailing elements
            if uniform.array_length == 1:
                value = value[0]  # moderngl takes a one-element array as a plain value
        try:
            uniform.value = value
        except (moderngl.Error, struct.error, TypeError, ValueError):
            pass  # a user uniform that shares a host name but not its type keeps its default

    def samples_channel(self, index: int) -> bool:
        """Whether the linked program reads iChannel`index` (the compiler drops a sampler no code reads)."""
        return isinstance(self._program.get(f"iChannel{index}", None), moderngl.Uniform)

    def _bind_channels(self, buffers: Mapping[str, BoundTexture]) -> list[tuple[float, float, float]]:
        """Bind iChannel0..3 (a drawn buffer from `buffers`, else a stand-in) with their samplers."""
        channel_resolutions = []
        for index, binding in enumerate(self.inputs):
            settings = effective_sampler(binding)
            drawn = buffers.get(binding.buffer) if binding is not None and binding.kind == "buffer" else None
            bound = drawn or self._textures.for_binding(binding, index)
            bound.texture.use(location=index)
            self._textures.sampler(settings).use(location=index)
            self._set(f"iChannel{index}", index)
            channel_resolutions.append(bound.resolution)
        return channel_resolutions

    def _bind_inputs(self, width: int, height: int, frame: FrameSpec, buffers: Mapping[str, BoundTexture]) -> None:
        channel_resolutions = self._bind_channels(buffers)
        # The program's own previous frame when it is simulated (renderer/passes.py), else black.
        (buffers.get(BACKBUFFER) or self._textures.black()).texture.use(location=BACKBUFFER_UNIT)
        self._set("backbuffer", BACKBUFFER_UNIT)

        t = float(frame.time)
        x, y, z, w = (float(v) for v in frame.mouse)
        aspect = width / height
        values = {
            # Shadertoy
            "iResolution": (float(width), float(height), 1.0),
            "iTime": t,
            "iTimeDelta": TIME_DELTA,
            "iFrameRate": FRAME_RATE,
            "iFrame": int(frame.frame),
            "iMouse": (x, y, z, w),
            # A fixed date keeps renders deterministic; the clock still runs with the frame's time.
            "iDate": (2024.0, 0.0, 1.0, 43200.0 + t),
            "iSampleRate": SAMPLE_RATE,
            "iChannelTime": [t, t, t, t],
            "iChannelResolution": channel_resolutions,
            # GLSL Sandbox (mouse is normalised to 0..1)
            "time": t,
            "resolution": (float(width), float(height)),
            "mouse": (x / width, y / height),
            "surfaceSize": (aspect, 1.0),
            "hv_surfaceHalf": (aspect / 2.0, 0.5),
            # The Book of Shaders (mouse in pixels)
            "u_time": t,
            "u_resolution": (float(width), float(height)),
            "u_mouse": (x, y),
        }
        if self.source.dialect == "twigl":
            mode = twigl.resolve_mode(self.source.mode, self.source.image)
            values.update(twigl.uniform_values(mode, width, height, t, frame.frame, (x / width, y / height), BACKBUFFER_UNIT))
        for name, value in values.items():
            self._set(name, value)

    def draw(self, fbo: moderngl.Framebuffer, frame: FrameSpec, width: int, height: int,
             buffers: Mapping[str, BoundTexture]) -> None:
        """Draw one frame into `fbo`, the Buffer A-D channels reading `buffers` (kind -> texture), and
        `backbuffer` reading buffers[BACKBUFFER] when given."""
        fbo.use()
        self._bind_inputs(width, height, frame, buffers)
        self._vao.render(moderngl.TRIANGLES, vertices=3)

    def render_frame(self, frame: FrameSpec, width: int, height: int,
                     buffers: Mapping[str, BoundTexture] | None = None) -> RenderedFrame:
        fbo = self._framebuffer(width, height)
        self.draw(fbo, frame, width, height, buffers or {})
        raw = np.frombuffer(fbo.read(components=3, dtype="f4"), dtype=np.float32).reshape(height, width, 3)
        raw = raw[::-1]  # GL's first row is the bottom one
        finite = np.isfinite(raw)
        nonfinite = float(1.0 - finite.all(axis=2).mean())
        clean = np.nan_to_num(raw, nan=0.0, posinf=1.0, neginf=0.0)
        pixels = (np.clip(clean, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return RenderedFrame(pixels=np.ascontiguousarray(pixels), nonfinite_fraction=nonfinite)

    def render(self, frame: FrameSpec, width: int, height: int) -> np.ndarray:
        """HxWx3 uint8, top row first."""
        return self.render_frame(frame, width, height).pixels

    def release(self) -> None:
        for fbo in self._framebuffers.values():
            for attachment in fbo.color_attachments:
                attachment.release()
            fbo.release()
        self._framebuffers.clear()
        self._vao.release()
        self._vbo.release()
        self._program.release()


def link(ctx: moderngl.Context, wrapped: WrappedProgram, dialect: str) -> moderngl.Program:
    try:
        return ctx.program(vertex_shader=wrapped.vertex, fragment_shader=wrapped.fragment)
    except moderngl.Error as exc:
        message = str(exc)
        reason, line = parse_driver_message(message, dialect)
        if dialect == "raw":
            raise ProgramError(Verdict.UNSUPPORTED, f"raw program does not link here: {reason}", line) from None
        verdict = Verdict.LINK_ERROR if message.startswith("GLSL Linker failed") else Verdict.COMPILE_ERROR
        raise ProgramError(verdict, reason, line) from None
    except Exception as exc:  # noqa: BLE001 - moderngl's own source handling can raise anything
        verdict = Verdict.UNSUPPORTED if dialect == "raw" else Verdict.COMPILE_ERROR
        raise ProgramError(verdict, f"cannot compile: {exc}"[:MAX_REASON_CHARS]) from None
