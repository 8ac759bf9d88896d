"""Atlas rendering: tile k of one atlas draw equals a single draw of the same frame, bit for bit, on llvmpipe."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.atlas import AtlasProgram, max_atlas_size, plan_layout, render_atlas
from renderer.atlas_source import AtlasError
from renderer.compiler import compile_program
from renderer.errors import RenderError
from renderer.frames import frame_specs
from renderer.jobs import BufferPass, FrameSpec, ProgramSource

TIME_GRADIENT = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    colour = vec4(0.5 + 0.5 * sin(uv.x * 7.0 + iTime * 1.3), uv.y, fract(iTime * 0.37 + iDate.w * 0.001), 1.0);
}
"""
MOUSE_DRIVEN = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    float d = length(fragCoord - iMouse.xy) / iResolution.y;
    float pressed = iMouse.z > 0.0 ? 1.0 : 0.0;
    colour = vec4(exp(-4.0 * d), pressed, fract(float(iFrame) * 0.013 + iChannelTime[2] * 0.1), 1.0);
}
"""
# A global initialiser reading a host uniform, and derivatives of values that change inside every 2x2 quad.
DERIVATIVES = """
float speed = iTime * 2.0;
void mainImage(out vec4 colour, in vec2 fragCoord) {
    float wave = sin(length(fragCoord - iResolution.xy * 0.5) * 0.7 + speed);
    colour = vec4(fwidth(wave) * 3.0, dFdx(wave) * 4.0 + 0.5, dFdy(gl_FragCoord.y * wave) * 0.05 + 0.5, 1.0);
}
"""
PART_NAN = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    colour = vec4(sqrt(uv.x - 0.4 + 0.2 * sin(iTime)), log(uv.y - 0.3), uv.x / (uv.y - 0.5), 1.0);
}
"""
# fragCoord, gl_FragCoord and iResolution everywhere, with a pattern that changes every pixel.
COORDINATES = """
vec3 cell(vec2 p) {
    vec2 q = floor(p / 3.0);
    return vec3(mod(q.x + q.y, 2.0), fract(gl_FragCoord.x * 0.173), fract(p.y * iResolution.x * 0.0071 + iTime));
}
void mainImage(out vec4 colour, in vec2 fragCoord) {
    vec2 centred = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    colour = vec4(cell(fragCoord) * 0.5 + 0.25 * vec3(centred, gl_FragCoord.y / iResolution.y), 1.0);
}
"""
# Floats on both sides of every x.5/255 rounding point, and each kind of non-finite value in one channel.
ROUNDING_EDGES = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    int index = int(fragCoord.y) * int(iResolution.x) + int(fragCoord.x);
    float level = float(index / 9 % 256);
    uint bits = floatBitsToUint((level + 0.5) / 255.0);
    float value = uintBitsToFloat(uint(int(bits) + index % 9 - 4));
    float zero = iTime * 0.0;
    float special = index % 13 == 0 ? 0.0 / zero : index % 13 == 1 ? 1.0 / zero : index % 13 == 2 ? -1.0 / zero : value;
    colour = vec4(value, special, 1.0 - value, 1.0);
}
"""
# A mipmapped stand-in texture: its level of detail comes from the derivatives of the coordinate.
TEXTURED = """
void mainImage(out vec4 colour, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy * (1.0 + 3.0 * fract(iTime * 0.1));
    colour = vec4(texture(iChannel0, uv).rgb, 1.0);
}
"""
SANDBOX = """
#ifdef GL_ES
precision mediump float;
#endif
// uniform float time;  (a commented-out declaration stays as it is)
uniform float time;
#define time time * 1.5
uniform vec2 resolution, mouse;
void main(void) {
    vec2 p = gl_FragCoord.xy / resolution;
    float ring = sin(distance(p, mouse) * 20.0 - time * 3.0);
    // gl_FragCoord is mediump in GLSL ES 1.00: Mesa computes this product at 16 bits.
    float stripes = fract(gl_FragCoord.y * 3.1456 + time);
    gl_FragColor = vec4(p.x, stripes, 0.5 + 0.5 * ring, 1.0);
}
"""
TWIGL_GEEK = """precision highp float;uniform vec2 r;uniform vec2 m;uniform float t;uniform float f;
void main(){vec2 p=(gl_FragCoord.xy*2.-r)/min(r.x,r.y);gl_FragColor=vec4(fract(p*3.+t+m),fract(f*.01),1);}"""
TWIGL_GEEKEST = "vec2 p=(FC.xy*2.-r)/r.y;o=vec4(hsv(t*.1+length(p-m),.6,1.),1.);"

PROGRAMS = {
    "time-gradient": ProgramSource("shadertoy", TIME_GRADIENT),
    "mouse-driven": ProgramSource("shadertoy", MOUSE_DRIVEN),
    "derivatives": ProgramSource("shadertoy", DERIVATIVES),
    "part-nan": ProgramSource("shadertoy", PART_NAN),
    "coordinates": ProgramSource("shadertoy", COORDINATES),
    "rounding-edges": ProgramSource("shadertoy", ROUNDING_EDGES),
    "texture-channel": ProgramSource("shadertoy", TEXTURED, channels=("texture", None, None, None)),
    "glslsandbox": ProgramSource("glslsandbox", SANDBOX),
    "twigl-geek": ProgramSource("twigl", TWIGL_GEEK, mode="geek"),
    "twigl-geekest-300es": ProgramSource("twigl", TWIGL_GEEKEST, mode="geekest 300es"),
}
STILL = {"rounding-edges"}  # the same image at every frame


def _frames(name: str, count: int, width: int, height: int) -> tuple[FrameSpec, ...]:
    # Mouse at the canvas' edges and a large frame number beside the usual random frames.
    edges = (FrameSpec(time=0.0, mouse=(0.0, float(height), -1.0, -1.0), frame=0),
             FrameSpec(time=123.456, mouse=(float(width), 0.0, float(width), 0.0), frame=1_000_003))
    return frame_specs(f"atlas:{name}", count - len(edges), width, height) + edges


@pytest.mark.parametrize("size", [(16, 16), (21, 13)], ids=["even", "odd"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_tile_equals_a_single_draw(gl_context, name, size):
    width, height = size
    source = PROGRAMS[name]
    frames = _frames(name, 7, width, height)
    tiles = render_atlas(gl_context, source, frames, width, height)
    single = compile_program(gl_context, source)
    try:
        expected = [single.render_frame(frame, width, height) for frame in frames]
    finally:
        single.release()
    assert len(tiles) == len(frames)
    for index, (got, want) in enumerate(zip(tiles, expected)):
        assert got.pixels.shape == (height, width, 3) and got.pixels.dtype == np.uint8
        assert got.pixels.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got.pixels, want.pixels, err_msg=f"tile {index}")
        assert got.nonfinite_fraction == want.nonfinite_fraction, f"tile {index}"
    if name not in STILL:  # not vacuous: the frames differ from one another
        assert len({tile.pixels.tobytes() for tile in tiles}) > 1


def test_nonfinite_share_counts_each_tile_alone(gl_context):
    frames = _frames("part-nan", 5, 24, 24)
    tiles = render_atlas(gl_context, PROGRAMS["part-nan"], frames, 24, 24)
    shares = [tile.nonfinite_fraction for tile in tiles]
    assert all(0.0 < share < 1.0 for share in shares)
    assert len(set(shares)) > 1  # sqrt's NaN region moves with the time


def test_program_is_reused_across_sizes_and_batches(gl_context):
    program = AtlasProgram(gl_context, PROGRAMS["time-gradient"], tiles=8)
    single = compile_program(gl_context, PROGRAMS["time-gradient"])
    try:
        for width, height, count in ((8, 8, 8), (30, 10, 3), (8, 8, 1)):
            frames = _frames(f"reuse:{width}:{count}", max(count, 2), width, height)[:count]
            for got, frame in zip(program.render(frames, width, height), frames):
                np.testing.assert_array_equal(got.pixels, single.render_frame(frame, width, height).pixels)
    finally:
        program.release()
        single.release()


def test_layout_is_square_and_even():
    layout = plan_layout(64, 32, 32, 16384)
    assert (layout.columns, layout.rows, layout.size) == (8, 8, (256, 256))
    odd = plan_layout(5, 21, 13, 16384)
    assert (odd.columns, odd.rows, odd.stride, odd.size) == (3, 2, (22, 14), (66, 28))
    narrow = plan_layout(10, 100, 10, 300)  # three columns fit, so more rows
    assert (narrow.columns, narrow.rows) == (3, 4)


def test_an_atlas_larger_than_the_gl_limit_is_refused(gl_context):
    limit = max_atlas_size(gl_context)
    program = AtlasProgram(gl_context, PROGRAMS["time-gradient"], tiles=4)
    try:
        with pytest.raises(AtlasError, match=f"larger than this GL's maximum of {limit}"):
            program.render(_frames("big", 4, limit, 8), limit, limit // 2 + 2)
        with pytest.raises(AtlasError, match="holds 1 to 4 frames, not 5"):
            program.render(_frames("many", 5, 8, 8), 8, 8)
    finally:
        program.release()
    with pytest.raises(AtlasError, match="larger than"):
        plan_layout(1, limit + 1, 8, limit)


def test_more_tiles_than_the_tile_data_can_hold_are_refused(gl_context):
    with pytest.raises(AtlasError, match="vec4s of tile data"):
        AtlasProgram(gl_context, PROGRAMS["time-gradient"], tiles=100_000)


def test_multipass_programs_are_refused(gl_context):
    buffered = ProgramSource("shadertoy", TIME_GRADIENT, buffers=(BufferPass("buffer_a", TIME_GRADIENT),),
                             buffer_passes=1)
    feedback = ProgramSource("glslsandbox", "uniform sampler2D backbuffer;\nvoid main() { gl_FragColor = vec4(1.0); }")
    for source in (buffered, feedback):
        with pytest.raises(AtlasError, match="multi-pass"):
            AtlasProgram(gl_context, source)


def test_what_an_atlas_cannot_draw_exactly_is_refused(gl_context):
    """surfacePosition is interpolated over the whole atlas, so its tiles would only be close to a single
    draw; a host name declared with another type stays a uniform that one draw would set for every tile."""
    surface = ProgramSource("glslsandbox", "varying vec2 surfacePosition;\nvoid main() { gl_FragColor = vec4(surfacePosition, 0.0, 1.0); }")
    with pytest.raises(AtlasError, match="surfacePosition"):
        AtlasProgram(gl_context, surface)
    mistyped = ProgramSource("glslsandbox", "uniform vec3 time;\nvoid main() { gl_FragColor = vec4(time, 1.0); }")
    with pytest.raises(AtlasError, match="declares time in a form"):
        AtlasProgram(gl_context, mistyped)
    assert issubclass(AtlasError, RenderError)  # the CLI prints it as one error line


def test_frame_numbers_beyond_float_precision_are_refused(gl_context):
    with pytest.raises(AtlasError, match="frame number"):
        render_atlas(gl_context, PROGRAMS["mouse-driven"], (FrameSpec(time=1.0, frame=1 << 24),), 8, 8)
