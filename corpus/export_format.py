"""The exported dataset's format: what `harvest export` writes and what pretraining reads back.

An export folder holds
- `manifest.jsonl`: one `SampleMetadata` JSON object a line (plus `shard`, or `code` for `--format jsonl`),
- `shards/shard-NNNNNN.tar` (webdataset format): per program `KEY.frag`, `KEY.json` and optional `KEY.fN.png`,
- `ATTRIBUTION.md` and `export.json`.

`KEY.frag` is the program's code joined as the renderer needs it (for shadertoy: common, a newline, then image),
so `source_from_frag(frag, metadata)` rebuilds a ProgramSource that the renderer draws identically.
Keys are built from the source name and the catalog id only, never from titles, and contain no dots (webdataset
splits a member name at its first dot).
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from corpus.errors import CorpusError
from corpus.models import Program, Score, Validation
from corpus.public_identity import import_roots, public_identity
from corpus.render_source import load_program_sources
from renderer.jobs import ProgramSource, Verdict

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.jsonl"
SHARDS_DIR = "shards"
ATTRIBUTION_NAME = "ATTRIBUTION.md"
EXPORT_INFO_NAME = "export.json"
DEFAULT_OUT_NAME = "export"  # the export folder beside the catalog when --out is not given

_UNSAFE_KEY_CHARS = re.compile(r"[^a-z0-9_-]+")


def program_key(source_name: str, program_id: int) -> str:
    """`{source}-{id:08d}`: unique per catalog, no dots, no path separators, nothing from a title."""
    source = _UNSAFE_KEY_CHARS.sub("_", source_name.lower()).strip("_")[:32] or "program"
    return f"{source}-{program_id:08d}"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def joined_code(source: ProgramSource) -> str:
    """The passes as one fragment program: common (when present) before image, as the shadertoy wrapper does."""
    if source.common.strip():
        return f"{source.common}\n{source.image}"
    return source.image


def source_from_frag(frag: str, dialect: str, channels: list | tuple, buffer_passes: int = 0,
                     mode: str = "") -> ProgramSource:
    """Inverse of `joined_code`: common is already inside `frag`, so it stays empty."""
    slots = [c if isinstance(c, str) else None for c in list(channels)[:4]]
    slots += [None] * (4 - len(slots))
    return ProgramSource(
        dialect=dialect,
        image=frag,
        common="",
        channels=(slots[0], slots[1], slots[2], slots[3]),
        buffer_passes=int(buffer_passes),
        mode=mode,
    )


@dataclass(frozen=True)
class ExportedProgram:
    """One program of an export (or of the catalog's exportable set), ready to render."""

    key: str
    program_id: int
    source: ProgramSource
    title: str
    author: str
    license: str
    url: str | None  # None: no public address (a local file)
    diversity: float | None
    origin: str = ""  # the catalog's source name: shadertoy, glslsandbox, local, ...
    source_id: str = ""
    colorfulness: float | None = None
    fill: float | None = None
    verdict: str | None = None


@dataclass
class SampleMetadata:
    """The content of `KEY.json` and of each manifest line."""

    key: str
    id: int
    source: str
    source_id: str  # never an absolute local path (see corpus/public_identity.py)
    url: str | None  # an http(s) URL, or None
    title: str
    author: str
    license: str
    license_origin: str
    dialect: str
    channels: list[str | None]
    buffer_passes: int
    verdict: str | None
    reason: str
    diversity: float | None
    colorfulness: float | None
    fill: float | None
    likes: int | None
    published_at: str | None
    duplicate_of: int | None = None
    near_duplicate_of: int | None = None
    near_duplicate_kind: str | None = None
    cluster: list[int] = field(default_factory=list)  # catalog ids this program stands for (itself first)
    images: list[str] = field(default_factory=list)  # member suffixes, e.g. ["f0.png", "f1.png"]
    mode: str = ""  # the dialect's variant (TwiGL's mode and flags); empty for the others
    # Channels validation drew with stand-ins instead of the website's media ({"pass", "channel", "kind", "media",
    # "reason"} each); [] when none, None when not known (validated before harvest recorded it).
    standins: list[dict] | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict) -> SampleMetadata:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def exported_program(self, frag: str) -> ExportedProgram:
        return ExportedProgram(
            key=self.key,
            program_id=int(self.id),
            source=source_from_frag(frag, self.dialect, self.channels, self.buffer_passes, self.mode),
            title=self.title,
            author=self.author,
            license=self.license,
            url=self.url,
            diversity=self.diversity,
            origin=self.source,
            source_id=self.source_id,
            colorfulness=self.colorfulness,
            fill=self.fill,
            verdict=self.verdict,
        )


def _read_manifest(folder: Path) -> list[dict]:
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise CorpusError(f"export folder {folder} does not exist")
    if not path.is_file():
        raise CorpusError(f"{folder} is not an export: {MANIFEST_NAME} is missing")
    lines: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or "id" not in entry:
                raise CorpusError(f"{path}:{number}: a manifest line needs at least `key` and `id`")
            lines.append(entry)
    if not lines:
        raise CorpusError(f"export {folder} is empty: {MANIFEST_NAME} lists no programs")
    return lines


@dataclass(frozen=True)
class ExportListing:
    """Which programs an export holds, and the catalog (by file name) it was made from."""

    folder: Path
    keys: frozenset[str]
    catalog_name: str | None  # None when export.json is missing or does not say


def read_listing(folder: Path) -> ExportListing:
    """The keys in an export's manifest; raises CorpusError for a missing or unreadable export."""
    folder = Path(folder)
    keys = frozenset(entry["key"] for entry in _read_manifest(folder))
    catalog_name = None
    try:
        recorded = json.loads((folder / EXPORT_INFO_NAME).read_text(encoding="utf-8")).get("catalog")
        # Older exports recorded the catalog's full path; only its name is compared.
        catalog_name = Path(recorded).name if isinstance(recorded, str) and recorded else None
    except (OSError, ValueError, AttributeError):
        pass
    return ExportListing(folder, keys, catalog_name)


def _read_shard_code(shard: Path) -> dict[str, str]:
    """KEY -> the text of KEY.frag, for every program in one shard."""
    codes: dict[str, str] = {}
    try:
        with tarfile.open(shard, "r:*") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".frag"):
                    continue
                key = Path(member.name).name.split(".", 1)[0]
                handle = tar.extractfile(member)
                if handle is not None:
                    codes[key] = handle.read().decode("utf-8")
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"export shard {shard} is unreadable: {exc}") from None
    return codes


def read_export(folder: Path) -> list[ExportedProgram]:
    """Every program of the export in `folder`, in manifest order; the code comes from the shards (or the manifest
    for `--format jsonl`). Raises CorpusError for a missing, empty or corrupt export."""
    folder = Path(folder)
    entries = _read_manifest(folder)
    shard_codes: dict[str, dict[str, str]] = {}
    programs: list[ExportedProgram] = []
    for entry in entries:
        try:
            metadata = SampleMetadata.from_json(entry)
        except TypeError as exc:
            raise CorpusError(f"{folder / MANIFEST_NAME}: entry {entry.get('key')!r} is incomplete ({exc})") from None
        code = entry.get("code")
        if not isinstance(code, str):
            shard = entry.get("shard")
            if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard.startswith("."):
                raise CorpusError(f"{folder / MANIFEST_NAME}: entry {metadata.key!r} names no valid shard")
            if shard not in shard_codes:
                path = folder / SHARDS_DIR / shard
                if not path.is_file():
                    raise CorpusError(f"export {folder} is incomplete: shard {shard} is missing")
                shard_codes[shard] = _read_shard_code(path)
            code = shard_codes[shard].get(metadata.key)
            if code is None:
                raise CorpusError(f"export {folder} is corrupt: {metadata.key}.frag is not in shard {shard}")
        programs.append(metadata.exported_program(code))
    return programs


def programs_from_catalog(
    catalog, min_diversity: float | None = None, limit: int | None = None
) -> list[ExportedProgram]:
    """The catalog's `ok` programs that are not exact or near duplicates, by id, optionally only those scored at
    least `min_diversity` (unscored programs are then left out; run `harvest score` first). Their `source_id` and
    `url` are the public ones an export would carry."""
    with catalog.session() as session:
        query = (
            select(Program, Validation, Score)
            .join(Validation, Validation.program_id == Program.id)
            .join(Score, Score.program_id == Program.id, isouter=True)
            .where(Validation.verdict == Verdict.OK.value)
            .where(Program.duplicate_of.is_(None), Program.near_duplicate_of.is_(None))
            .order_by(Program.id)
        )
        if min_diversity is not None:
            query = query.where(Score.diversity >= min_diversity)
        if limit is not None:
            query = query.limit(max(0, int(limit)))
        rows = session.exec(query).all()
        sources = load_program_sources(session, [program.id for program, _, _ in rows])
        roots = import_roots(session)
    identities = {program.id: public_identity(program.source_id, program.url, program.code_hash, roots)
                  for program, _, _ in rows}
    return [
        ExportedProgram(
            key=program_key(program.source, program.id),
            program_id=program.id,
            source=sources[program.id],
            title=program.title,
            author=program.author,
            license=program.license,
            url=identities[program.id].url,
            diversity=score.diversity if score else None,
            origin=program.source,
            source_id=identities[program.id].source_id,
            colorfulness=score.colorfulness if score else None,
            fill=score.fill if score else None,
            verdict=validation.verdict,
        )
        for program, validation, score in rows
    ]
