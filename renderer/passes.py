"""Multi-pass Shadertoy programs: Buffer A-D feeding each other and the Image pass, frame after frame.

Such a program is a simulation: frame n is only defined after frames 0..n-1, with iFrame = n,
iTime = n / 60 and iTimeDelta = 1 / 60 (a FrameSpec's own `time` is ignored). Each buffer is its own
program (with the Common code) drawing into canvas-sized RGBA32F targets, two per buffer (ping-pong),
zero at frame 0. Per frame the buffers are drawn in Shadertoy's order, A to D, then the Image pass; a
pass reading a buffer sees it as of that moment: its own and later buffers as of the previous frame,
earlier ones as of this frame. The Image pass is only drawn for the frames asked for.

A GLSL Sandbox program that declares `backbuffer` is the same kind of simulation with one pass, itself:
frame n reads frame n-1's output in `backbuffer` (zero at frame 0), kept as the website keeps it, in
canvas-sized 8-bit RGBA textures sampled nearest and clamped (so a fading trail stops where it does there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import moderngl

from renderer.dialects import wrap, wrap_shadertoy
from renderer.jobs import BUFFER_KINDS, Bindings, BufferPass, FrameSpec, ProgramSource
from renderer.program import BACKBUFFER, CompiledProgram, ProgramError, RenderedFrame, link, pass_title
from renderer.textures import BoundTexture, effective_sampler

FRAME_RATE = 60.0
# Frames validation judges (see README "Multi-pass programs"): the first frame, then three more within
# the first second, so a simulation that only comes alive after a few frames is still seen; more frames
# (--frames > 4) go on a second apart.
CHECKPOINT_FRAMES = (0, 9, 29, 59)


def checkpoint_frames(count: int) -> tuple[FrameSpec, ...]:
    """`count` frames of a simulation to judge, in order, as the website shows them on load (mouse untouched)."""
    numbers = list(CHECKPOINT_FRAMES[:count])
    while len(numbers) < count:
        numbers.append(numbers[-1] + int(FRAME_RATE))
    return tuple(simulation_frame(n) for n in numbers)


def simulation_frame(number: int, mouse: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)) -> FrameSpec:
    return FrameSpec(time=number / FRAME_RATE, mouse=mouse, frame=number)


def _compile_buffer(ctx: moderngl.Context, source: ProgramSource, buffer: BufferPass) -> CompiledProgram:
    channels = tuple(b.kind if b else None for b in buffer.inputs)
    pass_source = replace(source, image=buffer.code, channels=channels, inputs=buffer.inputs, buffers=())
    try:
        program = link(ctx, wrap_shadertoy(pass_source, keep_alpha=True), source.dialect)
    except ProgramError as exc:
        # The line number is the buffer's own, not the image's: it goes into the reason only.
        raise ProgramError(exc.verdict, f"{pass_title(buffer.kind)}: {exc.reason}") from None
    return CompiledProgram(ctx, pass_source, program, inputs=buffer.inputs)


def _mipmapped(source: ProgramSource) -> frozenset[str]:
    """Buffers some pass reads through a mipmap filter: their mipmaps are rebuilt after each draw."""
    readers: list[Bindings] = [source.image_inputs] + [p.inputs for p in source.buffers]
    return frozenset(b.buffer for inputs in readers for b in inputs
                     if b is not None and b.kind == "buffer" and effective_sampler(b).filter == "mipmap")


def compile_simulation(ctx: moderngl.Context, source: ProgramSource) -> MultipassProgram:
    """A program with Buffer A-D passes, or else one that reads `backbuffer`, compiled to be simulated."""
    if source.buffers or not source.reads_backbuffer:
        return compile_multipass(ctx, source)
    return FeedbackProgram(ctx, source, CompiledProgram(ctx, source, link(ctx, wrap(source), source.dialect)))


def compile_multipass(ctx: moderngl.Context, source: ProgramSource) -> MultipassProgram:
    """Compile every pass; the caller has run `preflight` (empty passes, missing buffers)."""
    ordered = sorted(source.buffers, key=lambda p: BUFFER_KINDS.index(p.kind))
    compiled: list[CompiledProgram] = []
    try:
        for buffer in ordered:
            compiled.append(_compile_buffer(ctx, source, buffer))
        image = CompiledProgram(ctx, source, link(ctx, wrap(source), source.dialect))
    except BaseException:
        for program in compiled:
            program.release()
        raise
    targets = [_BufferTarget(p.kind, program, p.kind in _mipmapped(source)) for p, program in zip(ordered, compiled)]
    return MultipassProgram(ctx, source, targets, image)


@dataclass
class _BufferTarget:
    """One buffer pass and its two textures (float unless `dtype` says): `latest` holds the last frame drawn,
    the other is written next. `nearest` samples them nearest and clamped, for a `backbuffer` (no sampler
    object is bound on its unit; Buffer A-D are read through their channel's sampler instead)."""

    kind: str
    program: CompiledProgram
    mipmaps: bool
    dtype: str = "f4"
    nearest: bool = False
    textures: list[moderngl.Texture] = field(default_factory=list)
    framebuffers: list[moderngl.Framebuffer] = field(default_factory=list)
    latest: int = 0

    def allocate(self, ctx: moderngl.Context, width: int, height: int) -> None:
        self.release_targets()
        for _ in range(2):
            texture = ctx.texture((width, height), 4, dtype=self.dtype)
            if self.nearest:
                texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
                texture.repeat_x = texture.repeat_y = False
            framebuffer = ctx.framebuffer(color_attachments=[texture])
            framebuffer.clear(0.0, 0.0, 0.0, 0.0)
            self.textures.append(texture)
            self.framebuffers.append(framebuffer)
        self.latest = 0
        if self.mipmaps:
            self.textures[0].build_mipmaps()

    def bound(self, previous: bool = False) -> BoundTexture:
        """The last frame drawn, or (`previous`) the one before it."""
        texture = self.textures[1 - self.latest if previous else self.latest]
        return BoundTexture(texture, (float(texture.width), float(texture.height), 1.0))

    def release_targets(self) -> None:
        for framebuffer, texture in zip(self.framebuffers, self.textures):
            framebuffer.release()
            texture.release()
        self.framebuffers, self.textures = [], []


class MultipassProgram:
    """A compiled multi-pass program; `render_frame` simulates up to the frame asked for and draws its image.

    Frames asked for in increasing order cost one simulation in all; an earlier frame or another size
    starts again from frame 0.
    """

    def __init__(self, ctx: moderngl.Context, source: ProgramSource, targets: list[_BufferTarget],
                 image: CompiledProgram) -> None:
        self.ctx = ctx
        self.source = source
        self._targets = targets
        self._image = image
        self._size: tuple[int, int] | None = None
        self._next_frame = 0
        self._step_seconds: list[float] = []

    def _restart(self, width: int, height: int) -> None:
        for target in self._targets:
            target.allocate(self.ctx, width, height)
        self._size = (width, height)
        self._next_frame = 0
        self._step_seconds = []

    def _buffers(self) -> dict[str, BoundTexture]:
        return {target.kind: target.bound() for target in self._targets}

    def _image_buffers(self) -> dict[str, BoundTexture]:
        """What the image pass reads, once this frame's buffers are drawn."""
        return self._buffers()

    def _step(self, frame: FrameSpec, width: int, height: int) -> None:
        """Draw every buffer once, in order: each sees the buffers before it as of this frame."""
        begin = time.perf_counter()
        for target in self._targets:
            written = 1 - target.latest
            target.program.draw(target.framebuffers[written], frame, width, height, self._buffers())
            target.latest = written
            if target.mipmaps:
                target.textures[written].build_mipmaps()
        self.ctx.finish()  # so the step's time is the drawing's, not the queueing's
        self._step_seconds.append(time.perf_counter() - begin)
        self._next_frame = frame.frame + 1

    def _continues(self, target: int, width: int, height: int) -> bool:
        # The frame drawn last (next - 1) is drawn again from the buffers as they are, without a restart.
        return self._size == (width, height) and target + 1 >= self._next_frame

    def steps_to(self, frame: FrameSpec, width: int, height: int) -> int:
        """Simulation steps that drawing `frame` at this size takes from here (from frame 0 when it lies behind)."""
        target = max(0, int(frame.frame))
        return target + 1 - self._next_frame if self._continues(target, width, height) else target + 1

    def seconds_to_reach(self, frame: FrameSpec, width: int, height: int) -> float:
        """What simulating up to `frame` is expected to take from here, at the pace so far (0: no pace yet)."""
        if not self._step_seconds or self._size != (width, height):
            return 0.0
        return self.steps_to(frame, width, height) * sum(self._step_seconds) / len(self._step_seconds)

    def seconds_to_draw(self, frames: tuple[FrameSpec, ...] | list[FrameSpec], width: int, height: int) -> float:
        """What drawing `frames`, in this order, is expected to take from here (0: no pace yet). At another size
        the simulation starts again, at the pace so far scaled by the pixels (never below it); each frame drawn
        also counts one step, for its image pass."""
        if not self._step_seconds or not self._size:
            return 0.0
        pace = sum(self._step_seconds) / len(self._step_seconds)
        same_size = self._size == (width, height)
        if not same_size:
            pace *= max(1.0, (width * height) / float(self._size[0] * self._size[1]))
        position = self._next_frame if same_size else 0
        steps = 0
        for frame in frames:
            target = max(0, int(frame.frame))
            if target + 1 < position:  # behind the simulation: it starts again from frame 0
                position = 0
            steps += target + 1 - position + 1
            position = target + 1
        return steps * pace

    def restart(self) -> None:
        """Start the simulation again from frame 0 at the next frame drawn, whichever it is."""
        self._size = None

    def render_frame(self, frame: FrameSpec, width: int, height: int) -> RenderedFrame:
        target = max(0, int(frame.frame))
        if not self._continues(target, width, height):
            self._restart(width, height)
        while self._next_frame <= target:
            self._step(simulation_frame(self._next_frame, frame.mouse), width, height)
        return self._image.render_frame(simulation_frame(target, frame.mouse), width, height, self._image_buffers())

    def render(self, frame: FrameSpec, width: int, height: int):
        """HxWx3 uint8, top row first."""
        return self.render_frame(frame, width, height).pixels

    def compiled_passes(self) -> list[tuple[str, CompiledProgram]]:
        """Each pass (buffer_a..d, image) and its program, in drawing order: what binds channels."""
        return [(target.kind, target.program) for target in self._targets] + [("image", self._image)]

    def release(self) -> None:
        for target in self._targets:
            target.release_targets()
            target.program.release()
        self._image.release()


class FeedbackProgram(MultipassProgram):
    """A GLSL Sandbox program reading `backbuffer`: its one buffer is its own output, drawn each frame
    reading the frame before. The frame asked for is drawn once more to a float target (from the same
    previous frame), so that NaN and Inf are seen before the 8-bit buffer clamps them."""

    def __init__(self, ctx: moderngl.Context, source: ProgramSource, program: CompiledProgram) -> None:
        itself = _BufferTarget(BACKBUFFER, program, mipmaps=False, dtype="f1", nearest=True)
        super().__init__(ctx, source, [itself], program)

    def _image_buffers(self) -> dict[str, BoundTexture]:
        return {target.kind: target.bound(previous=True) for target in self._targets}

    def compiled_passes(self) -> list[tuple[str, CompiledProgram]]:
        return [("image", self._image)]  # its one buffer is the image pass itself

    def release(self) -> None:
        for target in self._targets:
            target.release_targets()
        self._image.release()  # the targets' program too: it is the same one
