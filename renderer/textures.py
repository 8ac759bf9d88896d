"""Stand-ins for a program's input channels: deterministic noise textures of the declared kind, a keyboard
with no key down, and the samplers (filter, wrap) each channel's record asks for.

Shadertoy's most used inputs are its white-noise textures, so seeded white noise (with mipmaps) is both
faithful and cheap. A record's `vflip` flips an uploaded image (our noise rows, taken as top row first),
as the website's upload does; it does not apply to buffers, which are drawn, not uploaded (every buffer
binding in the shared samples says `vflip: true`, and feedback programs only work unflipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from renderer.jobs import ChannelBinding, ChannelSampler

NOISE_2D_SIZE = 256
NOISE_CUBE_SIZE = 64
NOISE_VOLUME_SIZE = 32
# Units 0-3 are iChannel0..3; GLSL Sandbox's `backbuffer` (black on the first frame) sits after them.
BACKBUFFER_UNIT = 4
KEYBOARD_SIZE = (256, 3)  # Shadertoy's layout: rows are key down, key pressed this frame, key toggled
# The website's sampler for each kind when the record does not say (filter, wrap, vflip).
DEFAULT_SAMPLERS: dict[str, ChannelSampler] = {
    "texture": ChannelSampler("mipmap", "repeat", True),
    "cubemap": ChannelSampler("mipmap", "clamp", False),
    "volume": ChannelSampler("mipmap", "repeat", False),
    "buffer": ChannelSampler("linear", "clamp", False),
    "keyboard": ChannelSampler("nearest", "clamp", False),
}
_FALLBACK_SAMPLER = ChannelSampler("mipmap", "repeat", False)
_FILTERS = {
    "nearest": (moderngl.NEAREST, moderngl.NEAREST),
    "linear": (moderngl.LINEAR, moderngl.LINEAR),
    "mipmap": (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR),
}


def effective_sampler(binding: ChannelBinding | None) -> ChannelSampler:
    """The binding's sampler with the website's default for its kind in every field it leaves empty."""
    default = DEFAULT_SAMPLERS.get(binding.kind, _FALLBACK_SAMPLER) if binding else _FALLBACK_SAMPLER
    given = binding.sampler if binding else ChannelSampler()
    return ChannelSampler(
        filter=given.filter if given.filter in _FILTERS else default.filter,
        wrap=given.wrap if given.wrap in ("clamp", "repeat") else default.wrap,
        vflip=default.vflip if given.vflip is None else given.vflip,
    )


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
        self._cache: dict[tuple[str, int, bool], BoundTexture] = {}
        self._samplers: dict[tuple[str, str], moderngl.Sampler] = {}

    def for_channel(self, kind: str | None, index: int, vflip: bool = False) -> BoundTexture:
        """The texture bound to channel `index` of `kind` (None: an unbound channel, black)."""
        flipped = vflip and kind == "texture"
        key = (kind or "none", index if kind else 0, flipped)
        if key not in self._cache:
            self._cache[key] = self._make(kind, 1000 + index, flipped)
        return self._cache[key]

    def sampler(self, settings: ChannelSampler) -> moderngl.Sampler:
        """A sampler object with `settings`' filter and wrap (it overrides the bound texture's own)."""
        key = (settings.filter, settings.wrap)
        if key not in self._samplers:
            repeat = settings.wrap == "repeat"
            self._samplers[key] = self._ctx.sampler(repeat_x=repeat, repeat_y=repeat, repeat_z=repeat,
                                                    filter=_FILTERS[settings.filter])
        return self._samplers[key]

    def black(self) -> BoundTexture:
        return self.for_channel(None, 0)

    def _make(self, kind: str | None, seed: int, flipped: bool) -> BoundTexture:
        ctx = self._ctx
        if kind is None:
            texture = ctx.texture((1, 1), 4, data=bytes([0, 0, 0, 255]))
            return BoundTexture(texture, (0.0, 0.0, 0.0))
        if kind == "keyboard":
            # No key down, pressed or toggled: every texel is zero.
            texture = ctx.texture(KEYBOARD_SIZE, 1, data=bytes(KEYBOARD_SIZE[0] * KEYBOARD_SIZE[1]))
            return BoundTexture(texture, (float(KEYBOARD_SIZE[0]), float(KEYBOARD_SIZE[1]), 1.0))
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
        rows = np.frombuffer(_noise(seed, (size, size, 4)), dtype=np.uint8).reshape(size, size, 4)
        # GL's first row is the bottom one: an image uploaded as is stands upside down, as without vflip.
        texture = ctx.texture((size, size), 4, data=np.ascontiguousarray(rows[::-1] if flipped else rows).tobytes())
        texture.repeat_x = texture.repeat_y = True
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        texture.build_mipmaps()
        return BoundTexture(texture, (float(size), float(size), 1.0))

    def release(self) -> None:
        for bound in self._cache.values():
            bound.texture.release()
        self._cache.clear()
        for sampler in self._samplers.values():
            sampler.release()
        self._samplers.clear()
