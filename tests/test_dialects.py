"""Dialect wrappers: what reaches the driver, and that its messages point at the user's own lines."""

from __future__ import annotations

import pytest

from renderer.dialects import clean_user_code, locate, sanitize, wrap
from renderer.jobs import ProgramSource, Verdict
from renderer.program import ProgramError, compile_program


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
