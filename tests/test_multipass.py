"""Multi-pass Shadertoy programs: pass order, ping-pong feedback, samplers, the keyboard, verdicts, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import select

from corpus.ingest import ingest_program
from corpus.models import Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from corpus.validation import ValidateOptions, validate
from renderer.compiler import compile_program
from renderer.executors import LocalExecutor
from renderer.jobs import BufferPass, ChannelBinding, ChannelSampler, FrameSpec, ProgramSource, RenderJob, Verdict
from renderer.passes import checkpoint_frames
from renderer.program import CompiledProgram
from renderer.worker import render_job
from tests.slow_programs import ENDLESS_FRAME

REPO = Path(__file__).resolve().parent.parent
SIZE = 16
A = ChannelBinding("buffer", "buffer_a")
B = ChannelBinding("buffer", "buffer_b")
# Buffer A: red = its own previous red + 1; green = Buffer B's red as A sees it.
COUNTER_A = ("void mainImage(out vec4 c, in vec2 f) {\n"
             "    c = vec4(texelFetch(iChannel0, ivec2(f), 0).x + 1.0, texelFetch(iChannel1, ivec2(f), 0).x, 0.0, 1.0);\n"
             "}\n")
COPY_RED = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texelFetch(iChannel0, ivec2(f), 0).x, 0.0, 0.0, 1.0); }\n"
# Image: A's red, A's green, B's red, as 0..255 counts.
SHOW_COUNTERS = ("void mainImage(out vec4 c, in vec2 f) {\n"
                 "    vec4 a = texelFetch(iChannel0, ivec2(f), 0), b = texelFetch(iChannel1, ivec2(f), 0);\n"
                 "    c = vec4(a.x, a.y, b.x, 255.0) / 255.0;\n"
                 "}\n")


def _counters() -> ProgramSource:
    return ProgramSource(
        "shadertoy", SHOW_COUNTERS, channels=("buffer", "buffer", None, None), inputs=(A, B, None, None),
        buffers=(BufferPass("buffer_a", COUNTER_A, (A, B, None, None)), BufferPass("buffer_b", COPY_RED, (A, None, None, None))),
        buffer_passes=2,
    )


def test_buffers_run_in_order_with_ping_pong_feedback(gl_context):
    program = compile_program(gl_context, _counters())
    try:
        seen = {n: tuple(program.render(FrameSpec(time=0.0, frame=n), SIZE, SIZE)[3, 5]) for n in (0, 1, 7, 20)}
        again = tuple(program.render(FrameSpec(time=0.0, frame=7), SIZE, SIZE)[3, 5])  # earlier: simulated again
    finally:
        program.release()
    # At frame n: A holds n + 1 (it adds 1 to its own last frame, zero at frame 0); B copies this frame's A;
    # A's green is B as of the previous frame (n).
    assert seen == {n: (n + 1, n, n + 1) for n in (0, 1, 7, 20)}
    assert again == seen[7]


def _sampled(gl_context, uv: str, sampler: ChannelSampler) -> int:
    """Red of the image reading Buffer A (red = column index + 0.5) at `uv`, with `sampler`, times 100."""
    column = "void mainImage(out vec4 c, in vec2 f) { c = vec4(f.x, 0.0, 0.0, 1.0); }\n"
    reader = f"void mainImage(out vec4 c, in vec2 f) {{ c = vec4(texture(iChannel0, {uv}).x * 100.0 / 255.0); }}\n"
    binding = ChannelBinding("buffer", "buffer_a", sampler)
    source = ProgramSource("shadertoy", reader, channels=("buffer", None, None, None), inputs=(binding, None, None, None),
                           buffers=(BufferPass("buffer_a", column),), buffer_passes=1)
    program = compile_program(gl_context, source)
    try:
        return int(program.render(FrameSpec(time=0.0, frame=0), SIZE, SIZE)[0, 0, 0])
    finally:
        program.release()


def test_buffer_reads_follow_the_records_filter_and_wrap(gl_context):
    between = "vec2(1.25 / 16.0, 0.5)"  # a quarter into texel 1: nearest is texel 1, linear mixes in texel 0
    assert _sampled(gl_context, between, ChannelSampler("nearest", "clamp")) == 150
    assert _sampled(gl_context, between, ChannelSampler("linear", "clamp")) == 125
    past_the_edge = "vec2(1.0 + 0.5 / 16.0, 0.5)"
    assert _sampled(gl_context, past_the_edge, ChannelSampler("nearest", "repeat")) == 50  # texel 0 again
    assert _sampled(gl_context, past_the_edge, ChannelSampler("nearest", "clamp")) == 255  # texel 15 (15.5 * 100)
    # vflip is an upload setting: a drawn buffer reads the same either way.
    assert _sampled(gl_context, between, ChannelSampler("nearest", "clamp", True)) == 150


def _texel(gl_context, binding: ChannelBinding, y: int) -> tuple[int, ...]:
    code = f"void mainImage(out vec4 c, in vec2 f) {{ c = texelFetch(iChannel0, ivec2(0, {y}), 0); }}\n"
    program = compile_program(gl_context, ProgramSource("shadertoy", code, channels=(binding.kind, None, None, None),
                                                        inputs=(binding, None, None, None)))
    try:
        return tuple(program.render(FrameSpec(time=0.0), 2, 2)[0, 0])
    finally:
        program.release()


def test_vflip_flips_an_uploaded_texture(gl_context):
    upright = ChannelBinding("texture", sampler=ChannelSampler(vflip=False))
    flipped = ChannelBinding("texture", sampler=ChannelSampler(vflip=True))
    assert _texel(gl_context, flipped, 0) == _texel(gl_context, upright, 255)
    assert _texel(gl_context, flipped, 0) != _texel(gl_context, upright, 0)


def test_channel_resolution_reports_what_is_bound(gl_context):
    code = ("void mainImage(out vec4 c, in vec2 f) {\n"
            "    c = vec4(iChannelResolution[0].xy, iChannelResolution[1].xy) / 255.0;\n}\n")
    keyboard = ChannelBinding("keyboard")
    source = ProgramSource("shadertoy", code, channels=("buffer", "keyboard", None, None), inputs=(A, keyboard, None, None),
                           buffers=(BufferPass("buffer_a", COPY_RED),), buffer_passes=1)
    program = compile_program(gl_context, source)
    try:
        pixel = program.render(FrameSpec(time=0.0), 24, 10)[0, 0]
    finally:
        program.release()
    # Red and green: the buffer is the canvas size (24x10); blue: the keyboard is 256 wide (clamped to 255).
    assert tuple(pixel) == (24, 10, 255)


KEYS = ("void mainImage(out vec4 c, in vec2 f) {\n"
        "    float down = texelFetch(iChannel0, ivec2(37, 0), 0).x, toggled = texelFetch(iChannel0, ivec2(32, 2), 0).x;\n"
        "    c = vec4(f.x / iResolution.x, down, toggled, 1.0);\n}\n")


def test_keyboard_is_a_texture_with_no_key_down(gl_context):
    source = ProgramSource("shadertoy", KEYS, channels=("keyboard", None, None, None))
    result = render_job(gl_context, RenderJob(key=1, program=source, frames=(FrameSpec(0.5), FrameSpec(1.5)),
                                              width=SIZE, height=SIZE, keep_frames=True))
    assert result.verdict == Verdict.OK, result.reason
    assert not result.frames[0][..., 1:].any()  # nothing pressed or toggled
    assert result.frames[0][0, -1, 0] > 200


def _verdict(gl_context, source: ProgramSource) -> tuple[Verdict, str]:
    result = render_job(gl_context, RenderJob(key=1, program=source, frames=checkpoint_frames(2), width=SIZE, height=SIZE))
    return result.verdict, result.reason


def test_bad_multipass_records_get_a_verdict_with_a_reason(gl_context):
    counters = _counters()
    only_a = ProgramSource("shadertoy", SHOW_COUNTERS, channels=("buffer", "buffer", None, None),
                           inputs=(A, ChannelBinding("buffer", "buffer_c"), None, None),
                           buffers=(BufferPass("buffer_a", COPY_RED, (A, None, None, None)),), buffer_passes=1)
    verdict, reason = _verdict(gl_context, only_a)
    assert verdict == Verdict.UNSUPPORTED and "iChannel1 of Image reads Buffer C" in reason
    empty = ProgramSource("shadertoy", SHOW_COUNTERS, inputs=counters.inputs,
                          buffers=(counters.buffers[0], BufferPass("buffer_b", "  \n")), buffer_passes=1)
    assert _verdict(gl_context, empty) == (Verdict.COMPILE_ERROR, "Buffer B has no code")
    broken = ProgramSource("shadertoy", SHOW_COUNTERS, inputs=counters.inputs,
                           buffers=(BufferPass("buffer_a", "void mainImage(out vec4 c, in vec2 f) {\n c = nope;\n}"),
                                    counters.buffers[1]), buffer_passes=2)
    verdict, reason = _verdict(gl_context, broken)
    assert verdict == Verdict.COMPILE_ERROR and reason.startswith("Buffer A: line 2:")
    cube = ProgramSource("shadertoy", SHOW_COUNTERS, buffers=counters.buffers, buffer_passes=2, cube_pass=True)
    verdict, reason = _verdict(gl_context, cube)
    assert verdict == Verdict.UNSUPPORTED and "Cube A" in reason
    no_code = ProgramSource("shadertoy", SHOW_COUNTERS, buffer_passes=2)  # a count without the passes' code
    assert _verdict(gl_context, no_code)[0] == Verdict.UNSUPPORTED


def test_a_simulation_is_judged_at_its_checkpoints(gl_context):
    frames = checkpoint_frames(4)
    assert [f.frame for f in frames] == [0, 9, 29, 59] and frames[2].time == pytest.approx(29 / 60)
    assert [f.frame for f in checkpoint_frames(6)] == [0, 9, 29, 59, 119, 179]
    shaded = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texelFetch(iChannel0, ivec2(f), 0).x / 255.0, f / 16.0, 1.0); }"
    program = replace(_counters(), image=shaded)
    result = render_job(gl_context, RenderJob(key=3, program=program, frames=frames, width=SIZE, height=SIZE,
                                              timeout_s=300, keep_frames=True, min_frames=1))  # all checkpoints fit
    assert result.verdict == Verdict.OK and result.animated
    assert [int(f[-1, 0, 0]) for f in result.frames] == [1, 10, 30, 60]


# --- the catalog and the CLI -----------------------------------------------------------------------

FEEDBACK_A = ("void mainImage(out vec4 c, in vec2 f) {\n"
              "    vec2 uv = f / iResolution.xy;\n"
              "    vec3 last = texture(iChannel0, uv).rgb * 0.9;\n"
              "    float spot = step(length(uv - vec2(0.5) - 0.3 * vec2(cos(iTime * 4.0), sin(iTime * 4.0))), 0.15);\n"
              "    c = vec4(max(last, vec3(spot, 0.5 * spot, float(iFrame % 2))), 1.0);\n}\n")
SHOW_A = "void mainImage(out vec4 c, in vec2 f) { c = texture(iChannel0, f / iResolution.xy); }\n"


def _buffer_input(name: str, channel: int = 0) -> ChannelInput:
    return ChannelInput(channel, "buffer", name, filter="linear", wrap="clamp", vflip=True)


def _add(catalog, source_id: str, image_inputs: list[ChannelInput], extra: list[FetchedPass]) -> int:
    fetched = FetchedProgram(source="test", source_id=source_id, url="", title=source_id, author="harvest contributors",
                             passes=[FetchedPass("image", SHOW_A, image_inputs), *extra], dialect="shadertoy",
                             license="CC0-1.0")
    with catalog.session() as session:
        return ingest_program(session, fetched).program_id


def test_validate_simulates_multipass_programs(catalog):
    feedback = [FetchedPass("buffer_a", FEEDBACK_A, [_buffer_input("buffer_a")])]
    good = _add(catalog, "feedback", [_buffer_input("buffer_a")], feedback)
    missing = _add(catalog, "missing", [_buffer_input("buffer_d")], feedback)
    keyboard = _add(catalog, "keys", [ChannelInput(0, "keyboard")], [])
    with LocalExecutor(workers=1) as pool:
        report = validate(catalog, pool, ValidateOptions(size=SIZE, frames=4, timeout_s=60))
    assert report.done == 3
    with catalog.session() as session:
        rows = {row.program_id: row for row in session.exec(select(Validation)).all()}
    assert rows[good].verdict == "ok" and rows[good].frames == 4 and len(rows[good].frame_means) == 4
    assert rows[missing].verdict == "unsupported" and "Buffer D" in rows[missing].reason
    assert rows[keyboard].verdict == "blank"  # a real verdict (it reads nothing but black), not needs_input


def test_a_simulation_past_the_timeout_is_a_timeout(catalog):
    endless = _add(catalog, "endless", [_buffer_input("buffer_a")], [FetchedPass("buffer_a", ENDLESS_FRAME)])
    with LocalExecutor(workers=1) as pool:
        validate(catalog, pool, ValidateOptions(size=96, frames=4, timeout_s=3))
    with catalog.session() as session:
        row = session.exec(select(Validation).where(Validation.program_id == endless)).one()
    assert row.verdict == "timeout"


def _shadertoy_json(path: Path) -> None:
    buffer_input = {"id": 257, "src": "/media/previz/buffer00.png", "ctype": "buffer", "channel": 0,
                    "sampler": {"filter": "nearest", "wrap": "clamp", "vflip": "true"}}
    record = {"Shader": {"ver": "0.1", "info": {"id": "tstMP1", "name": "counter", "username": "harvest contributors"},
                         "renderpass": [
                             {"type": "buffer", "name": "Buffer A", "code": COUNTER_A, "inputs": [buffer_input],
                              "outputs": [{"id": 257, "channel": 0}]},
                             {"type": "image", "name": "Image", "code": SHOW_COUNTERS, "inputs": [buffer_input],
                              "outputs": [{"id": 37, "channel": 0}]},
                         ]}}
    path.write_text(json.dumps(record))


def _harvest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harvester.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_render_command_simulates_up_to_the_frame_asked_for(tmp_path):
    program = tmp_path / "counter.json"
    _shadertoy_json(program)
    out = tmp_path / "frame.png"
    done = _harvest("render", "--file", str(program), "--frame", "12", "--size", "8x8", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "simulated from frame 0 to 12" in done.stdout
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert tuple(pixels[4, 4]) == (13, 0, 0)  # Buffer A counted frames 0..12; channel 1 is unbound
    clash = _harvest("render", "--file", str(program), "--frame", "3", "--time", "1", "--out", str(out))
    assert clash.returncode != 0 and "error: give --time or --frame" in clash.stderr and "Traceback" not in clash.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = _harvest("render", "--file", str(broken), "--out", str(out))
    assert done.returncode != 0 and "not valid JSON" in done.stderr and "Traceback" not in done.stderr


# --- GLSL Sandbox `backbuffer`: the program's own previous frame --------------------------------------

SANDBOX_HEADER = "precision mediump float;\nuniform float time;\nuniform vec2 mouse, resolution;\nuniform sampler2D backbuffer;\n"
SANDBOX_COUNTER = SANDBOX_HEADER + (
    "void main() { gl_FragColor = texture2D(backbuffer, gl_FragCoord.xy / resolution) + 1.0 / 255.0; }\n")


def test_backbuffer_counter_shows_one_more_step_each_frame(gl_context):
    program = compile_program(gl_context, ProgramSource("glslsandbox", SANDBOX_COUNTER))
    try:
        seen = {n: tuple(program.render(FrameSpec(time=0.0, frame=n), SIZE, SIZE)[3, 5]) for n in (0, 1, 9, 59)}
        again = tuple(program.render(FrameSpec(time=0.0, frame=9), SIZE, SIZE)[3, 5])  # earlier: simulated again
        wider = program.render(FrameSpec(time=0.0, frame=29), 2 * SIZE, SIZE)  # another size: from frame 0
    finally:
        program.release()
    assert seen == {n: (n + 1,) * 3 for n in (0, 1, 9, 59)}
    assert again == (10, 10, 10)
    assert wider.shape == (SIZE, 2 * SIZE, 3) and (wider == 30).all()


def test_backbuffer_keeps_the_websites_8_bit_frames(gl_context):
    # Frame 0 writes 1.5, which the website's 8-bit backbuffer keeps as 1.0; frame 1 takes 0.5 off what it reads.
    code = SANDBOX_HEADER + ("void main() {\n"
                             "    float last = texture2D(backbuffer, gl_FragCoord.xy / resolution).r;\n"
                             "    gl_FragColor = vec4(last > 0.0 ? last - 0.5 : 1.5, 0.0, 0.0, 1.0);\n}\n")
    program = compile_program(gl_context, ProgramSource("glslsandbox", code))
    try:
        assert int(program.render(FrameSpec(time=0.0, frame=1), SIZE, SIZE)[0, 0, 0]) == 128
    finally:
        program.release()


def test_a_sandbox_program_without_backbuffer_is_one_frame_of_its_time(gl_context):
    # `backbuffer` in a comment only: drawn as before, from the frame's time, whatever its frame number.
    code = ("precision mediump float;\nuniform float time; // no uniform sampler2D backbuffer; here\n"
            "void main() { gl_FragColor = vec4(fract(time), 0.5, 0.0, 1.0); }\n")
    source = ProgramSource("glslsandbox", code)
    assert not source.multipass
    program = compile_program(gl_context, source)
    try:
        assert isinstance(program, CompiledProgram)
        pixels = {tuple(program.render(FrameSpec(time=0.25, frame=n), SIZE, SIZE)[2, 2]) for n in (0, 30)}
    finally:
        program.release()
    assert pixels == {(64, 128, 0)}


def test_validate_simulates_a_backbuffer_program(catalog):
    trail = SANDBOX_HEADER + ("void main() {\n"
                              "    vec2 uv = gl_FragCoord.xy / resolution;\n"
                              "    vec2 spot = vec2(0.5) + 0.3 * vec2(cos(time * 4.0), sin(time * 4.0));\n"
                              "    vec4 last = texture2D(backbuffer, uv) * 0.95;\n"
                              "    gl_FragColor = max(last, vec4(step(length(uv - spot), 0.15)));\n}\n")
    fetched = FetchedProgram(source="test", source_id="trail", url="", title="trail", author="harvest contributors",
                             passes=[FetchedPass("image", trail, [])], dialect="glslsandbox", license="CC0-1.0")
    with catalog.session() as session:
        program_id = ingest_program(session, fetched).program_id
    with LocalExecutor(workers=1) as pool:
        validate(catalog, pool, ValidateOptions(size=SIZE, frames=4, timeout_s=60))
    with catalog.session() as session:
        row = session.exec(select(Validation).where(Validation.program_id == program_id)).one()
    assert row.verdict == "ok" and row.frames == 4 and row.animated
