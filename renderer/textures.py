"""A program's input channels: media read from --media-dir (renderer/media.py), else deterministic noise
stand-ins of the declared kind and, for the website's own media, their size; a keyboard with no key down; and
the samplers (filter, wrap) each channel's record asks for.

Shadertoy's most used inputs are its white-noise textures, so seeded white noise (with mipmaps) is both
faithful and cheap. A record's `vflip` flips an uploaded image or cubemap face (rows taken as top row first),
as the website's upload does; it does not apply to buffers, which are drawn, not uploaded (every buffer
binding in the shared samples says `vflip: true`, and feedback programs only work unflipped), nor to volumes.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from dataclasses import dataclass

import moderngl
import numpy as np

from renderer.jobs import ChannelBinding, ChannelSampler
from renderer.media import CUBE_FACES, MEDIA_DIR_ENV, MediaError, MediaFolder, MediaName, MediaPixels, media_name

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


def _noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _seed(name: MediaName | None, index: int) -> int:
    """A preset's noise is the same in every channel and program; other stand-ins keep the channel's own."""
    if name is None or name.preset is None:
        return 1000 + index
    return int.from_bytes(hashlib.sha256(name.stem.encode()).digest()[:4], "big")


def standin_pixels(kind: str, name: MediaName | None, index: int) -> MediaPixels:
    """Deterministic noise of the kind bound and, for one of the website's media, its size and channels (a grey
    texture's noise is grey, as the website reads a grey image); else the kind's default size."""
    preset = name.preset if name is not None and name.preset is not None and name.preset.kind == kind else None
    seed = _seed(name if preset else None, index)
    if kind == "volume":
        side = NOISE_VOLUME_SIZE
        width, height, depth = preset.size if preset else (side, side, side)
        return MediaPixels(kind, _noise(seed, (depth, height, width, preset.channels if preset else 4)))
    if kind == "cubemap":
        width = height = preset.size[0] if preset else NOISE_CUBE_SIZE
        shape: tuple[int, ...] = (CUBE_FACES, height, width)
    else:
        width, height = preset.size[:2] if preset else (NOISE_2D_SIZE, NOISE_2D_SIZE)
        shape = (height, width)
    channels = preset.channels if preset else 4
    noise = _noise(seed, (*shape, 4))
    if channels == 1:
        noise[..., 1] = noise[..., 2] = noise[..., 0]
    if channels < 4:
        noise[..., 3] = 255
    return MediaPixels(kind, noise)


@dataclass
class BoundTexture:
    """A texture bound to a channel and what iChannelResolution reports for it; `standin` says why it is a
    stand-in for what the website binds (None: the real thing, or a drawn buffer)."""

    texture: moderngl.Texture | moderngl.TextureCube | moderngl.Texture3D
    resolution: tuple[float, float, float]
    standin: str | None = None


def _upright(rows: np.ndarray, flipped: bool) -> bytes:
    # GL's first row is the bottom one: an image uploaded as is stands upside down, as without vflip.
    return np.ascontiguousarray(rows[..., ::-1, :, :] if flipped else rows).tobytes()


def _upload(ctx: moderngl.Context, pixels: MediaPixels, flipped: bool) -> moderngl.Texture | moderngl.TextureCube | moderngl.Texture3D:
    data = pixels.data
    if pixels.kind == "volume":
        depth, height, width, channels = data.shape
        texture = ctx.texture3d((width, height, depth), channels, data=data.tobytes(),
                                dtype="f1" if data.dtype == np.uint8 else "f4")
    elif pixels.kind == "cubemap":
        texture = ctx.texture_cube((data.shape[2], data.shape[1]), 4, data=_upright(data, flipped))
    else:
        texture = ctx.texture((data.shape[1], data.shape[0]), 4, data=_upright(data, flipped))
    texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    texture.build_mipmaps()
    return texture


MEDIA_KINDS = ("texture", "cubemap", "volume")
# Textures read from --media-dir kept per context; past this many the oldest is released.
MAX_CACHED_MEDIA = 48


class ChannelTextures:
    """Textures for one context, made on first use and shared by every program drawn in it. Media channels are
    read from the media folder (`use_media_dir`; by default $HARVEST_MEDIA_DIR), else stand in."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self._ctx = ctx
        self._cache: dict[tuple, BoundTexture] = {}
        self._samplers: dict[tuple[str, str], moderngl.Sampler] = {}
        self._media_dir: str | None = None
        self._folder: MediaFolder | None = None
        self.use_media_dir(os.environ.get(MEDIA_DIR_ENV) or None)

    def use_media_dir(self, media_dir: str | None) -> None:
        """Read media channels from `media_dir` from now on (None: stand-ins only)."""
        if media_dir == self._media_dir:
            return
        for key in [key for key in self._cache if key[0] == "file"]:
            self._cache.pop(key).texture.release()
        self._media_dir = media_dir
        self._folder = MediaFolder(media_dir) if media_dir else None

    def for_binding(self, binding: ChannelBinding | None, index: int) -> BoundTexture:
        """What channel `index` reads for `binding` (None: an unbound channel, black), other than a drawn buffer."""
        if binding is None or binding.kind == "keyboard":
            return self._standin(binding.kind if binding else None, None, index, False, None)
        flipped = bool(effective_sampler(binding).vflip) and binding.kind in ("texture", "cubemap")
        if binding.kind not in MEDIA_KINDS:
            return self._standin(binding.kind, None, index, flipped, "a buffer the record does not name")
        name = media_name(binding.media)
        if name is None:
            return self._standin(binding.kind, None, index, flipped, "the record names no media file")
        if self._folder is None:
            return self._standin(binding.kind, name, index, flipped, "no --media-dir")
        try:
            bound = self._from_file(binding.kind, name, flipped)
        except MediaError as exc:
            return self._standin(binding.kind, name, index, flipped, str(exc))
        return bound or self._standin(binding.kind, name, index, flipped, "not in --media-dir")

    def _from_file(self, kind: str, name: MediaName, flipped: bool) -> BoundTexture | None:
        key = ("file", kind, name.file_name(), flipped)
        if key not in self._cache:
            assert self._folder is not None
            pixels = self._folder.load(kind, name)
            if pixels is None:
                return None
            files = [k for k in self._cache if k[0] == "file"]
            if len(files) >= MAX_CACHED_MEDIA:
                self._cache.pop(files[0]).texture.release()
            self._cache[key] = BoundTexture(_upload(self._ctx, pixels, flipped), pixels.resolution)
        return self._cache[key]

    def _standin(self, kind: str | None, name: MediaName | None, index: int, flipped: bool,
                 reason: str | None) -> BoundTexture:
        preset = name.file_name() if name is not None and name.preset is not None else ""
        key = ("standin", kind or "none", preset, index if kind and not preset else 0, flipped)
        if key not in self._cache:
            self._cache[key] = self._make(kind, name, index, flipped)
        cached = self._cache[key]
        return BoundTexture(cached.texture, cached.resolution, reason)

    def sampler(self, settings: ChannelSampler) -> moderngl.Sampler:
        """A sampler object with `settings`' filter and wrap (it overrides the bound texture's own)."""
        key = (settings.filter, settings.wrap)
        if key not in self._samplers:
            repeat = settings.wrap == "repeat"
            self._samplers[key] = self._ctx.sampler(repeat_x=repeat, repeat_y=repeat, repeat_z=repeat,
                                                    filter=_FILTERS[settings.filter])
        return self._samplers[key]

    def black(self) -> BoundTexture:
        return self._standin(None, None, 0, False, None)

    def _make(self, kind: str | None, name: MediaName | None, index: int, flipped: bool) -> BoundTexture:
        ctx = self._ctx
        if kind is None:
            texture = ctx.texture((1, 1), 4, data=bytes([0, 0, 0, 255]))
            return BoundTexture(texture, (0.0, 0.0, 0.0))
        if kind == "keyboard":
            # No key down, pressed or toggled: every texel is zero.
            texture = ctx.texture(KEYBOARD_SIZE, 1, data=bytes(KEYBOARD_SIZE[0] * KEYBOARD_SIZE[1]))
            return BoundTexture(texture, (float(KEYBOARD_SIZE[0]), float(KEYBOARD_SIZE[1]), 1.0))
        # A buffer (and anything else we stand in for) reads 2D noise, as a texture does.
        pixels = standin_pixels(kind if kind in MEDIA_KINDS else "texture", name, index)
        return BoundTexture(_upload(ctx, pixels, flipped), pixels.resolution)

    def release(self) -> None:
        for bound in self._cache.values():
            bound.texture.release()
        self._cache.clear()
        for sampler in self._samplers.values():
            sampler.release()
        self._samplers.clear()


_TEXTURES: weakref.WeakKeyDictionary[moderngl.Context, ChannelTextures] = weakref.WeakKeyDictionary()


def channel_textures(ctx: moderngl.Context) -> ChannelTextures:
    """The one ChannelTextures of `ctx`."""
    textures = _TEXTURES.get(ctx)
    if textures is None:
        textures = _TEXTURES[ctx] = ChannelTextures(ctx)
    return textures
