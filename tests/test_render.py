"""The renderer in this process: golden pixels, determinism, uniforms, and a verdict for each kind of program."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from renderer.compiler import compile_program
from renderer.frames import frame_specs
from renderer.jobs import FrameSpec, ProgramSource, RenderJob, Verdict
from renderer.judge import FLAT_TOLERANCE, judge
from renderer.worker import render_job

GRADIENT = "void mainImage(out vec4 fragColor, in vec2 fragCoord) {\n    fragColor = vec4(fragCoord / iResolution.xy, 0.25, 0.5);\n}\n"
ANIMATED = (
    "void mainImage(out vec4 c, in vec2 f) {\n"
    "    vec2 uv = f / iResolution.xy;\n"
    "    c = vec4(0.5 + 0.5 * sin(uv.x * 9.0 + iTime), uv.y, 0.5 + 0.5 * cos(iTime), 1.0);\n"
    "}\n"
)


def _unorm8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def test_golden_gradient(gl_context):
    width, height = 8, 4
    program = compile_program(gl_context, ProgramSource("shadertoy", GRADIENT))
    pixels = program.render(FrameSpec(time=1.5), width, height)
    program.release()
    columns = (np.arange(width) + 0.5) / width
    rows_from_bottom = (np.arange(height) + 0.5) / height
    expected = np.zeros((height, width, 3), np.uint8)
    expected[..., 0] = _unorm8(columns)[None, :]
    expected[..., 1] = _unorm8(rows_from_bottom[::-1])[:, None]  # top row first
    expected[..., 2] = _unorm8(np.float32(0.25))
    assert pixels.shape == (height, width, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, expected)


def test_render_is_deterministic_and_reusable(gl_context):
    program = compile_program(gl_context, ProgramSource("shadertoy", ANIMATED))
    first = program.render(FrameSpec(time=2.37), 64, 48)
    other = program.render(FrameSpec(time=5.11), 64, 48)
    again = program.render(FrameSpec(time=2.37), 64, 48)
    bigger = program.render(FrameSpec(time=2.37), 96, 32)
    program.release()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int)).mean() > 5
    assert bigger.shape == (32, 96, 3)


UNINITIALISED = """
float hits;
void shade(out vec3 colour, float x) { if (x > 2.0) colour = vec3(1.0); }
void mainImage(out vec4 f, in vec2 p) {
    vec3 acc;
    acc += 0.25;
    hits += 0.5;
    vec3 untouched;
    shade(untouched, 0.0);
    f += vec4(acc.x, hits, 0.0, 0.0) + vec4(untouched, 0.0);
}
"""


def test_unwritten_variables_start_at_zero_as_in_webgl(gl_context):
    program = compile_program(gl_context, ProgramSource("shadertoy", UNINITIALISED))
    pixels = program.render(FrameSpec(time=1.0), 16, 8)
    program.release()
    # Locals, globals and out parameters start at zero; mainImage's colour starts opaque black.
    assert (pixels == np.array([64, 128, 0], np.uint8)).all()


def test_render_job_is_deterministic(gl_context):
    frames = frame_specs("test:deterministic:0", 3, 32, 32)
    job = RenderJob(key=1, program=ProgramSource("shadertoy", ANIMATED), frames=frames, width=32, height=32, keep_frames=True)
    a, b = render_job(gl_context, job), render_job(gl_context, job)
    assert a.verdict == Verdict.OK and a.animated is True
    for x, y in zip(a.frames, b.frames):
        np.testing.assert_array_equal(x, y)
    assert a.thumbnail_png == b.thumbnail_png
    assert Image.open(io.BytesIO(a.thumbnail_png)).size == (32, 32)


def test_frame_specs_are_seeded_in_range_and_off_whole_seconds():
    specs = frame_specs("shadertoy:abc:0", 16, 128, 96)
    assert specs == frame_specs("shadertoy:abc:0", 16, 128, 96)
    assert specs != frame_specs("shadertoy:abd:0", 16, 128, 96)
    for spec in specs:
        assert 0.1 <= spec.time <= 10.0 and abs(spec.time - round(spec.time)) >= 0.049
        assert 0 <= spec.mouse[0] <= 128 and 0 <= spec.mouse[1] <= 96


def test_host_uniforms_per_dialect(gl_context):
    frame = FrameSpec(time=3.25, mouse=(32.0, 16.0, 32.0, 16.0))
    sandbox = ("uniform float time; uniform vec2 mouse; uniform vec2 resolution; uniform vec2 surfaceSize;\n"
               "varying vec2 surfacePosition;\n"
               "void main() { gl_FragColor = vec4(mouse, surfacePosition.x / surfaceSize.x + 0.5, 1.0); }")
    book = ("uniform vec2 u_mouse; uniform vec2 u_resolution; uniform float u_time;\n"
            "void main() { gl_FragColor = vec4(u_mouse / u_resolution, fract(u_time), 1.0); }")
    toy = ("void mainImage(out vec4 c, in vec2 f) {\n"
           "    c = vec4(iMouse.xy / iResolution.xy, iTimeDelta * 60.0 * 0.5, 1.0);\n"
           "    c.b += float(iFrame == 7) * 0.25 + step(59.0, iFrameRate) * 0.0 + (iChannelResolution[0].x > 0.0 ? 0.0 : 0.25);\n"
           "}")
    out = {}
    for dialect, code in (("glslsandbox", sandbox), ("bookofshaders", book), ("shadertoy", toy)):
        program = compile_program(gl_context, ProgramSource(dialect, code))
        out[dialect] = program.render(FrameSpec(time=3.25, mouse=frame.mouse, frame=7), 64, 64).astype(int)
        program.release()
    assert tuple(out["glslsandbox"][0, 0, :2]) == (128, 64)  # mouse normalised to 0..1
    assert abs(out["glslsandbox"][0, 0, 2] - 2) <= 2 and abs(out["glslsandbox"][0, -1, 2] - 253) <= 2  # surface spans -w/2..w/2
    assert tuple(out["bookofshaders"][0, 0]) == (128, 64, 64)  # mouse in pixels, time 3.25
    assert tuple(out["shadertoy"][0, 0]) == (128, 64, 255)  # iTimeDelta 1/60, iFrame 7, unbound channel 0x0


def _job(code: str, dialect: str = "shadertoy", channels=(None, None, None, None), buffers: int = 0) -> RenderJob:
    source = ProgramSource(dialect, code, channels=channels, buffer_passes=buffers)
    return RenderJob(key=7, program=source, frames=frame_specs("t", 2, 32, 32), width=32, height=32)


CUBE = "void mainImage(out vec4 c, in vec2 f) { c = texture(iChannel1, normalize(vec3(f / iResolution.xy - 0.5, 1.0))); }"
VOLUME = "void mainImage(out vec4 c, in vec2 f) { c = texture(iChannel2, vec3(f / iResolution.xy, iTime * 0.1)); }"


@pytest.mark.parametrize(
    "job, verdict, reason_part",
    [
        (_job(ANIMATED), Verdict.OK, ""),
        (_job(CUBE, channels=(None, "cubemap", None, None)), Verdict.OK, ""),
        (_job(VOLUME, channels=(None, None, "volume", None)), Verdict.OK, ""),
        (_job("#version 300 es\n#extension GL_EXT_shader_texture_lod : enable\nprecision mediump float;\n" + ANIMATED), Verdict.OK, ""),
        (_job("void mainImage(out vec4 c, in vec2 f) {\n c = vec4(1.0)\n}"), Verdict.COMPILE_ERROR, "syntax error"),
        (_job("float g(float x);\nvoid mainImage(out vec4 c, in vec2 f) { c = vec4(g(f.x)); }"), Verdict.LINK_ERROR, "`g'"),
        (_job("void mainImage(out vec4 c, in vec2 f) { c = vec4(0.3, 0.2, 0.1, 0.0); }"), Verdict.BLANK, "one colour"),
        (_job("void mainImage(out vec4 c, in vec2 f) { c = vec4(log(-1.0 - f.x)); }"), Verdict.BLANK, "NaN"),
        (_job(ANIMATED, channels=("keyboard", None, None, None)), Verdict.OK, ""),
        (_job(ANIMATED, channels=("texture", "webcam", None, "music")), Verdict.NEEDS_INPUT, "music, webcam"),
        (_job(ANIMATED, channels=("mic", "musicstream", "video", None)), Verdict.NEEDS_INPUT, "mic, musicstream, video"),
        (_job(ANIMATED, buffers=2), Verdict.UNSUPPORTED, "Buffer A-D"),
        (_job("   \n\n"), Verdict.COMPILE_ERROR, "empty program"),
        (_job("\xff\xfe garbage \udc80", dialect="raw"), Verdict.UNSUPPORTED, ""),
        (_job("// " + "x" * 1_000_000 + "\n" + ANIMATED), Verdict.OK, ""),
        (_job("void main() { gl_FragColor = vec4(gl_FragCoord.xy / 32.0, 0.0, 1.0); }", dialect="raw"), Verdict.OK, ""),
    ],
    ids=["ok", "cubemap", "volume", "directives", "compile", "link", "flat", "nan", "keyboard", "live-inputs", "live-streams",
         "buffers", "empty", "non-utf8", "one-megabyte", "raw"],
)
def test_every_verdict_render_job_decides(gl_context, job, verdict, reason_part):
    result = render_job(gl_context, job)
    assert result.verdict == verdict, result.reason
    assert reason_part in result.reason
    if verdict == Verdict.OK:
        assert len(result.render_ms) == 2 and result.compile_ms > 0 and result.thumbnail_png


def test_blank_rule_thresholds():
    flat = np.full((100, 100, 3), 40, np.uint8)
    assert judge([flat])[0] == Verdict.BLANK
    speck = flat.copy()
    speck[:2, :5] = 255  # 10 pixels = 0.1 %: still nearly one colour
    assert judge([speck])[0] == Verdict.BLANK
    speck[2, :1] = 255  # 11 pixels: an image (a thin line drawing is one)
    assert judge([speck])[0] == Verdict.OK
    noisy = flat + np.random.default_rng(0).integers(0, FLAT_TOLERANCE + 1, flat.shape).astype(np.uint8)
    assert judge([noisy])[0] == Verdict.BLANK  # within the tolerance everywhere
    all_nan = judge([flat, flat], [1.0, 0.9])
    assert all_nan[0] == Verdict.BLANK and "NaN" in all_nan[1].reason
    assert judge([speck], [0.6])[0] == Verdict.OK  # NaN shows black; the rest is an image
