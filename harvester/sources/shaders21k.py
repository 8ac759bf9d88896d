"""The Shaders21k release (`all_codes.zip`, zipped or unpacked): its `.fragment` files as programs.

The release unpacks to `shader_codes/` with
- `shadertoy/<c>/<ID>.fragment`: one Shadertoy site-export JSON record (`{"ver", "info", "renderpass"}`) each;
- `twigl/fragments/<name>.fragment` (the code) beside `twigl/modes/<name>.fragment` (the mode file: mode name,
  then the 300-es, MRT and ternary-fix flags, one a line);
- `shaders_info/shadertoy_urls` and `shaders_list`, lists of the above (not needed, not read).
Shadertoy records are stored as source `shadertoy` under their ids (so they merge with API and dump records);
TwiGL programs as source `twigl`, dialect `twigl`, with the mode spec as their image pass's name.

A zip is read in place: members are streamed and cut off past MAX_MEMBER_BYTES (a zip bomb cannot fill
memory), and member names are only labels, never paths on disk.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Self

from corpus.licenses import UNKNOWN, detect_license
from corpus.records import FetchedPass, FetchedProgram
from harvester.sources.base import RecordError
from harvester.sources.shadertoy_format import program_from_shader
from renderer.twigl import TwiglModeError, mode_from_lines

FRAGMENT_SUFFIX = ".fragment"
TWIGL_SOURCE = "twigl"
MAX_MEMBER_BYTES = 1_000_000
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Role(StrEnum):
    SHADERTOY = "shadertoy"  # a site-export record under shadertoy/
    TWIGL = "twigl"  # TwiGL code under twigl/fragments/
    MODE = "mode"  # a TwiGL mode file, read with its program
    OTHER = "other"  # a .fragment elsewhere: only a site-export record is accepted


def role_of(name: str) -> Role | None:
    """What a `.fragment` at this relative path (posix, inside the release) is; None for other files."""
    folders = name.replace("\\", "/").split("/")
    if not folders[-1].lower().endswith(FRAGMENT_SUFFIX):
        return None
    folders = folders[:-1]
    if len(folders) >= 2 and folders[-2] == "twigl" and folders[-1] in ("fragments", "modes"):
        return Role.TWIGL if folders[-1] == "fragments" else Role.MODE
    return Role.SHADERTOY if "shadertoy" in folders else Role.OTHER


def mode_file_of(name: str) -> str:
    """twigl/fragments/NAME.fragment -> twigl/modes/NAME.fragment (same prefix)."""
    folders = name.replace("\\", "/").split("/")
    folders[-2] = "modes"
    return "/".join(folders)


def _text(data: bytes) -> str:
    """Bytes as text; RecordError when they are binary (NULs or mostly undecodable), i.e. neither JSON nor code."""
    text = data.decode("utf-8", errors="replace")
    if "\x00" in text or text.count("\ufffd") > max(8, len(text) // 20):
        raise RecordError("binary data: neither JSON nor code")
    return text


def _is_json_document(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n").startswith(("{", "["))


def shadertoy_program(data: bytes) -> FetchedProgram:
    text = _text(data)
    if not _is_json_document(text):
        raise RecordError("not a Shadertoy site-export JSON record")
    document = json.loads(text)  # a JSONDecodeError is reported as malformed JSON by the caller
    if isinstance(document, dict) and "Shader" in document:
        document = document["Shader"]
    return program_from_shader(document)


def twigl_program(name: str, data: bytes, mode_data: bytes | None) -> FetchedProgram:
    stem = name.replace("\\", "/").rsplit("/", 1)[-1][: -len(FRAGMENT_SUFFIX)]
    if not stem or len(stem) > 128 or not set(stem) <= _NAME_CHARS:
        raise RecordError(f"TwiGL program name {stem[:40]!r} is not a plain name")
    if mode_data is None:
        raise RecordError(f"no mode file twigl/modes/{stem}{FRAGMENT_SUFFIX} beside it")
    try:
        mode = mode_from_lines(_text(mode_data))
    except TwiglModeError as exc:
        raise RecordError(f"mode file: {exc}") from None
    code = _text(data)
    if not code.strip():
        raise RecordError("empty program")
    if _is_json_document(code) or ";" not in code:
        raise RecordError("not GLSL code (no statements)")
    detected = detect_license(code)
    return FetchedProgram(
        source=TWIGL_SOURCE,
        source_id=stem,
        url="",
        title=stem,
        author="",
        passes=[FetchedPass("image", code, [], mode.spec())],
        license=detected or UNKNOWN,
        license_origin="detected" if detected else "source-default",
        dialect="twigl",
        raw={"fragment": stem, "mode": mode.spec()},
    )


def fragment_program(name: str, read: Callable[[str], bytes | None]) -> FetchedProgram:
    """The program in the `.fragment` at `name`; `read(name)` gives a file's bytes (None when it is absent)."""
    role = role_of(name)
    data = read(name)
    if data is None:
        raise RecordError("file vanished")
    if role == Role.TWIGL:
        return twigl_program(name, data, read(mode_file_of(name)))
    if role == Role.OTHER and not _is_json_document(_text(data)):
        raise RecordError("a .fragment outside shadertoy/ and twigl/fragments/ that is not a site-export record")
    return shadertoy_program(data)


class ZipRelease:
    """A Shaders21k zip, read member by member without unpacking."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise RecordError(f"not a readable zip file ({exc})") from None
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if not info.is_dir():
                self._members[info.filename.replace("\\", "/")] = info

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def programs(self) -> list[str]:
        """Names of the members that are programs (mode files are read with theirs), sorted."""
        return sorted(n for n in self._members if role_of(n) in (Role.SHADERTOY, Role.TWIGL, Role.OTHER))

    def is_release(self) -> bool:
        return any(role_of(n) in (Role.SHADERTOY, Role.TWIGL) for n in self._members)

    def read(self, name: str) -> bytes | None:
        info = self._members.get(name)
        if info is None:
            return None
        if info.file_size > MAX_MEMBER_BYTES:
            raise RecordError(f"member larger than {MAX_MEMBER_BYTES:,} bytes")
        try:
            with self._zip.open(info) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)  # the header's size may lie; never read past the cap
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError) as exc:
            raise RecordError(f"corrupt zip member ({exc})") from None
        if len(data) > MAX_MEMBER_BYTES:
            raise RecordError(f"member larger than {MAX_MEMBER_BYTES:,} bytes")
        return data

    def items(self, skip: int) -> Iterator[tuple[int, str, Callable[[], FetchedProgram]]]:
        """(position, member name, parse) for each program member from position `skip` on."""
        for position, name in enumerate(self.programs()):
            if position >= skip:
                yield position, name, lambda name=name: fragment_program(name, self.read)


def open_release(path: Path) -> ZipRelease:
    """A zip that must be a Shaders21k release; RecordError says why it is not."""
    release = ZipRelease(path)
    if not release.is_release():
        release.close()
        raise RecordError("not a Shaders21k release (no shadertoy/.../ID.fragment or twigl/fragments/NAME.fragment)")
    return release
