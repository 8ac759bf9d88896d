"""Dialect wrappers: the user's code framed by the declarations its host website provides.

Every wrapper puts `#line 1 0` right before the user's (image) code, so the compiler's `0:LINE`
is the user's own line. Mesa prints source-string 0 whatever `#line` says, so the other parts are
told apart by line number instead: the Shadertoy Common pass starts at COMMON_LINE_BASE + 1 and
our own wrapper code at WRAPPER_LINE_BASE + 1 (see `locate`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from renderer import twigl
from renderer.jobs import ProgramSource

IMAGE_SOURCE = 0
COMMON_SOURCE = 1
WRAPPER_SOURCE = 2
COMMON_LINE_BASE = 10_000_000
WRAPPER_LINE_BASE = 20_000_000

# Chosen by measurement on the shared Shadertoy samples (see README-render.md): Mesa's GLSL ES 3.00
# front end rejects things WebGL2 lets through (non-constant global initialisers, redefined
# built-ins), while desktop 3.30 core accepts the same programs.
SHADERTOY_GLSL_VERSION = "330 core"
# GLSL Sandbox and The Book of Shaders run on WebGL1, i.e. GLSL ES 1.00.
WEBGL1_GLSL_VERSION = "100"
RAW_DEFAULT_VERSION = "330 core"

_VERSION_LINE = re.compile(r"^[ \t]*#[ \t]*version\b[ \t]*([^\n]*)$", re.MULTILINE)
_EXTENSION_LINE = re.compile(r"^[ \t]*#[ \t]*extension[ \t]+(\w+)[ \t]*:[ \t]*(\w+)[^\n]*$", re.MULTILINE)
_OUT_VEC4 = re.compile(r"\bout\s+(?:(?:lowp|mediump|highp)\s+)?vec4\b")

# Channel kinds and the sampler type their iChannel uniform is declared with.
SAMPLER_TYPES: dict[str, str] = {"cubemap": "samplerCube", "volume": "sampler3D"}


@dataclass(frozen=True)
class CleanCode:
    """User code with the directives that must not stay in place taken out (line count kept)."""

    code: str
    version: str | None  # the text after the user's own `#version`, if any
    extensions: tuple[str, ...]  # names of the extensions the user enabled


@dataclass(frozen=True)
class WrappedProgram:
    version: str
    vertex: str
    fragment: str


_NON_ASCII = re.compile(r"[^\x01-\x7f]")
_INCLUDE = re.compile(r"#include\b")


def sanitize(code: str) -> str:
    """Make arbitrary text safe to hand to the driver: one newline convention, ASCII only, no NULs.

    GLSL source is ASCII. Mesa's lexer silently stops at the first other character (losing the
    rest of the program), so each one becomes `$`: harmless in a comment, and (as on WebGL) a
    syntax error on the right line anywhere else.
    """
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    code = _NON_ASCII.sub("$", code)
    # moderngl expands `#include "name"` itself (and fails on unknown names); WebGL has no
    # #include, so it becomes a compile error on its own line.
    return _INCLUDE.sub("#error include", code)


_OUT_PARAMETER = re.compile(r"([(,]\s*)out(\s)")


def clean_user_code(code: str) -> CleanCode:
    """Blank out `#version` and `#extension` lines (the wrapper re-emits them) and make `out` parameters `inout`.

    Both directives are only legal before any code, and the wrapper's own declarations come
    first, so they cannot stay where the user wrote them. Blanking (not deleting) keeps line
    numbers identical.
    """
    code = sanitize(code)
    version_match = _VERSION_LINE.search(code)
    version = version_match.group(1).strip() if version_match else None
    extensions: list[str] = []
    for match in _EXTENSION_LINE.finditer(code):
        name, behaviour = match.group(1), match.group(2)
        if behaviour != "disable" and name != "all" and name not in extensions:
            extensions.append(name)
    code = _VERSION_LINE.sub("", code)
    code = _EXTENSION_LINE.sub("", code)
    # Mesa's zero-init does not reach `out` parameters, which GLSL leaves undefined; as `inout` they
    # start from the caller's (zeroed) value, as in WebGL. A program that reads `fragColor` before
    # writing it (`f += ...` in golfed code) then starts from the wrapper's opaque black.
    code = _OUT_PARAMETER.sub(r"\1inout\2", code)
    return CleanCode(code=code, version=version, extensions=tuple(extensions))


def is_es(version: str) -> bool:
    return version.strip() == "100" or version.strip().endswith(" es")


def _uses_in_out(version: str) -> bool:
    """Whether this GLSL version declares stage interfaces with in/out (else attribute/varying)."""
    number = int(re.match(r"\d+", version.strip()).group(0)) if re.match(r"\d+", version.strip()) else 0
    return number >= 130 and version.strip() != "100"


def _preamble(version: str, extensions: tuple[str, ...]) -> str:
    lines = [f"#version {version}"]
    # `enable` rather than the user's `require`: an extension the driver lacks is a warning, and
    # most such programs never needed it on desktop GL.
    lines += [f"#extension {name} : enable" for name in extensions]
    if is_es(version):
        # Mesa runs `mediump` at 16 bits, which turns the ubiquitous fract(sin(x) * 43758.5)
        # hash into zeros; WebGL on desktop GPUs runs every precision at 32 bits.
        lines += ["#define lowp highp", "#define mediump highp", "precision highp float;", "precision highp int;"]
    return "\n".join(lines) + "\n"


def vertex_shader(version: str) -> str:
    """One full-screen triangle; also feeds GLSL Sandbox's `surfacePosition` varying."""
    if _uses_in_out(version):
        attribute, varying = "in", "out"
    else:
        attribute, varying = "attribute", "varying"
    return (
        f"#version {version}\n"
        f"{attribute} vec2 hv_position;\n"
        f"{varying} vec2 surfacePosition;\n"
        "uniform vec2 hv_surfaceHalf;\n"
        "void main() {\n"
        "    surfacePosition = hv_position * hv_surfaceHalf;\n"
        "    gl_Position = vec4(hv_position, 0.0, 1.0);\n"
        "}\n"
    )


def _shadertoy_uniforms(channels: tuple[str | None, ...]) -> str:
    lines = [
        "#define HW_PERFORMANCE 1",
        "uniform vec3 iResolution;",
        "uniform float iTime;",
        "uniform float iTimeDelta;",
        "uniform float iFrameRate;",
        "uniform int iFrame;",
        "uniform vec4 iMouse;",
        "uniform vec4 iDate;",
        "uniform float iSampleRate;",
        "uniform float iChannelTime[4];",
        "uniform vec3 iChannelResolution[4];",
    ]
    for index, kind in enumerate(channels):
        lines.append(f"uniform {SAMPLER_TYPES.get(kind or '', 'sampler2D')} iChannel{index};")
    return "\n".join(lines) + "\n"


def wrap_shadertoy(source: ProgramSource, version: str = SHADERTOY_GLSL_VERSION, keep_alpha: bool = False) -> WrappedProgram:
    """`source.image` framed as a Shadertoy pass; `keep_alpha` for Buffer A-D, whose alpha other passes read."""
    image = clean_user_code(source.image)
    common = clean_user_code(source.common)
    extensions = tuple(dict.fromkeys(common.extensions + image.extensions))
    output = "out vec4 hv_fragColor;\n" if _uses_in_out(version) else ""
    target = "hv_fragColor" if output else "gl_FragColor"
    fragment = (
        _preamble(version, extensions)
        + _shadertoy_uniforms(source.channels)
        + f"#line {COMMON_LINE_BASE + 1} {COMMON_SOURCE}\n"
        + common.code
        + f"\n#line 1 {IMAGE_SOURCE}\n"
        + image.code
        + f"\n#line {WRAPPER_LINE_BASE + 1} {WRAPPER_SOURCE}\n"
        + output
        + "void main() {\n"
        "    vec4 color = vec4(0.0, 0.0, 0.0, 1.0);\n"
        "    mainImage(color, gl_FragCoord.xy);\n"
        # The website composites an opaque canvas: alpha never shows (but a buffer keeps it).
        f"    {target} = {'color' if keep_alpha else 'vec4(color.rgb, 1.0)'};\n"
        "}\n"
    )
    return WrappedProgram(version=version, vertex=vertex_shader(version), fragment=fragment)


def wrap_webgl1(source: ProgramSource) -> WrappedProgram:
    """GLSL Sandbox and Book of Shaders programs declare their own uniforms and write gl_FragColor."""
    image = clean_user_code(source.image)
    version = WEBGL1_GLSL_VERSION
    fragment = _preamble(version, image.extensions) + f"#line 1 {IMAGE_SOURCE}\n" + image.code + "\n"
    return WrappedProgram(version=version, vertex=vertex_shader(version), fragment=fragment)


def wrap_raw(source: ProgramSource) -> WrappedProgram:
    """A plain `void main()`: the user's own #version if given, else a guess from how it writes colour."""
    image = clean_user_code(source.image)
    if image.version:
        version = image.version
    elif "gl_FragColor" in image.code and not _OUT_VEC4.search(image.code):
        version = WEBGL1_GLSL_VERSION
    else:
        version = RAW_DEFAULT_VERSION
    fragment = _preamble(version, image.extensions) + f"#line 1 {IMAGE_SOURCE}\n" + image.code + "\n"
    return WrappedProgram(version=version, vertex=vertex_shader(version), fragment=fragment)


def wrap_twigl(source: ProgramSource) -> WrappedProgram:
    """A twigl.app program in its mode: WebGL1 modes as GLSL ES 1.00 (like GLSL Sandbox), the ES 3.00 and MRT
    modes as desktop 3.30 (like Shadertoy, for the same reason), with what geeker and geekest supply."""
    mode = twigl.resolve_mode(source.mode, source.image)
    code = twigl.parenthesize_ternary_assignments(source.image) if mode.ternary_fix else source.image
    image = clean_user_code(code)
    version = SHADERTOY_GLSL_VERSION if mode.es300 else WEBGL1_GLSL_VERSION
    # geekest lets the code be main's body alone; the site then adds main around it.
    body_only = mode.name == "geekest" and not twigl.defines_main(image.code)
    fragment = (
        _preamble(version, image.extensions)
        + f"#line {WRAPPER_LINE_BASE + 1} {WRAPPER_SOURCE}\n"
        + twigl.declarations(mode)
        + ("void main() {\n" if body_only else "")
        + f"#line 1 {IMAGE_SOURCE}\n"
        + image.code
        + (f"\n#line {WRAPPER_LINE_BASE + 1} {WRAPPER_SOURCE}\n}}" if body_only else "")
        + "\n"
    )
    return WrappedProgram(version=version, vertex=vertex_shader(version), fragment=fragment)


def locate(line: int) -> tuple[int, int]:
    """(source part, line within that part) for a line number the compiler reported."""
    if line > WRAPPER_LINE_BASE:
        return WRAPPER_SOURCE, line - WRAPPER_LINE_BASE
    if line > COMMON_LINE_BASE:
        return COMMON_SOURCE, line - COMMON_LINE_BASE
    return IMAGE_SOURCE, line


def wrap(source: ProgramSource) -> WrappedProgram:
    if source.dialect == "shadertoy":
        return wrap_shadertoy(source)
    if source.dialect in ("glslsandbox", "bookofshaders"):
        return wrap_webgl1(source)
    if source.dialect == "twigl":
        return wrap_twigl(source)
    return wrap_raw(source)
