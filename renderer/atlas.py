"""Many frames of one program in one draw: a tile atlas, converted to 8 bits on the GPU, read back once.

`AtlasProgram` compiles a single-pass program (renderer/atlas_source.py rewrites its shader) so that one
draw renders N frames (FrameSpecs) of W x H as the tiles of a float target. A second, tiny pass of our own
turns that target into RGBA8: RGB exactly as CompiledProgram.render_frame converts floats to bytes, and
alpha 255 where a channel was NaN or infinite, so a tile's nonfinite_fraction is a count on bytes. Tile k
equals `CompiledProgram.render_frame(frames[k], W, H)` bit for bit (tests/test_atlas.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import moderngl
import numpy as np

from renderer.atlas_source import ARRAY_NAME, BLOCK_NAME, GRID_NAME, TILE_SLOTS, AtlasError, AtlasShader, atlas_shader
from renderer.jobs import FrameSpec, ProgramSource
from renderer.textures import BACKBUFFER_UNIT
from renderer.program import CompiledProgram, ProgramError, RenderedFrame, link, preflight

DEFAULT_TILES = 64
_FRAME_LIMIT = 1 << 24  # iFrame travels as a float, exact up to here
_BLOCK_BINDING = 0
_CONVERT_UNIT = BACKBUFFER_UNIT + 1

# Our own conversion pass. `precise` keeps `* 255.0 + 0.5` two roundings, as numpy does it, rather than one
# fused multiply-add; the result is a whole number of 255ths, which any RGBA8 conversion stores exactly.
_CONVERT_VERTEX = """#version 400 core
void main() {
    gl_Position = vec4(gl_VertexID == 1 ? 3.0 : -1.0, gl_VertexID == 2 ? 3.0 : -1.0, 0.0, 1.0);
}
"""
_CONVERT_FRAGMENT = """#version 400 core
uniform sampler2D hv_source;
out vec4 hv_bytes;
void main() {
    vec3 raw = texelFetch(hv_source, ivec2(gl_FragCoord.xy), 0).rgb;
    uvec3 bits = floatBitsToUint(raw);
    bvec3 special = equal(bits & 0x7f800000u, uvec3(0x7f800000u));
    bvec3 nan = bvec3(uvec3(special) * uvec3(notEqual(bits & 0x007fffffu, uvec3(0u))));
    precise vec3 level = floor(clamp(mix(raw, vec3(0.0), nan), 0.0, 1.0) * 255.0 + 0.5);
    hv_bytes = vec4(level / 255.0, any(special) ? 1.0 : 0.0);
}
"""


@dataclass(frozen=True)
class AtlasLayout:
    """Where each tile lies: tile k at column k % columns, row k // columns, rows counted from the bottom
    (GL's first row); a tile's cell is its size rounded up to even numbers."""

    width: int
    height: int
    columns: int
    rows: int

    @property
    def stride(self) -> tuple[int, int]:
        return self.width + self.width % 2, self.height + self.height % 2

    @property
    def size(self) -> tuple[int, int]:
        stride_x, stride_y = self.stride
        return self.columns * stride_x, self.rows * stride_y


def plan_layout(tiles: int, width: int, height: int, max_size: int) -> AtlasLayout:
    """The squarest grid of `tiles` cells that fits in max_size x max_size; AtlasError when none does."""
    if tiles < 1 or width < 1 or height < 1:
        raise AtlasError(f"an atlas needs at least one tile of at least 1x1 (got {tiles} of {width}x{height})")
    stride_x, stride_y = width + width % 2, height + height % 2
    columns = min(int(np.ceil(np.sqrt(tiles))), max(1, max_size // stride_x))
    rows = -(-tiles // columns)
    layout = AtlasLayout(width, height, columns, rows)
    atlas_width, atlas_height = layout.size
    if atlas_width > max_size or atlas_height > max_size:
        raise AtlasError(f"{tiles} tiles of {width}x{height} need a {atlas_width}x{atlas_height} atlas, "
                         f"larger than this GL's maximum of {max_size}")
    return layout


def max_atlas_size(ctx: moderngl.Context) -> int:
    """The largest square target this context can draw into: its texture size and viewport limits."""
    viewport = ctx.info.get("GL_MAX_VIEWPORT_DIMS") or (0, 0)
    return int(min(ctx.info["GL_MAX_TEXTURE_SIZE"], *viewport))


def tile_data(frames: Sequence[FrameSpec], width: int, height: int, tiles: int) -> bytes:
    """The per-tile array: per frame its time, frame number, iDate's seconds, mouse in pixels and in 0..1,
    rounded to float32 from the same doubles CompiledProgram hands to its uniforms."""
    data = np.zeros((tiles, TILE_SLOTS, 4), dtype=np.float32)
    for index, frame in enumerate(frames):
        if abs(int(frame.frame)) >= _FRAME_LIMIT:
            raise AtlasError(f"frame number {frame.frame} is beyond what an atlas passes exactly ({_FRAME_LIMIT})")
        t = float(frame.time)
        x, y, z, w = (float(v) for v in frame.mouse)
        data[index, 0] = (t, float(int(frame.frame)), 43200.0 + t, 0.0)
        data[index, 1] = (x, y, z, w)
        data[index, 2] = (x / width, y / height, 0.0, 0.0)
    return data.tobytes()


def split_tiles(atlas: np.ndarray, layout: AtlasLayout, count: int) -> list[RenderedFrame]:
    """The first `count` tiles of an RGBA8 atlas (GL's row order) as frames, top row first."""
    stride_x, stride_y = layout.stride
    width, height = layout.width, layout.height
    flags = atlas[..., 3].reshape(layout.rows, stride_y, layout.columns, stride_x)[:, :height, :, :width]
    nonfinite = np.count_nonzero(flags, axis=(1, 3))
    pixels_per_tile = width * height
    frames = []
    for index in range(count):
        row, column = divmod(index, layout.columns)
        tile = atlas[row * stride_y: row * stride_y + height, column * stride_x: column * stride_x + width, :3]
        finite_share = (pixels_per_tile - int(nonfinite[row, column])) / pixels_per_tile
        frames.append(RenderedFrame(pixels=np.ascontiguousarray(tile[::-1]), nonfinite_fraction=1.0 - finite_share))
    return frames


@dataclass
class _Targets:
    """The float target the program draws into and the RGBA8 one the conversion pass writes."""

    floats: moderngl.Framebuffer
    source: moderngl.Texture
    bytes: moderngl.Framebuffer

    def release(self) -> None:
        for fbo in (self.floats, self.bytes):
            for attachment in fbo.color_attachments:
                attachment.release()
            fbo.release()


class AtlasProgram:
    """A single-pass program compiled once to draw up to `tiles` frames per draw, at any tile size."""

    def __init__(self, ctx: moderngl.Context, source: ProgramSource, tiles: int = DEFAULT_TILES) -> None:
        preflight(source)
        self.ctx = ctx
        self.tiles = tiles
        self._max_size = max_atlas_size(ctx)
        self._shader = atlas_shader(source, tiles)
        self._check_storage(ctx)
        self._program = _link(ctx, self._shader, source)
        self._compiled = CompiledProgram(ctx, source, self._program)
        self._tile_buffer = ctx.buffer(reserve=tiles * TILE_SLOTS * 16) if self._shader.uniform_block else None
        self._convert = ctx.program(vertex_shader=_CONVERT_VERTEX, fragment_shader=_CONVERT_FRAGMENT)
        self._convert_vao = ctx.vertex_array(self._convert, [])
        self._targets: dict[tuple[int, int], _Targets] = {}

    def _check_storage(self, ctx: moderngl.Context) -> None:
        slots = self.tiles * TILE_SLOTS
        if self._shader.uniform_block:
            limit = int(ctx.info.get("GL_MAX_UNIFORM_BLOCK_SIZE", 16384)) // 16
        else:
            limit = int(ctx.info.get("GL_MAX_FRAGMENT_UNIFORM_VECTORS", 224)) - 32  # room for the host's own
        if slots > limit:
            raise AtlasError(f"{self.tiles} tiles need {slots} vec4s of tile data; this GL holds {limit}")

    def _targets_for(self, layout: AtlasLayout) -> _Targets:
        targets = self._targets.get(layout.size)
        if targets is None:
            source = self.ctx.texture(layout.size, 4, dtype="f4")
            source.filter = (moderngl.NEAREST, moderngl.NEAREST)
            floats = self.ctx.framebuffer(color_attachments=[source])
            converted = self.ctx.framebuffer(color_attachments=[self.ctx.texture(layout.size, 4, dtype="f1")])
            targets = self._targets[layout.size] = _Targets(floats, source, converted)
        return targets

    def _upload(self, frames: Sequence[FrameSpec], layout: AtlasLayout) -> None:
        data = tile_data(frames, layout.width, layout.height, self.tiles)
        stride_x, stride_y = layout.stride
        # A program that reads neither the tile data nor its coordinate lets the compiler drop them.
        grid = self._program.get(GRID_NAME, None)
        if grid is not None:
            grid.value = (float(stride_x), float(stride_y), float(layout.columns))
        storage = self._program.get(BLOCK_NAME if self._tile_buffer is not None else ARRAY_NAME, None)
        if storage is None:
            return
        if self._tile_buffer is not None:
            self._tile_buffer.write(data)
            self._tile_buffer.bind_to_uniform_block(_BLOCK_BINDING)
            storage.binding = _BLOCK_BINDING
        else:
            storage.write(data)

    def render(self, frames: Sequence[FrameSpec], width: int, height: int) -> list[RenderedFrame]:
        """Each frame as CompiledProgram.render_frame would draw it, from one draw and one readback."""
        if not frames or len(frames) > self.tiles:
            raise AtlasError(f"an atlas of this program holds 1 to {self.tiles} frames, not {len(frames)}")
        layout = plan_layout(len(frames), width, height, self._max_size)
        targets = self._targets_for(layout)
        self._upload(frames, layout)
        # The uniforms that are the same for every tile (iResolution, channels, ...) as for a single draw.
        self._compiled.draw(targets.floats, frames[0], width, height, {})
        targets.bytes.use()
        # A unit of its own without a sampler object: the channels' samplers would filter with mipmaps.
        self.ctx.clear_samplers(_CONVERT_UNIT, _CONVERT_UNIT + 1)
        targets.source.use(location=_CONVERT_UNIT)
        self._convert["hv_source"].value = _CONVERT_UNIT
        self._convert_vao.render(moderngl.TRIANGLES, vertices=3)
        atlas_width, atlas_height = layout.size
        raw = np.frombuffer(targets.bytes.read(components=4, dtype="f1"), dtype=np.uint8)
        return split_tiles(raw.reshape(atlas_height, atlas_width, 4), layout, len(frames))

    def release(self) -> None:
        for targets in self._targets.values():
            targets.release()
        self._targets.clear()
        self._convert_vao.release()
        self._convert.release()
        if self._tile_buffer is not None:
            self._tile_buffer.release()
        self._compiled.release()


def _link(ctx: moderngl.Context, shader: AtlasShader, source: ProgramSource) -> moderngl.Program:
    try:
        program = link(ctx, shader.wrapped, source.dialect)
    except ProgramError as exc:
        raise AtlasError(f"the atlas variant does not compile: {exc.reason}") from None
    left = [name for name in shader.per_tile if isinstance(program.get(name, None), moderngl.Uniform)]
    if left:
        program.release()
        raise AtlasError(f"declares {', '.join(left)} in a form an atlas cannot set per tile")
    return program


def render_atlas(ctx: moderngl.Context, source: ProgramSource, frames: Sequence[FrameSpec],
                 width: int, height: int) -> list[RenderedFrame]:
    """Compile `source` for len(frames) tiles, draw every frame in one draw, release; AtlasError (or the
    ProgramError of preflight) when it cannot."""
    program = AtlasProgram(ctx, source, tiles=max(1, len(frames)))
    try:
        return program.render(frames, width, height)
    finally:
        program.release()
