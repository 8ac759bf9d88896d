"""The GLSL of an atlas draw: a program's usual wrapped fragment shader, rewritten so that each tile of the
render target draws its own frame.

The wrapper's output (renderer/dialects.py, unchanged) is rewritten as text:
- the host uniforms that change from frame to frame (iTime, iMouse, time, mouse, ...) stop being uniforms
  and become globals of the same name and type, read from a per-tile array (TILE_SLOTS vec4s a tile, in a
  std140 uniform block where the GLSL version has them, else a plain uniform array). User code cannot
  write to a uniform, so a program that compiles as usual reads these globals exactly as it read them;
- `gl_FragCoord` becomes `hv_fragCoord`, the same coordinate made tile-local, so both `fragCoord` and
  code that reads gl_FragCoord itself see the pixel of a single draw;
- the tile is `floor(gl_FragCoord.xy / stride)`; the stride is even, so no 2x2 derivative quad spans two tiles.

Desktop GLSL takes non-constant global initialisers, run in declaration order before main: the globals
are set that way, before any global of the user's own that reads them. GLSL ES forbids them, but then no
user global initialiser can read a uniform either, so the user's `main` is renamed and a new `main` sets
the globals first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from renderer import twigl
from renderer.dialects import WEBGL1_GLSL_VERSION as WEBGL1_VERSION
from renderer.dialects import WRAPPER_LINE_BASE, WRAPPER_SOURCE, WrappedProgram, is_es, wrap
from renderer.errors import RenderError
from renderer.glsl_text import blank_comments, without_comments
from renderer.jobs import ProgramSource

TILE_SLOTS = 3  # vec4s of per-tile data: (time, frame, iDate.w, -), the mouse in pixels, the mouse in 0..1
BLOCK_NAME = "hv_Tiles"
ARRAY_NAME = "hv_tile"
GRID_NAME = "hv_tileGrid"  # (stride x, stride y, columns)
_USER_MAIN = "hv_userMain"
_FRAG_COORD = re.compile(r"\bgl_FragCoord\b")
_MAIN = re.compile(r"\bmain\b")
_DECLARATION = re.compile(r"\buniform\s+(?P<precision>(?:(?:lowp|mediump|highp)\s+)?)(?P<type>\w+)\s+(?P<names>[^;{}]*);")
# What dialects._preamble writes first: directives and precisions, which must stay before any declaration.
_PREAMBLE = re.compile(r"(?:[ \t]*(?:#[ \t]*(?:version|extension)\b|#define (?:lowp|mediump) highp\b|precision\s)[^\n]*\n)*")
_SURFACE_POSITION = re.compile(r"\bsurfacePosition\b")

SLOT_TIME = f"{ARRAY_NAME}[hv_tileBase]"
SLOT_MOUSE = f"{ARRAY_NAME}[hv_tileBase + 1]"
SLOT_MOUSE_UNIT = f"{ARRAY_NAME}[hv_tileBase + 2]"


class AtlasError(RenderError):
    """A program or an atlas that cannot be drawn in one atlas draw; the message says why (draw its frames
    one by one instead)."""


@dataclass(frozen=True)
class TileValue:
    """A host uniform that differs from frame to frame: its GLSL type and its value in the tile's slots."""

    glsl_type: str
    expression: str


# What renderer/program.py sets for every dialect; twigl adds its own names (see per_tile_values).
_HOST_VALUES: dict[str, TileValue] = {
    "iTime": TileValue("float", f"{SLOT_TIME}.x"),
    "iFrame": TileValue("int", f"int({SLOT_TIME}.y)"),
    "iDate": TileValue("vec4", f"vec4(2024.0, 0.0, 1.0, {SLOT_TIME}.z)"),
    "iMouse": TileValue("vec4", SLOT_MOUSE),
    "iChannelTime[4]": TileValue("float", f"float[4]({SLOT_TIME}.x, {SLOT_TIME}.x, {SLOT_TIME}.x, {SLOT_TIME}.x)"),
    "time": TileValue("float", f"{SLOT_TIME}.x"),
    "mouse": TileValue("vec2", f"{SLOT_MOUSE_UNIT}.xy"),
    "u_time": TileValue("float", f"{SLOT_TIME}.x"),
    "u_mouse": TileValue("vec2", f"{SLOT_MOUSE}.xy"),
}


@dataclass(frozen=True)
class AtlasShader:
    wrapped: WrappedProgram
    tiles: int  # how many tiles the per-tile array holds
    uniform_block: bool  # the per-tile array is a std140 uniform block (else a plain uniform array)
    per_tile: tuple[str, ...]  # the host uniform names turned into globals (none of them may stay a uniform)


def per_tile_values(source: ProgramSource) -> dict[str, TileValue]:
    """Declarator (`iTime`, `iChannelTime[4]`) -> value, for every host uniform this dialect sets per frame."""
    values = dict(_HOST_VALUES)
    if source.dialect == "twigl":
        compact = twigl.resolve_mode(source.mode, source.image).compact
        names = ("m", "t", "f") if compact else ("mouse", "time", "frame")
        values.update(zip(names, (TileValue("vec2", f"{SLOT_MOUSE_UNIT}.xy"), TileValue("float", f"{SLOT_TIME}.x"),
                                  TileValue("float", f"{SLOT_TIME}.y"))))
    return values


def uniform_names(values: dict[str, TileValue]) -> tuple[str, ...]:
    return tuple(sorted({declarator.split("[")[0] for declarator in values}))


def refuse(source: ProgramSource) -> None:
    """What an atlas cannot draw as a single draw would."""
    if source.multipass:
        raise AtlasError("a multi-pass program (Buffer A-D or backbuffer) is a simulation, not one frame per tile")
    if source.dialect != "shadertoy" and _SURFACE_POSITION.search(without_comments(source.image)):
        # The varying is interpolated across the whole atlas: per tile it is only close, not equal.
        raise AtlasError("reads surfacePosition, which an atlas cannot interpolate as a single draw does")


def _supports_uniform_blocks(version: str) -> bool:
    match = re.match(r"\s*(\d+)", version)
    number = int(match.group(1)) if match else 0
    return number >= 300 if is_es(version) else number >= 140


def _header(tiles: int, uniform_block: bool, initialisers: bool, version: str) -> str:
    slots = tiles * TILE_SLOTS
    storage = (f"layout(std140) uniform {BLOCK_NAME} {{ vec4 {ARRAY_NAME}[{slots}]; }};" if uniform_block
               else f"uniform vec4 {ARRAY_NAME}[{slots}];")
    lines = [storage, f"uniform vec3 {GRID_NAME};"]
    for kind, name, value in _tile_setters(tiles):
        declaration = f"{kind} {name} = {value};" if initialisers else f"{kind} {name};"
        if name == "hv_fragCoord" and version.strip() == WEBGL1_VERSION:
            # GLSL ES 1.00 declares gl_FragCoord mediump, and Mesa computes what it touches at 16 bits;
            # the preamble's `#define mediump highp` would make the stand-in highp, and its pixels differ.
            declaration = f"#undef mediump\nmediump {declaration}\n#define mediump highp"
        lines.append(declaration)
    return "\n".join(lines) + "\n"


def _tile_setters(tiles: int) -> list[tuple[str, str, str]]:
    """(type, name, value) of the globals that find the tile, in the order they must be set."""
    last = float(tiles - 1)
    index = f"min(hv_tileCell.y * {GRID_NAME}.z + hv_tileCell.x, {last!r})"
    return [
        ("vec2", "hv_tileCell", f"floor(gl_FragCoord.xy / {GRID_NAME}.xy)"),
        ("int", "hv_tileBase", f"int({index}) * {TILE_SLOTS}"),
        ("vec4", "hv_fragCoord", f"vec4(gl_FragCoord.xy - hv_tileCell * {GRID_NAME}.xy, gl_FragCoord.zw)"),
    ]


def _rewrite_declaration(match: re.Match[str], values: dict[str, TileValue], initialisers: bool,
                         assignments: list[str]) -> str:
    """A uniform declaration without its per-frame names, which become globals on the same line."""
    glsl_type = match.group("type")
    kept, made_global = [], []
    for declarator in match.group("names").split(","):
        key = re.sub(r"\s+", "", declarator)
        value = values.get(key)
        if value is None or value.glsl_type != glsl_type:
            kept.append(declarator.strip())
            continue
        if initialisers:
            made_global.append(f"{glsl_type} {key} = {value.expression};")
        elif "[" in key:
            raise AtlasError(f"declares {key} in GLSL ES, where an array global cannot be set from the tile")
        else:
            made_global.append(f"{glsl_type} {key};")
            assignments.append(f"    {key} = {value.expression};")
    if not made_global:
        return match.group(0)
    uniform = f"uniform {match.group('precision')}{glsl_type} {', '.join(kept)};" if kept else ""
    return " ".join(part for part in (uniform, *made_global) if part)


def _rewrite_declarations(code: str, values: dict[str, TileValue], initialisers: bool, assignments: list[str]) -> str:
    """Every uniform declaration outside comments, rewritten (a commented-out one stays as it is)."""
    blanked = blank_comments(code)
    pieces, previous = [], 0
    for match in _DECLARATION.finditer(blanked):
        pieces += [code[previous:match.start()], _rewrite_declaration(match, values, initialisers, assignments)]
        previous = match.end()
    return "".join(pieces) + code[previous:]


def atlas_shader(source: ProgramSource, tiles: int) -> AtlasShader:
    """The wrapped program of `source`, rewritten to draw `tiles` frames side by side in one draw."""
    refuse(source)
    wrapped = wrap(source)
    initialisers = not is_es(wrapped.version)
    uniform_block = _supports_uniform_blocks(wrapped.version)
    start = _PREAMBLE.match(wrapped.fragment).end()
    preamble, body = wrapped.fragment[:start], wrapped.fragment[start:]
    values = per_tile_values(source)
    assignments: list[str] = []
    body = _rewrite_declarations(body, values, initialisers, assignments)
    body = _FRAG_COORD.sub("hv_fragCoord", body)
    if not initialisers:
        body = _MAIN.sub(_USER_MAIN, body) + _es_main(tiles, assignments)
    fragment = preamble + _header(tiles, uniform_block, initialisers, wrapped.version) + body
    rewritten = WrappedProgram(version=wrapped.version, vertex=wrapped.vertex, fragment=fragment)
    return AtlasShader(rewritten, tiles, uniform_block, uniform_names(values))


def _es_main(tiles: int, assignments: list[str]) -> str:
    """A main that finds the tile and sets the per-frame globals, then runs the user's renamed main."""
    setters = [f"    {name} = {value};" for _, name, value in _tile_setters(tiles)]
    # A user macro may share a global's name (`#define time time * 30.0`): it must not rewrite our setter.
    undefine = [f"#undef {line.split('=')[0].strip()}" for line in assignments]
    lines = [f"#line {WRAPPER_LINE_BASE + 1} {WRAPPER_SOURCE}", *undefine, "void main() {", *setters, *assignments,
             f"    {_USER_MAIN}();", "}"]
    return "\n" + "\n".join(lines) + "\n"
