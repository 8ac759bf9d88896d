"""TwiGL (twigl.app): its modes, what each mode declares around the user's code, and the uniforms it feeds.

twigl.app has four modes, each also as a GLSL ES 3.00 variant and an ES 3.00 + two-target MRT variant:

- classic: a complete GLSL Sandbox-style program; uniforms `resolution`, `mouse`, `time`, `frame`, `backbuffer`.
- geek: a complete program, but the uniforms are `r`, `m`, `t`, `f`, `b` (and `s`, the sound level).
- geeker: as geek, with the precision and uniform declarations (and, in ES 3.00, `out vec4 o`) supplied.
- geekest: as geeker, plus `FC` for gl_FragCoord, helper functions (simplex noise, hsv, rotations, PI), and
  the code may be just the body of main().

A mode is written as a spec string, e.g. `geekest`, `geek 300es`, `geeker 300es mrt ternary-fix`, and stored
as the name of the program's image pass. The helper functions here are our own implementations of the
names twigl documents; noise values differ slightly from the site's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from renderer.glsl_text import blank_comments, without_comments

MODE_NAMES: tuple[str, ...] = ("classic", "geek", "geeker", "geekest")
MRT_TARGETS = 2
_FLAG_300 = "300es"
_FLAG_MRT = "mrt"
_FLAG_TERNARY = "ternary-fix"


class TwiglModeError(ValueError):
    """A mode spec or mode file that names no TwiGL mode; the message says which."""


@dataclass(frozen=True)
class TwiglMode:
    name: str = "classic"  # one of MODE_NAMES
    es300: bool = False  # GLSL ES 3.00 (`out` variables instead of gl_FragColor)
    mrt: bool = False  # two colour targets (o0, o1 / outColor0, outColor1); implies es300
    ternary_fix: bool = False  # Shaders21k parenthesised assignments inside ?: before rendering

    @property
    def compact(self) -> bool:
        """Whether the uniforms have twigl's one-letter names."""
        return self.name != "classic"

    def spec(self) -> str:
        flags = [_FLAG_300] if self.es300 or self.mrt else []
        flags += [_FLAG_MRT] if self.mrt else []
        flags += [_FLAG_TERNARY] if self.ternary_fix else []
        return " ".join([self.name, *flags])


def parse_mode(spec: str) -> TwiglMode:
    """`geekest 300es mrt` -> TwiglMode; TwiglModeError for anything else."""
    words = spec.strip().lower().split()
    if not words or words[0] not in MODE_NAMES:
        raise TwiglModeError(f"unknown TwiGL mode {spec.strip()[:40]!r} (expected {', '.join(MODE_NAMES)})")
    flags = set(words[1:])
    unknown = flags - {_FLAG_300, _FLAG_MRT, _FLAG_TERNARY}
    if unknown:
        raise TwiglModeError(f"unknown TwiGL mode flag {min(unknown)[:40]!r}")
    mrt = _FLAG_MRT in flags
    return TwiglMode(words[0], es300=mrt or _FLAG_300 in flags, mrt=mrt, ternary_fix=_FLAG_TERNARY in flags)


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


def _flag(lines: list[str], index: int) -> bool:
    value = lines[index].strip().lower() if index < len(lines) else ""
    if value not in _TRUE | _FALSE:
        raise TwiglModeError(f"mode file line {index + 1} is {value[:20]!r}, not True or False")
    return value in _TRUE


def mode_from_lines(text: str) -> TwiglMode:
    """A Shaders21k mode file: the mode name, then the 300-es, MRT and ternary-fix flags (True/False), one a line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise TwiglModeError("empty mode file")
    name = lines[0].strip().lower()
    if name not in MODE_NAMES:
        raise TwiglModeError(f"unknown TwiGL mode {lines[0].strip()[:40]!r} (expected {', '.join(MODE_NAMES)})")
    mrt = _flag(lines, 2)
    return TwiglMode(name, es300=mrt or _flag(lines, 1), mrt=mrt, ternary_fix=_flag(lines, 3))


# --- sniffing a mode from code alone (exports and `harvest render --dialect twigl` carry no mode) ---------

_MAIN = re.compile(r"\bvoid\s+main\s*\(")
_UNIFORM_NAMES = re.compile(r"\buniform\s+\w+\s+(?:\w+\s+)?([\w\s,\[\]]+);")
_DECLARED_OUT = re.compile(r"\bout\s+(?:(?:lowp|mediump|highp)\s+)?vec4\b")
_SECOND_TARGET = re.compile(r"\blocation\s*=\s*1\b|\b(?:o1|outColor1)\b")
_COMPACT_OUT = re.compile(r"\bo0?\s*(?:[-+*/]?=|\.\w|\[)")
_GEEKEST_NAMES = re.compile(r"\b(?:FC|snoise[234]D|fsnoise(?:Digits)?|hsv|rotate[23]D|PI2?)\b")


def sniff_mode(code: str) -> TwiglMode:
    """The mode a TwiGL program was most likely written in, from the names it declares and uses."""
    text = without_comments(code)
    declared = {name.strip() for match in _UNIFORM_NAMES.finditer(text) for name in match.group(1).split(",")}
    if not _MAIN.search(text) or (_GEEKEST_NAMES.search(text) and not declared):
        name = "geekest"
    elif declared & {"resolution", "time", "mouse", "backbuffer", "frame"}:
        name = "classic"
    elif declared & {"r", "t", "m", "b", "f"}:
        name = "geek"
    else:
        name = "geeker"
    mrt = bool(_SECOND_TARGET.search(text))
    if name in ("classic", "geek"):
        es300 = bool(_DECLARED_OUT.search(text))
    else:
        es300 = "gl_FragColor" not in text and bool(_COMPACT_OUT.search(text))
    return TwiglMode(name, es300=es300 or mrt, mrt=mrt)


@lru_cache(maxsize=512)
def resolve_mode(spec: str, code: str) -> TwiglMode:
    """The stored mode when there is one, else the sniffed one (a bad stored spec also falls back)."""
    if spec.strip():
        try:
            return parse_mode(spec)
        except TwiglModeError:
            pass
    return sniff_mode(code)


def defines_main(code: str) -> bool:
    return _MAIN.search(without_comments(code)) is not None


# --- what the site declares around the user's code ---------------------------------------------------------


def declarations(mode: TwiglMode) -> str:
    """The lines twigl.app puts before the user's code (after `#version`), for geeker and geekest."""
    if mode.name not in ("geeker", "geekest"):
        return ""  # classic and geek programs declare everything themselves
    samplers = [f"b{i}" for i in range(MRT_TARGETS)] if mode.mrt else ["b"]
    lines = ["#define FC gl_FragCoord"] if mode.name == "geekest" else []
    lines += ["precision highp float;", "uniform vec2 r;", "uniform vec2 m;", "uniform float t;",
              "uniform float f;", "uniform float s;"]
    lines += [f"uniform sampler2D {name};" for name in samplers]
    if mode.mrt:
        lines += [f"layout(location = {i}) out vec4 o{i};" for i in range(MRT_TARGETS)]
    elif mode.es300:
        lines.append("out vec4 o;")
    if mode.name == "geekest":
        lines.append(GEEKEST_HELPERS)
    return "\n".join(lines) + "\n"


def uniform_values(mode: TwiglMode, width: int, height: int, time: float, frame: int,
                   mouse: tuple[float, float], backbuffer_unit: int) -> dict[str, object]:
    """Uniform name -> value as twigl.app sets them (frame is a float there; mouse is 0..1, origin bottom left)."""
    names = ("r", "m", "t", "f", "s") if mode.compact else ("resolution", "mouse", "time", "frame", "sound")
    values: dict[str, object] = dict(zip(names, ((float(width), float(height)), mouse, float(time), float(frame), 0.0)))
    prefix = "b" if mode.compact else "backbuffer"
    for sampler in [prefix] + [f"{prefix}{i}" for i in range(MRT_TARGETS)]:
        values[sampler] = backbuffer_unit
    return values


# Our own code for the helpers geekest documents (snoise2D/3D/4D, fsnoise, fsnoiseDigits, hsv, rotate2D,
# rotate3D, PI, PI2, and the mod289/permute hash they are built on). Simplex noise: skew to the simplex
# grid, find the corners, hash each with the permutation polynomial (34x^2 + x) mod 289, sum the corners'
# gradient ramps. 2D normalises its gradients to first order, as the usual scale of 130 assumes (an exact
# normalisation overshoots -1..1).
GEEKEST_HELPERS = """\
float mod289(float x) { return x - floor(x / 289.0) * 289.0; }
vec2 mod289(vec2 x) { return x - floor(x / 289.0) * 289.0; }
vec3 mod289(vec3 x) { return x - floor(x / 289.0) * 289.0; }
vec4 mod289(vec4 x) { return x - floor(x / 289.0) * 289.0; }
float permute(float x) { return mod289((x * 34.0 + 1.0) * x); }
vec3 permute(vec3 x) { return mod289((x * 34.0 + 1.0) * x); }
vec4 permute(vec4 x) { return mod289((x * 34.0 + 1.0) * x); }
vec3 hv_direction3(float h) {
    float z = fract(h * 0.0243902439) * 2.0 - 1.0;
    float a = h * 2.3999632;
    return vec3(sqrt(max(1.0 - z * z, 0.0)) * vec2(cos(a), sin(a)), z);
}
vec4 hv_direction4(float h) {
    return normalize(fract(h * vec4(0.0243902439, 0.1428571429, 0.0204081633, 0.0769230769)) * 2.0 - 0.999);
}
float snoise2D(vec2 v) {
    const float SKEW = 0.3660254038;
    const float UNSKEW = 0.2113248654;
    vec2 cell = floor(v + (v.x + v.y) * SKEW);
    vec2 d0 = v - cell + (cell.x + cell.y) * UNSKEW;
    vec2 step1 = d0.x > d0.y ? vec2(1.0, 0.0) : vec2(0.0, 1.0);
    vec2 d1 = d0 - step1 + UNSKEW;
    vec2 d2 = d0 - 1.0 + 2.0 * UNSKEW;
    cell = mod289(cell);
    vec3 h = permute(permute(cell.y + vec3(0.0, step1.y, 1.0)) + cell.x + vec3(0.0, step1.x, 1.0));
    vec3 gx = fract(h * 0.0243902439) * 2.0 - 1.0;
    vec3 gy = abs(gx) - 0.5;
    gx -= floor(gx + 0.5);
    vec3 w = max(0.5 - vec3(dot(d0, d0), dot(d1, d1), dot(d2, d2)), 0.0);
    w = w * w * w * w * (1.79284291400159 - 0.85373472095314 * (gx * gx + gy * gy));
    return 130.0 * dot(w, vec3(gx.x * d0.x + gy.x * d0.y, gx.y * d1.x + gy.y * d1.y, gx.z * d2.x + gy.z * d2.y));
}
float snoise3D(vec3 v) {
    vec3 cell = floor(v + dot(v, vec3(1.0 / 3.0)));
    vec3 d0 = v - cell + dot(cell, vec3(1.0 / 6.0));
    vec3 larger = step(d0.yzx, d0.xyz);
    vec3 o1 = min(larger, 1.0 - larger.zxy);
    vec3 o2 = max(larger, 1.0 - larger.zxy);
    vec3 d1 = d0 - o1 + 1.0 / 6.0;
    vec3 d2 = d0 - o2 + 1.0 / 3.0;
    vec3 d3 = d0 - 0.5;
    cell = mod289(cell);
    vec4 h = permute(permute(permute(cell.z + vec4(0.0, o1.z, o2.z, 1.0))
                             + cell.y + vec4(0.0, o1.y, o2.y, 1.0)) + cell.x + vec4(0.0, o1.x, o2.x, 1.0));
    vec4 w = max(0.6 - vec4(dot(d0, d0), dot(d1, d1), dot(d2, d2), dot(d3, d3)), 0.0);
    w = w * w * w * w;
    return 42.0 * dot(w, vec4(dot(hv_direction3(h.x), d0), dot(hv_direction3(h.y), d1),
                              dot(hv_direction3(h.z), d2), dot(hv_direction3(h.w), d3)));
}
float hv_hash4(vec4 c) { return permute(permute(permute(permute(c.w) + c.z) + c.y) + c.x); }
float hv_corner4(vec4 cell, vec4 offset, vec4 d) {
    float w = max(0.6 - dot(d, d), 0.0);
    return w * w * w * w * dot(hv_direction4(hv_hash4(cell + offset)), d);
}
float snoise4D(vec4 v) {
    const float G4 = 0.1381966011;
    vec4 cell = floor(v + dot(v, vec4(0.3090169944)));
    vec4 d0 = v - cell + dot(cell, vec4(G4));
    vec3 xWins = step(d0.yzw, d0.xxx);
    vec3 yzWins = step(d0.zww, d0.yyz);
    vec4 rank = vec4(xWins.x + xWins.y + xWins.z, 1.0 - xWins.x + yzWins.x + yzWins.y,
                     2.0 - xWins.y - yzWins.x + yzWins.z, 3.0 - xWins.z - yzWins.y - yzWins.z);
    vec4 o1 = clamp(rank - 2.0, 0.0, 1.0);
    vec4 o2 = clamp(rank - 1.0, 0.0, 1.0);
    vec4 o3 = clamp(rank, 0.0, 1.0);
    cell = mod289(cell);
    float n = hv_corner4(cell, vec4(0.0), d0) + hv_corner4(cell, o1, d0 - o1 + G4)
            + hv_corner4(cell, o2, d0 - o2 + 2.0 * G4) + hv_corner4(cell, o3, d0 - o3 + 3.0 * G4)
            + hv_corner4(cell, vec4(1.0), d0 - 1.0 + 4.0 * G4);
    return 49.0 * n;
}
float fsnoise(vec2 c) { return fract(sin(dot(c, vec2(12.9898, 78.233))) * 43758.5453); }
float fsnoiseDigits(vec2 c) { return fract(sin(dot(c, vec2(0.129898, 0.78233))) * 437.585453); }
vec3 hsv(float h, float s, float v) {
    vec3 ramp = clamp(abs(fract(h + vec3(0.0, 2.0, 1.0) / 3.0) * 6.0 - 3.0) - 1.0, 0.0, 1.0);
    return v * mix(vec3(1.0), ramp, s);
}
mat2 rotate2D(float r) { return mat2(cos(r), sin(r), -sin(r), cos(r)); }
mat3 rotate3D(float angle, vec3 axis) {
    vec3 a = normalize(axis);
    float c = cos(angle);
    vec3 s = a * sin(angle);
    mat3 outer = mat3(a * a.x, a * a.y, a * a.z) * (1.0 - c);
    return outer + mat3(c, s.z, -s.y, -s.z, c, s.x, s.y, -s.x, c);
}
const float PI = 3.141592653589793;
const float PI2 = PI * 2.0;"""


# --- the ternary fix ---------------------------------------------------------------------------------------

# `=` as an assignment: not part of ==, !=, <=, >= (but <<= and >>= are assignments).
_ASSIGNMENT = re.compile(r"(?<![=!<>])=(?!=)|(?:<<|>>)=")
_OPENERS, _CLOSERS = "([{", ")]}"


def _next_stop(text: str, start: int, end: int, stops: str) -> int:
    """The first of `stops` or a `:` outside brackets and nested ?:, or an unmatched closer, from `start`; else `end`."""
    depth = nested = 0
    for index in range(start, end):
        char = text[index]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            if depth == 0:
                return index
            depth -= 1
        elif depth == 0 and char == "?":
            nested += 1
        elif depth == 0 and char == ":":
            if nested == 0:
                return index
            nested -= 1
        elif depth == 0 and char in stops:
            return index
    return end


def _wrap_assignment(text: str, start: int, end: int, inserts: list[tuple[int, str]]) -> None:
    operand = text[start:end]
    if not _ASSIGNMENT.search(operand):
        return
    first = start + len(operand) - len(operand.lstrip())
    last = start + len(operand.rstrip())
    inserts += [(first, "("), (last, ")")]


def _fix_range(text: str, start: int, end: int, inserts: list[tuple[int, str]]) -> None:
    index = start
    while index < end:
        if text[index] != "?":
            index += 1
            continue
        colon = _next_stop(text, index + 1, end, ";")
        if colon == end or text[colon] != ":":
            index += 1
            continue
        # The third operand is an assignment expression: it ends at `;`, `,` or the closer around it.
        stop = _next_stop(text, colon + 1, end, ";,")
        for low, high in ((index + 1, colon), (colon + 1, stop)):
            _wrap_assignment(text, low, high, inserts)
            _fix_range(text, low, high, inserts)
        index = stop


def parenthesize_ternary_assignments(code: str) -> str:
    """`c ? a += 1. : b = 2.` -> `c ? (a += 1.) : (b = 2.)`, as Shaders21k did for drivers that parse ?: as C
    does. GLSL's grammar already reads it that way, so the meaning never changes; lines are kept."""
    if "?" not in code:
        return code
    inserts: list[tuple[int, str]] = []
    _fix_range(blank_comments(code), 0, len(code), inserts)
    pieces, previous = [], 0
    for position, char in sorted(inserts, key=lambda item: item[0]):
        pieces += [code[previous:position], char]
        previous = position
    return "".join(pieces) + code[previous:]
