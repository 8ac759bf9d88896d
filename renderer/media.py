"""Shadertoy media (`/media/a/NAME.ext` channels) read from a folder the user supplies, and what is known of the
website's own media when no file is there.

harvest ships no Shadertoy media. A channel whose record names `/media/a/NAME.png` (or .jpg, .jpeg, or a volume's
.bin) is read from `DIR/NAME.png` when that file is there; a cubemap is six files, NAME.ext then NAME_1.ext to
NAME_5.ext (the website's faces +X, -X, +Y, -Y, +Z, -Z). Only a bare file name is ever looked up: anything with a
separator, a leading dot or another prefix is not a media name, and a file whose real path (symlinks followed)
is outside DIR is refused. Sizes are capped before anything is decoded.

GL-free: this module returns pixel arrays; renderer/textures.py uploads them.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MEDIA_PREFIX = "/media/a/"
MEDIA_DIR_ENV = "HARVEST_MEDIA_DIR"  # the live-data drawing process takes --media-dir from here
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VOLUME_SUFFIX = ".bin"
MAX_IMAGE_SIDE = 4096
MAX_VOLUME_SIDE = 256
MAX_FILE_BYTES = 64 * 1024 * 1024
CUBE_FACES = 6
# The website's volume files: a 20-byte little-endian header (signature, x, y, z as uint32; channels and layout
# as uint8; format as uint16: 0 is uint8 texels, 10 is float32), then the texels.
_VOLUME_HEADER = struct.Struct("<4sIIIBBH")
_VOLUME_TEXEL_BYTES = {0: 1, 10: 4}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class MediaError(Exception):
    """A media file that cannot be used; the message names no local path (it goes into the catalog)."""


@dataclass(frozen=True)
class MediaPreset:
    """One of the website's own media: its title, kind, size (width, height, depth) and channels."""

    title: str
    kind: str  # texture | cubemap | volume
    size: tuple[int, int, int]
    channels: int


def _texture(title: str, side: int, channels: int, height: int | None = None) -> MediaPreset:
    return MediaPreset(title, "texture", (side, height or side, 1), channels)


# The website's media in use in the shared 2022 and 2024 samples (every texture, cubemap and volume they name),
# by file stem; titles and sizes as public Shadertoy clients list them. A cubemap's size is one face's.
MEDIA_PRESETS: dict[str, MediaPreset] = {
    "52d2a8f514c4fd2d9866587f4d7b2a5bfa1a11a0e772077d7682deb8b3b517e5": _texture("Abstract 1", 1024, 3),
    "bd6464771e47eed832c5eb2cd85cdc0bfc697786b903bfd30f890f9d4fc36657": _texture("Abstract 2", 512, 3),
    "8979352a182bde7c3c651ba2b2f4e0615de819585cc37b7175bcefbca15a6683": _texture("Abstract 3", 1024, 3),
    "85a6d68622b36995ccb98a89bbb119edf167c914660e4450d313de049320005c": _texture("Bayer", 8, 1),
    "cb49c003b454385aa9975733aff4571c62182ccdda480aaba9a8d250014f00ec": _texture("Blue Noise", 1024, 4),
    "08b42b43ae9d3c0605da11d0eac86618ea888e62cdd9518ee8b9097488b31560": _texture("Font 1", 1024, 4),
    "0c7bf5fe9462d5bffbd11126e82908e39be3ce56220d900f633d58fb432e56f5": _texture("Gray Noise Medium", 256, 1),
    "0a40562379b63dfb89227e6d172f39fdce9022cba76623f1054a2c83d6c0ba5d": _texture("Gray Noise Small", 64, 1),
    "fb918796edc3d2221218db0811e240e72e340350008338b0c07a52bd353666a6": _texture("Lichen", 1024, 3),
    "8de3a3924cb95bd0e95a443fff0326c869f9d4979cd1d5b6e94e2a01f5be53e9": _texture("London", 512, 3),
    "cbcbb5a6cfb55c36f8f021fbb0e3f69ac96339a39fa85cd96f2017a2192821b5": _texture("Nyancat", 256, 4, height=32),
    "cd4c518bc6ef165c39d4405b347b51ba40f8d7a065ab0e8d2e4f422cbc1e8a43": _texture("Organic 1", 1024, 3),
    "92d7758c402f0927011ca8d0a7e40251439fba3a1dac26f5b8b62026323501aa": _texture("Organic 2", 1024, 3),
    "79520a3d3a0f4d3caa440802ef4362e99d54e12b1392973e4ea321840970a88a": _texture("Organic 3", 1024, 3),
    "3871e838723dd6b166e490664eead8ec60aedd6b8d95bc8e2fe3f882f0fd90f0": _texture("Organic 4", 1024, 3),
    "ad56fba948dfba9ae698198c109e71f118a54d209c0ea50d77ea546abad89c57": _texture("Pebbles", 512, 1),
    "f735bee5b64ef98879dc618b016ecf7939a5756040c2cde21ccb15e69a6e1cfb": _texture("RGBA Noise Medium", 256, 4),
    "3083c722c0c738cad0f468383167a0d246f91af2bfa373e9c5c094fb8c8413e0": _texture("RGBA Noise Small", 64, 4),
    "10eb4fe0ac8a7dc348a2cc282ca5df1759ab8bf680117e4047728100969e7b43": _texture("Rock Tiles", 512, 3),
    "95b90082f799f48677b4f206d856ad572f1d178c676269eac6347631d4447258": _texture("Rusty Metal", 512, 3),
    "e6e5631ce1237ae4c05b3563eda686400a401df4548d0f9fad40ecac1659c46c": _texture("Stars", 512, 3),
    "1f7dca9c22f324751f2a5a59c9b181dfe3b5564a04b724c657732d0bf09c99db": _texture("Wood", 1024, 1),
    "94284d43be78f00eb6b298e6d78656a1b34e2b91b34940d02f1ca8b22310e8a0": MediaPreset("Forest", "cubemap", (256, 256, 1), 3),
    "0681c014f6c88c356cf9c0394ffe015acc94ec1474924855f45d22c3e70b5785": MediaPreset("Forest Blurred", "cubemap", (64, 64, 1), 3),
    "488bd40303a2e2b9a71987e48c66ef41f5e937174bf316d3ed0e86410784b919": MediaPreset("St. Peter's Basilica", "cubemap", (256, 256, 1), 3),
    "550a8cce1bf403869fde66dddf6028dd171f1852f4a704a465e1b80d23955663": MediaPreset("St. Peter's Basilica Blurred", "cubemap", (64, 64, 1), 3),
    "585f9546c092f53ded45332b343144396c0b2d70d9965f585ebc172080d8aa58": MediaPreset("Uffizi Gallery", "cubemap", (256, 256, 1), 3),
    "793a105653fbdadabdc1325ca08675e1ce48ae5f12e37973829c87bea4be3232": MediaPreset("Uffizi Gallery Blurred", "cubemap", (64, 64, 1), 3),
    "27012b4eadd0c3ce12498b867058e4f717ce79e10a99568cca461682d84a4b04": MediaPreset("Grey Noise3D", "volume", (32, 32, 32), 1),
    "aea6b99da1d53055107966b59ac5444fc8bc7b3ce2d0bbb6a4a3cbae1d97f3aa": MediaPreset("RGBA Noise3D", "volume", (32, 32, 32), 4),
}


@dataclass(frozen=True)
class MediaName:
    """A channel source that names one of the website's media files: `stem` + `suffix` (with its dot)."""

    stem: str
    suffix: str

    @property
    def preset(self) -> MediaPreset | None:
        return MEDIA_PRESETS.get(self.stem)

    def file_name(self, face: int = 0) -> str:
        return f"{self.stem}{f'_{face}' if face else ''}{self.suffix}"


def media_name(src: str) -> MediaName | None:
    """The media file a channel's `src` names, or None when it names none (a buffer, a URL, a path escape)."""
    if not src.startswith(MEDIA_PREFIX):
        return None
    stem, dot, suffix = src[len(MEDIA_PREFIX):].rpartition(".")
    suffix = f"{dot}{suffix}"
    if not _NAME.fullmatch(stem) or suffix.lower() not in (*IMAGE_SUFFIXES, VOLUME_SUFFIX):
        return None
    return MediaName(stem, suffix)


@dataclass(frozen=True)
class MediaPixels:
    """Decoded media of `kind`, top row first: (H, W, 4) uint8 for a texture, (6, S, S, 4) uint8 for a cubemap,
    (D, H, W, C) uint8 or float32 for a volume."""

    kind: str
    data: np.ndarray

    @property
    def resolution(self) -> tuple[float, float, float]:
        """What iChannelResolution reports: width, height and depth (1 for a texture or a cubemap)."""
        if self.kind == "volume":
            depth, height, width = self.data.shape[:3]
            return float(width), float(height), float(depth)
        height, width = self.data.shape[-3:-1]
        return float(width), float(height), 1.0


class MediaFolder:
    """The folder `--media-dir` names; `load` returns a channel's pixels, None when the file is not there."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.root = Path(folder).resolve()

    def load(self, kind: str, name: MediaName) -> MediaPixels | None:
        """Raises MediaError for a file that is there but cannot be used (not an image, too big, a symlink out)."""
        if kind == "volume":
            if name.suffix.lower() != VOLUME_SUFFIX:
                raise MediaError("a volume must be a .bin file")
            path = self._path(name.file_name())
            return MediaPixels(kind, _read_volume(path)) if path else None
        if name.suffix.lower() not in IMAGE_SUFFIXES:
            raise MediaError(f"a {kind} must be a PNG or JPEG file")
        if kind == "cubemap":
            paths = [self._path(name.file_name(face)) for face in range(CUBE_FACES)]
            if not any(paths):
                return None
            if not all(paths):
                raise MediaError("a cubemap needs six files, NAME.ext and NAME_1.ext to NAME_5.ext")
            return MediaPixels(kind, _cube_faces([_read_image(path) for path in paths if path]))
        path = self._path(name.file_name())
        return MediaPixels(kind, _read_image(path)) if path else None

    def _path(self, file_name: str) -> Path | None:
        candidate = self.root / file_name
        if not os.path.lexists(candidate):
            return None
        resolved = candidate.resolve()
        if resolved.parent != self.root or not resolved.is_file():
            raise MediaError("the media file is not a regular file inside --media-dir")
        if resolved.stat().st_size > MAX_FILE_BYTES:
            raise MediaError(f"the media file is over {MAX_FILE_BYTES // (1024 * 1024)} MB")
        return resolved


def _read_image(path: Path) -> np.ndarray:
    """RGBA rows, top row first; the size is checked from the header before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format not in ("PNG", "JPEG"):
                    raise MediaError("the media file is not a PNG or JPEG image")
                width, height = image.size
                if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
                    raise MediaError(f"the image is {width}x{height}; at most {MAX_IMAGE_SIDE} a side is read")
                # Grey images read as (g, g, g, 1), as the website uploads every image as RGBA.
                return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("the media file is not a readable PNG or JPEG image") from None
    except (OSError, ValueError, SyntaxError):
        raise MediaError("the media image is truncated or corrupt") from None


def _cube_faces(faces: list[np.ndarray]) -> np.ndarray:
    side = faces[0].shape[0]
    if any(face.shape[:2] != (side, side) for face in faces):
        raise MediaError("the six cubemap faces must be square and of one size")
    return np.stack(faces)


def _read_volume(path: Path) -> np.ndarray:
    data = path.read_bytes()
    if len(data) < _VOLUME_HEADER.size:
        raise MediaError("the volume file is shorter than its header")
    _, width, height, depth, channels, _, texel = _VOLUME_HEADER.unpack_from(data)
    if texel not in _VOLUME_TEXEL_BYTES or not 1 <= channels <= 4:
        raise MediaError("the volume file has an unknown texel format")
    if not all(1 <= side <= MAX_VOLUME_SIDE for side in (width, height, depth)):
        raise MediaError(f"the volume is {width}x{height}x{depth}; at most {MAX_VOLUME_SIDE} a side is read")
    expected = width * height * depth * channels * _VOLUME_TEXEL_BYTES[texel]
    body = data[_VOLUME_HEADER.size:]
    if len(body) < expected:
        raise MediaError("the volume file is shorter than its size says")
    dtype = np.uint8 if texel == 0 else np.float32
    return np.frombuffer(body[:expected], dtype=dtype).reshape(depth, height, width, channels).copy()
