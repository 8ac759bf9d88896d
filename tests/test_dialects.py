"""Dialect wrappers: what reaches the driver, and that its messages point at the user's own lines."""

from __future__ import annotations

import pytest

from renderer.compiler import compile_program
from renderer.dialects import clean_user_code, locate, sanitize, wrap
from renderer.jobs import FrameSpec, ProgramSource, Verdict
from renderer.program import ProgramError
from renderer.twigl import (
    TwiglMode,
    TwiglModeError,
    mode_from_lines,
    parenthesize_ternary_assignments,
    parse_mode,
    sniff_mode,
)


def test_version_and_extension_lines_are_blanked_and_hoisted():
    code = "#version 300 es\n#extension GL_OES_standard_derivatives : require\nvoid f() {}\n"
    clean = clean_user_code(code)
    assert clean.version == "300 es"
    assert clean.extensions == ("GL_OES_standard_derivatives",)
    assert clean.code.count("\n") == code.count("\n")  # line numbers survive
    assert "#version" not in clean.code and "#extension" not in clean.code


def test_sanitize_keeps_lines_and_drops_non_ascii():
    text = sanitize("a\r\nb\rc // caf\u00e9 \udcff\x00")
    assert text == "a\nb\nc // caf$ $$"


def test_include_becomes_an_error_directive():
    assert "#error include" in sanitize('#include "common.glsl"\n')


def test_shadertoy_wrapper_declares_every_uniform_and_cube_samplers():
    wrapped = wrap(ProgramSource("shadertoy", "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0); }",
                                 channels=("texture", "cubemap", "volume", None)))
    assert wrapped.fragment.startswith("#version 330 core\n")
    for name in ("iResolution", "iTime", "iTimeDelta", "iFrameRate", "iFrame", "iMouse", "iDate",
                 "iSampleRate", "iChannelTime[4]", "iChannelResolution[4]"):
        assert name in wrapped.fragment
    assert "uniform sampler2D iChannel0;" in wrapped.fragment
    assert "uniform samplerCube iChannel1;" in wrapped.fragment
    assert "uniform sampler3D iChannel2;" in wrapped.fragment
    assert "#line 1 0\n" in wrapped.fragment


def test_webgl1_wrappers_run_mediump_at_full_precision():
    wrapped = wrap(ProgramSource("glslsandbox", "precision mediump float;\nvoid main() { gl_FragColor = vec4(1.0); }"))
    assert wrapped.fragment.startswith("#version 100\n")
    assert "#define mediump highp" in wrapped.fragment


def test_locate_maps_common_and_wrapper_lines():
    assert locate(7) == (0, 7)
    assert locate(10_000_003) == (1, 3)
    assert locate(20_000_002) == (2, 2)


# --- through the driver -------------------------------------------------------------------------

USER_LINE = 6
SHADERTOY_BROKEN = "\n".join([
    "#version 300 es",  # 1: a directive the wrapper must take out without shifting lines
    "#extension GL_OES_standard_derivatives : enable",  # 2
    "precision highp float;",  # 3
    "// caf\u00e9 \u2014 non-ASCII in a comment",  # 4
    "void mainImage(out vec4 fragColor, in vec2 fragCoord) {",  # 5
    "    fragColor = vec4(undefinedThing);",  # 6
    "}",
])
SANDBOX_BROKEN = "\n".join([
    "#ifdef GL_ES",
    "precision mediump float;",
    "#endif",
    "uniform float time;",
    "void main(void) {",
    "    gl_FragColor = vec4(time) + missing;",  # 6
    "}",
])
BOOK_BROKEN = "\n".join([
    "#ifdef GL_ES",
    "precision mediump float;",
    "#endif",
    "uniform float u_time;",
    "void main() {",
    "    gl_FragColor = vec4(u_time) * nothere;",  # 6
    "}",
])


@pytest.mark.parametrize(
    "dialect, code",
    [("shadertoy", SHADERTOY_BROKEN), ("glslsandbox", SANDBOX_BROKEN), ("bookofshaders", BOOK_BROKEN)],
)
def test_error_line_is_the_users_line(gl_context, dialect, code):
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource(dialect, code))
    assert caught.value.verdict == Verdict.COMPILE_ERROR
    assert caught.value.line == USER_LINE
    assert caught.value.reason.startswith(f"line {USER_LINE}:")


def test_common_pass_is_prepended_and_image_lines_still_match(gl_context):
    common = "float helper(float x) {\n    return x * 2.0;\n}\n"
    image = "void mainImage(out vec4 c, in vec2 f) {\n    c = vec4(helper(1.0));\n    c += nope;\n}"
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("shadertoy", image, common=common))
    assert caught.value.line == 3


def test_error_in_common_pass_says_so(gl_context):
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("shadertoy", "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0); }",
                                                  common="\nfloat broken() { return 1.0 }\n"))
    assert caught.value.reason.startswith("Common pass line 2:")
    assert caught.value.line is None


def test_missing_main_image_is_explained(gl_context):
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("shadertoy", "float f() { return 1.0; }\n"))
    assert caught.value.verdict == Verdict.COMPILE_ERROR
    assert "mainImage" in caught.value.reason


def test_non_ascii_outside_a_comment_is_an_error_on_its_line(gl_context):
    code = "void mainImage(out vec4 c, in vec2 f) {\n    float caf\u00e9 = 1.0;\n    c = vec4(1.0);\n}"
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("shadertoy", code))
    assert caught.value.line == 2


def test_include_is_a_compile_error_not_a_crash(gl_context):
    code = '#include "lib.glsl"\nvoid mainImage(out vec4 c, in vec2 f) { c = vec4(1.0); }'
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("shadertoy", code))
    assert caught.value.verdict == Verdict.COMPILE_ERROR and caught.value.line == 1


def test_raw_program_that_does_not_link_is_unsupported(gl_context):
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("raw", "void main() { gl_FragColor = vec4(1.0) }"))
    assert caught.value.verdict == Verdict.UNSUPPORTED


# --- TwiGL ---------------------------------------------------------------------------------------------------


def test_twigl_mode_specs_and_mode_files():
    for spec in ("classic", "geek 300es", "geeker 300es mrt", "geekest ternary-fix", "geekest 300es ternary-fix"):
        assert parse_mode(spec).spec() == spec
    assert mode_from_lines("geekest\nTrue\nFalse\nTrue\n") == TwiglMode("geekest", es300=True, ternary_fix=True)
    assert mode_from_lines("geek\nFalse\nTrue\nFalse").spec() == "geek 300es mrt"  # MRT modes are ES 3.00 on the site
    assert mode_from_lines("classic\n") == TwiglMode("classic")
    with pytest.raises(TwiglModeError, match="unknown TwiGL mode 'turbo'"):
        mode_from_lines("turbo\nFalse\nFalse\nFalse\n")
    with pytest.raises(TwiglModeError, match="line 3 is 'perhaps'"):
        mode_from_lines("geek\nTrue\nperhaps\n")
    with pytest.raises(TwiglModeError, match="flag '400es'"):
        parse_mode("geek 400es")


def test_twigl_wrappers_declare_what_each_mode_supplies():
    classic = wrap(ProgramSource("twigl", "uniform float time;\nvoid main(){gl_FragColor=vec4(time);}", mode="classic"))
    assert classic.fragment.startswith("#version 100\n") and "uniform vec2 r;" not in classic.fragment
    geeker = wrap(ProgramSource("twigl", "void main(){o=vec4(t);}", mode="geeker 300es"))
    assert geeker.fragment.startswith("#version 330 core\n") and "out vec4 o;" in geeker.fragment
    assert "uniform float f;" in geeker.fragment and "#define FC" not in geeker.fragment
    geekest = wrap(ProgramSource("twigl", "gl_FragColor=vec4(FC.xy/r,0,1);", mode="geekest"))
    assert "#define FC gl_FragCoord" in geekest.fragment and "float snoise4D(vec4 v)" in geekest.fragment
    assert "void main() {\n#line 1 0\ngl_FragColor" in geekest.fragment  # the body gets its main()
    mrt = wrap(ProgramSource("twigl", "void main(){o0=vec4(1);o1=o0;}", mode="geekest 300es mrt"))
    assert "layout(location = 1) out vec4 o1;" in mrt.fragment and "uniform sampler2D b1;" in mrt.fragment
    assert "void main() {\n#line" not in mrt.fragment  # a geekest program with its own main keeps it


@pytest.mark.parametrize("code, spec", [
    ("precision highp float;uniform vec2 resolution;void main(){gl_FragColor=vec4(1);}", "classic"),
    ("uniform vec2 resolution;out vec4 outColor;void main(){outColor=vec4(1);}", "classic 300es"),
    ("precision highp float;uniform vec2 r;uniform float t;void main(){gl_FragColor=vec4(t);}", "geek"),
    ("void main(){gl_FragColor=vec4(t);}", "geeker"),
    ("void main(){o=vec4(t);}", "geeker 300es"),
    ("void main(){o0=vec4(t);o1=o0;}", "geeker 300es mrt"),
    ("gl_FragColor=vec4(FC.xy/r,0,1);", "geekest"),
    ("o=vec4(hsv(t,1.,1.),1);", "geekest 300es"),
    ("void main(){o=vec4(snoise2D(FC.xy),0,0,1);}", "geekest 300es"),
])
def test_twigl_mode_is_sniffed_when_none_is_stored(code, spec):
    assert sniff_mode(code).spec() == spec


def test_ternary_fix_parenthesises_assignments_and_keeps_lines():
    code = "// a ? b = 1 : c\nx > 0. ? v += 1. : v -= 1.;\ny = c ? a : b ? d : e = 1.;\nz = p == q ? 1. : 2.;"
    fixed = parenthesize_ternary_assignments(code)
    assert fixed.splitlines() == ["// a ? b = 1 : c", "x > 0. ? (v += 1.) : (v -= 1.);",
                                  "y = c ? a : (b ? d : (e = 1.));", "z = p == q ? 1. : 2.;"]


def _pixel(gl_context, source: ProgramSource, frame: FrameSpec) -> tuple[int, ...]:
    program = compile_program(gl_context, source)
    try:
        return tuple(int(v) for v in program.render(frame, 64, 64)[10, 10])
    finally:
        program.release()


def test_twigl_uniform_names_per_mode(gl_context):
    frame = FrameSpec(time=3.25, mouse=(32.0, 16.0, 0.0, 0.0), frame=8)
    classic = ("precision highp float;uniform vec2 resolution;uniform vec2 mouse;uniform float time;"
               "uniform float frame;void main(){gl_FragColor=vec4(resolution.y/256.,mouse.x,frame/16.+time*0.,1);}")
    geek = ("precision highp float;uniform vec2 r;uniform float t;uniform float f;"
            "void main(){gl_FragColor=vec4(r.x/256.,f/16.,t/4.,1);}")
    geekest = "o=vec4(m.y*2.,f/16.,t/4.,1);"
    assert _pixel(gl_context, ProgramSource("twigl", classic, mode="classic"), frame) == (64, 128, 128)
    assert _pixel(gl_context, ProgramSource("twigl", geek, mode="geek"), frame) == (64, 128, 207)
    assert _pixel(gl_context, ProgramSource("twigl", geekest, mode="geekest 300es"), frame) == (128, 128, 207)


def test_twigl_error_line_is_the_users_line_in_a_body_only_program(gl_context):
    with pytest.raises(ProgramError) as caught:
        compile_program(gl_context, ProgramSource("twigl", "vec2 p=FC.xy/r;\ngl_FragColor=vec4(p,missing,1);",
                                                  mode="geekest"))
    assert caught.value.verdict == Verdict.COMPILE_ERROR and caught.value.line == 2


def test_ternary_fix_draws_what_the_unfixed_program_draws(gl_context):
    code = "vec2 p=FC.xy/r;float v=0.;for(int i=0;i<3;i++){p.x>p.y ? v+=.3 : v-=.1;p*=1.5;}o=vec4(v,p*.1,1);"
    frame = FrameSpec(time=1.0)
    assert (_pixel(gl_context, ProgramSource("twigl", code, mode="geekest 300es ternary-fix"), frame)
            == _pixel(gl_context, ProgramSource("twigl", code, mode="geekest 300es"), frame))


def test_geekest_noise_helpers_span_their_range(gl_context):
    code = ("vec2 q=FC.xy*.08;gl_FragColor=vec4(snoise2D(q),snoise3D(vec3(q,t)),snoise4D(vec4(q,t,1.)),1)*.5+.5;")
    program = compile_program(gl_context, ProgramSource("twigl", code, mode="geekest"))
    try:
        pixels = program.render(FrameSpec(time=0.7), 64, 64).reshape(-1, 3).astype(int)
    finally:
        program.release()
    for channel in range(3):
        values = pixels[:, channel]
        assert values.min() < 70 and values.max() > 185, channel  # noise reaches well into both halves
        assert ((values == 0) | (values == 255)).mean() < 0.01, channel  # and stays within -1..1


@pytest.mark.parametrize(("dialect", "code", "reads"), [
    ("glslsandbox", "uniform sampler2D backbuffer;", True),
    ("glslsandbox", "uniform lowp sampler2D tex, backbuffer ;", True),
    ("glslsandbox", "// uniform sampler2D backbuffer;\n/* uniform sampler2D backbuffer; */", False),
    ("glslsandbox", "uniform sampler2D backbuffer2;", False),
    ("bookofshaders", "uniform sampler2D backbuffer;", False),
])
def test_only_a_sandbox_program_declaring_backbuffer_is_a_feedback_simulation(dialect, code, reads):
    source = ProgramSource(dialect, code + "\nvoid main() { gl_FragColor = vec4(1.0); }\n")
    assert source.reads_backbuffer is reads and source.multipass is reads
