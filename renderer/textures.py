"""Stand-ins for a program's input channels: deterministic noise textures of the declared kind.

Shadertoy's most used inputs are its white-noise textures, so seeded white noise (with mipmaps
and repeat wrapping, like the website's defaults) is both faithful and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

NOISE_2D_SIZE = 256
NOISE_CUBE_SIZE = 64
NOISE_VOLUME_SIZE = 32
# Units 0-3 are iChannel0..3; GLSL Sandbox's `backbuffer` (black on the first frame) sits after them.
BACKBUFFER_UNIT = 4


def _noise(seed: int, shape: tuple[int, ...]) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8).tobytes()


@dataclass
class BoundTexture:
    texture: moderngl.Texture | moderngl.TextureCube | moderngl.Texture3D
    resolution: tuple[float, float, float]


class ChannelTextures:
    """Textures for one context, made on first use and shared by every program drawn in it."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self._ctx = ctx
        self._cache: dict[tuple[str, int], BoundTexture] = {}

    def for_channel(self, kind: str | None, index: int) -> BoundTexture:
        """The texture bound to channel `index` of `kind` (None: an unbound channel, black)."""
        key = (kind or "none", index if kind else 0)
        if key not in self._cache:
            self._cache[key] = self._make(kind, 1000 + index)
        return self._cache[key]

    def black(self) -> BoundTexture:
        return self.for_channel(None, 0)

    def _make(self, kind: str | None, seed: int) -> BoundTexture:
        ctx = self._ctx
        if kind is None:
            texture = ctx.texture((1, 1), 4, data=bytes([0, 0, 0, 255]))
            return BoundTexture(texture, (0.0, 0.0, 0.0))
        if kind == "cubemap":
            size = NOISE_CUBE_SIZE
            cube = ctx.texture_cube((size, size), 4, data=_noise(seed, (6, size, size, 4)))
            cube.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            cube.build_mipmaps()
            return BoundTexture(cube, (float(size), float(size), 1.0))
        if kind == "volume":
            size = NOISE_VOLUME_SIZE
            volume = ctx.texture3d((size, size, size), 4, data=_noise(seed, (size, size, size, 4)))
            volume.repeat_x = volume.repeat_y = volume.repeat_z = True
            volume.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            volume.build_mipmaps()
            return BoundTexture(volume, (float(size), float(size), float(size)))
        size = NOISE_2D_SIZE  # texture, buffer (and anything else we stand in for)
        texture = ctx.texture((size, size), 4, data=_noise(seed, (size, size, 4)))
        texture.repeat_x = texture.repeat_y = True
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        texture.build_mipmaps()
        return BoundTexture(texture, (float(size), float(size), 1.0))

    def release(self) -> None:
        for bound in self._cache.values():
            bound.texture.release()
        self._cache.clear()
