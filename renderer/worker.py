"""What a render worker does with one job, whichever executor runs it (local pool or Ray actor)."""

from __future__ import annotations

import time

import moderngl
import numpy as np

from renderer.compiler import compile_program
from renderer.images import png_bytes
from renderer.jobs import FrameSet, FrameSpec, RenderJob, RenderResult, Standin, Verdict
from renderer.judge import judge
from renderer.passes import MultipassProgram
from renderer.program import CompiledProgram, ProgramError
from renderer.textures import ChannelTextures, channel_textures

_WARMUP_FRAME = FrameSpec(time=0.0)
MAX_MEDIA_CHARS = 200  # of a media name recorded with a stand-in (it comes from the record)


def render_job(ctx: moderngl.Context, job: RenderJob) -> RenderResult:
    """Compile, draw every frame, judge. Never raises for a bad program: its verdict says what failed.

    (A hang is not caught here: the executor enforces `job.timeout_s` by killing the worker.)
    """
    started = time.perf_counter()
    textures = channel_textures(ctx)
    textures.use_media_dir(job.media_dir)
    try:
        program = compile_program(ctx, job.program)
    except ProgramError as exc:
        return RenderResult(key=job.key, verdict=exc.verdict, reason=exc.reason, error_line=exc.line)
    try:
        # llvmpipe compiles machine code at the first draw: a 1x1 draw puts that in compile time.
        program.render_frame(_WARMUP_FRAME, 1, 1)
        compile_ms = (time.perf_counter() - started) * 1000.0
        standins = program_standins(program, textures)
        frames, shares, render_ms = [], [], []
        for spec in job.frames:
            if _out_of_time(program, job, spec, started, len(frames)):
                break
            begin = time.perf_counter()
            rendered = program.render_frame(spec, job.width, job.height)
            render_ms.append(round((time.perf_counter() - begin) * 1000.0, 3))
            frames.append(rendered.pixels)
            shares.append(rendered.nonfinite_fraction)
        verdict, stats = judge(frames, shares)
        extras = _draw_extras(program, job, started, render_ms, frames) if verdict == Verdict.OK else {}
    finally:
        program.release()
    return RenderResult(
        key=job.key,
        verdict=verdict,
        reason=stats.reason,
        compile_ms=round(compile_ms, 3),
        render_ms=render_ms,
        frame_means=stats.means,
        frame_stds=stats.stds,
        animated=stats.animated,
        thumbnail_png=png_bytes(frames[0]) if frames else None,
        frames=frames if job.keep_frames else None,
        extras=extras,
        standins=standins,
    )


def program_standins(program: CompiledProgram | MultipassProgram, textures: ChannelTextures) -> list[Standin]:
    """The channels of every pass that read a stand-in for what the website binds: media not read from
    --media-dir, or a buffer the record does not name. Channels the compiled code never reads are left out."""
    passes = program.compiled_passes() if isinstance(program, MultipassProgram) else [("image", program)]
    drawn_buffers = isinstance(program, MultipassProgram)
    found: list[Standin] = []
    for pass_kind, compiled in passes:
        for index, binding in enumerate(compiled.inputs):
            if binding is None or not compiled.samples_channel(index):
                continue
            if binding.kind == "buffer" and drawn_buffers:
                continue
            reason = textures.for_binding(binding, index).standin
            if reason is not None:
                found.append(Standin(pass_kind, index, binding.kind, binding.media[:MAX_MEDIA_CHARS], reason))
    return found


def _out_of_time(program: CompiledProgram | MultipassProgram, job: RenderJob, spec: FrameSpec, started: float,
                 drawn: int) -> bool:
    """Whether to judge the frames drawn so far instead of simulating on to `spec`: only for a job that
    allows it (`min_frames`, once that many are drawn) and when `spec` would take over half of the time left."""
    if job.min_frames is None or drawn < job.min_frames or not isinstance(program, MultipassProgram):
        return False
    left_s = job.timeout_s - (time.perf_counter() - started)
    return program.seconds_to_reach(spec, job.width, job.height) > 0.5 * left_s


def _draw_extras(program: CompiledProgram | MultipassProgram, job: RenderJob, started: float,
                 render_ms: list[float], verdict_frames: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Each extra set that fits, in order; a set that does not fit is left for its stage to draw later.

    A frame the verdict already drew at the set's size is taken as drawn: a simulation would otherwise start
    again from frame 0 to draw it (and a single-pass program draws the same pixels again)."""
    judged = dict(zip(job.frames, verdict_frames))
    drawn: dict[str, list[np.ndarray]] = {}
    for frame_set in job.extras:
        known = judged if (frame_set.width, frame_set.height) == (job.width, job.height) else {}
        if isinstance(program, MultipassProgram):
            to_draw = [spec for spec in frame_set.frames if spec not in known]
            fits = _simulation_fits(program, job, frame_set, to_draw, started)
        else:
            fits = _extra_frames_fit(job, frame_set, started, render_ms)
        if fits:
            size = (frame_set.width, frame_set.height)
            drawn[frame_set.name] = [known[spec] if spec in known else program.render(spec, *size)
                                     for spec in frame_set.frames]
    return drawn


def _simulation_fits(program: MultipassProgram, job: RenderJob, frame_set: FrameSet, to_draw: list[FrameSpec],
                     started: float) -> bool:
    """The same rule for a simulation, at the pace of its steps so far: simulating on to the set's frames (or
    again from frame 0, at another size) must take at most half of the time left."""
    if not frame_set.frames:
        return False
    left_s = job.timeout_s - (time.perf_counter() - started)
    return program.seconds_to_draw(to_draw, frame_set.width, frame_set.height) <= 0.5 * left_s


def _extra_frames_fit(job: RenderJob, frame_set: FrameSet, started: float, render_ms: list[float]) -> bool:
    """Extra frames must never turn an `ok` program into a timeout: draw them only when, at the verdict frames'
    pace scaled to their size (never below it), they take at most half of the time left."""
    if not render_ms or not frame_set.frames:
        return False
    area = max(1.0, (frame_set.width * frame_set.height) / float(job.width * job.height))
    expected_s = max(render_ms) / 1000.0 * area * len(frame_set.frames)
    left_s = job.timeout_s - (time.perf_counter() - started)
    return expected_s <= 0.5 * left_s
