"""`local`: a file or folder of dumps and programs, the format detected per file.

- Shadertoy API JSON: one `{"Shader": ...}` object, a list of them, or JSONL of them;
- the site's export JSON: a list of `{"info", "renderpass"}` with inputs as `{"filepath", "type", ...}`;
- flat JSONL records (`id`, `image_code`, `common_code`, `buffer_a_code`, ..., `license`);
- loose `.frag` / `.glsl` / `.fs` / `.shader` programs (dialect sniffed from the code; author, title and
  licence read from the leading comment header);
- the Shaders21k release, zipped (`all_codes.zip`) or unpacked: its `.fragment` files (see shaders21k.py).
Records of Shadertoy programs are stored as source `shadertoy` under their Shadertoy id, so a dump and
the API agree on identity; loose files are source `local`, identified by their path relative to --path
(never an absolute path: catalogs and exports travel).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corpus.licenses import UNKNOWN, detect_license
from corpus.normalize import looks_like_fragment_program
from corpus.records import FetchedPass, FetchedProgram, FetchFailure
from harvester.sources import shaders21k
from harvester.sources.base import (
    AlreadyKnown,
    RecordError,
    SourceItem,
    SourceUnavailable,
    WantedFn,
)
from harvester.sources.file_header import parse_header
from harvester.sources.shadertoy_format import program_from_flat, program_from_shader

NAME = "local"
PROGRAM_SUFFIXES = (".frag", ".glsl", ".fs", ".shader")
JSON_SUFFIXES = (".json",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
ZIP_SUFFIXES = (".zip",)
MAX_PROGRAM_BYTES = 1_000_000


def program_from_record(record: object) -> FetchedProgram:
    """One JSON record in any of the three Shadertoy shapes."""
    if isinstance(record, dict):
        if "Shader" in record:
            return program_from_shader(record["Shader"])
        if "info" in record and "renderpass" in record:
            return program_from_shader(record)
        if "image_code" in record:
            return program_from_flat(record)
    raise RecordError("record of unknown shape (expected a Shadertoy API, export or flat record)")


def _read_capped(path: Path) -> bytes | None:
    """A file's bytes (None when absent or a link), refusing files past MAX_PROGRAM_BYTES."""
    if path.is_symlink() or not path.is_file():
        return None
    if path.stat().st_size > MAX_PROGRAM_BYTES:
        raise RecordError(f"file larger than {MAX_PROGRAM_BYTES:,} bytes")
    return path.read_bytes()


def program_from_file(path: Path, name: str) -> FetchedProgram:
    """A loose program file; `name` is its path relative to --path, which identifies it."""
    if path.stat().st_size > MAX_PROGRAM_BYTES:
        raise RecordError(f"file larger than {MAX_PROGRAM_BYTES:,} bytes")
    code = path.read_text(encoding="utf-8", errors="replace")
    if not code.strip():
        raise RecordError("empty file")
    if not looks_like_fragment_program(code):
        raise RecordError("not a fragment program (no mainImage, or main without a colour output)")
    header = parse_header(code)
    if header.license:
        license_id, origin = header.license, "declared"
    else:
        detected = detect_license(code)
        license_id, origin = (detected, "detected") if detected else (UNKNOWN, "source-default")
    return FetchedProgram(
        source=NAME,
        source_id=name,
        url="",
        title=(header.title or path.stem)[:500],
        author=header.author,
        license=license_id,
        license_origin=origin,
        passes=[FetchedPass("image", code, [], "Image")],
    )


def _file_kind(path: Path, explicit: bool) -> str | None:
    suffix = path.suffix.lower()
    if suffix in PROGRAM_SUFFIXES:
        return "program"
    if suffix == shaders21k.FRAGMENT_SUFFIX:
        # A TwiGL mode file is read together with its program.
        return None if shaders21k.role_of(path.as_posix()) == shaders21k.Role.MODE else "fragment"
    if suffix in ZIP_SUFFIXES:
        return "zip"
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if not explicit:
        return None  # a folder's other files (README, images) are not ours
    if zipfile.is_zipfile(path):
        return "zip"
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl" if b"\n{" in head or head.count(b"\n") > 1 else "json"
    return "program"


@dataclass
class LocalSource:
    path: Path

    name: str = NAME
    exhausted: bool = field(default=False, init=False)
    _total: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser()
        if not self.path.exists():
            raise SourceUnavailable(f"--path {self.path}: no such file or folder")
        self.path = self.path.resolve()
        if self.path.is_file() and _file_kind(self.path, explicit=True) == "zip":
            try:
                with shaders21k.open_release(self.path):
                    pass  # a zip that is not the release is unusable as a whole
            except RecordError as exc:
                raise SourceUnavailable(f"--path {self.path.name}: {exc}") from None

    @property
    def scope(self) -> str:
        return self.path.as_posix()

    @property
    def total(self) -> int | None:
        return self._total

    def params(self) -> dict:
        return {"path": self.path.as_posix()}

    def _files(self) -> list[tuple[str, Path, str]]:
        """(relative name, path, kind) of every file to read, sorted."""
        if self.path.is_file():
            kind = _file_kind(self.path, explicit=True)
            return [(self.path.name, self.path, kind)] if kind else []
        found: list[tuple[str, Path, str]] = []
        for folder, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                path = Path(folder) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                kind = _file_kind(path, explicit=False)
                if kind:
                    found.append((path.relative_to(self.path).as_posix(), path, kind))
        return sorted(found)

    def items(self, cursor: dict, wanted: WantedFn) -> Iterator[SourceItem]:
        files = self._files()
        start_file = cursor.get("file") if isinstance(cursor.get("file"), str) else None
        start_item = cursor.get("item", 0) if isinstance(cursor.get("item"), int) else 0
        if start_file is not None:
            files = [f for f in files if f[0] >= start_file]
        self._total = self._count(files, start_file, start_item)
        for name, path, kind in files:
            skip = start_item if name == start_file else 0
            for position, result in self._read(name, path, kind, skip, wanted):
                yield SourceItem(result, {"file": name, "item": position + 1})
        self.exhausted = True

    @staticmethod
    def _count(files: list[tuple[str, Path, str]], start_file: str | None, start_item: int) -> int | None:
        """Items ahead, for the progress bar: JSONL lines are counted cheaply; a JSON file makes it unknown."""
        total = 0
        for name, path, kind in files:
            if kind == "json":
                return None
            if kind in ("program", "fragment"):
                total += 1
                continue
            if kind == "zip":
                total += LocalSource._zip_count(path) - (start_item if name == start_file else 0)
                continue
            with open(path, "rb") as fh:
                lines = [bool(line.strip()) for line in fh]
            skip = start_item if name == start_file else 0
            total += sum(lines[skip:])
        return total

    @staticmethod
    def _zip_count(path: Path) -> int:
        try:
            with shaders21k.ZipRelease(path) as release:
                return len(release.programs())
        except RecordError:
            return 1  # reported as one failure when its turn comes

    def _read(self, name: str, path: Path, kind: str, skip: int, wanted: WantedFn) -> Iterator[tuple[int, object]]:
        if kind in ("program", "fragment"):
            if skip < 1:
                yield 0, self._guard(name, lambda: self._parse_file(name, path, kind), wanted)
            return
        if kind == "zip":
            yield from self._read_zip(name, path, skip, wanted)
            return
        if kind == "jsonl":
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line_no, line in enumerate(fh):
                    if line_no < skip or not line.strip():
                        continue
                    yield line_no, self._guard(f"{name}:{line_no + 1}", lambda: program_from_record(json.loads(line)), wanted)
            return
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                document = json.load(fh)
        except ValueError as exc:
            if skip < 1:
                yield 0, FetchFailure(NAME, name, f"malformed JSON: {exc}")
            return
        records = document if isinstance(document, list) else [document]
        for index, record in enumerate(records):
            if index >= skip:
                label = f"{name}[{index}]" if isinstance(document, list) else name
                yield index, self._guard(label, lambda: program_from_record(record), wanted)

    @staticmethod
    def _parse_file(name: str, path: Path, kind: str) -> FetchedProgram:
        if kind == "program":
            return program_from_file(path, name)
        # The role comes from the whole path, so a single file given as --path is placed as well.
        return shaders21k.fragment_program(path.as_posix(), lambda other: _read_capped(Path(other)))

    def _read_zip(self, name: str, path: Path, skip: int, wanted: WantedFn) -> Iterator[tuple[int, object]]:
        try:
            release = shaders21k.open_release(path)
        except RecordError as exc:
            if skip < 1:
                yield 0, FetchFailure(NAME, name, str(exc))
            return
        with release:
            for position, member, parse in release.items(skip):
                yield position, self._guard(f"{name}:{member}", parse, wanted)

    @staticmethod
    def _guard(label: str, parse, wanted: WantedFn) -> FetchedProgram | FetchFailure | AlreadyKnown:
        try:
            program = parse()
        except json.JSONDecodeError as exc:
            return FetchFailure(NAME, label, f"malformed JSON: {exc}")
        except (RecordError, OSError, UnicodeError) as exc:
            return FetchFailure(NAME, label, str(exc))
        if not wanted(program.source, program.source_id):
            return AlreadyKnown(program.source, program.source_id)
        return program
