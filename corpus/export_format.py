"""The exported dataset's format: what `harvest export` writes and what pretraining reads back.

An export folder holds
- `manifest.jsonl`: one `SampleMetadata` JSON object a line (plus `shard`, or `code` for `--format jsonl`),
- `shards/shard-NNNNNN.tar` (webdataset format): per program `KEY.frag`, `KEY.json` and optional `KEY.fN.png`,
- `ATTRIBUTION.md` and `export.json`.

`KEY.frag` is the program's code joined as one fragment (for shadertoy: common, a newline, then image). `KEY.json`
and the manifest line also carry `passes`, every pass with its code, channel inputs and output (format 2), from which
`source_from_passes` rebuilds the ProgramSource the catalog gives, Buffer A-D included; an entry without `passes`
(format 1) is rebuilt from `KEY.frag` alone by `source_from_frag`, as a single-pass program.
Keys are built from the source name and the catalog id only, never from titles, and contain no dots (webdataset
splits a member name at its first dot).
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlmodel import select

from corpus.errors import CorpusError
from corpus.models import Program, Score, Validation
from corpus.public_identity import import_roots, public_identity
from corpus.render_source import load_program_sources
from renderer.jobs import (
    BUFFER_KINDS,
    PASS_TITLES,
    BufferPass,
    ChannelBinding,
    ProgramSource,
    Verdict,
)

FORMAT_VERSION = 2  # 2: `passes`
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


_COMMON = "common"
_KIND_BY_NAME = {**{title: kind for kind, title in PASS_TITLES.items()}, "Common": _COMMON}


@dataclass(frozen=True)
class ExportedPass:
    """One pass of an exported program: `name` is Image, Common or Buffer A-D; `inputs` maps a channel (0-3) to
    what it reads, with its sampler; `output` is what the pass draws into (image, buffer_a..d; None for Common)."""

    name: str
    code: str
    inputs: dict[int, ChannelBinding] = field(default_factory=dict)
    output: str | None = None


_PASSES = TypeAdapter(list[ExportedPass])


def _exported_pass(kind: str, code: str, inputs) -> ExportedPass:
    bound = {channel: binding for channel, binding in enumerate(inputs) if binding is not None}
    return ExportedPass(PASS_TITLES.get(kind, "Common"), code, bound, None if kind == _COMMON else kind)


def export_passes(source: ProgramSource) -> list[ExportedPass]:
    """Every pass of `source` in drawing order: Common (prepended to each of the others), Buffer A-D, Image."""
    passes = [_exported_pass(_COMMON, source.common, ())] if source.common else []
    passes += [_exported_pass(p.kind, p.code, p.inputs) for p in source.buffers]
    return passes + [_exported_pass("image", source.image, source.image_inputs)]


def _bindings(exported: ExportedPass):
    if any(channel not in range(4) for channel in exported.inputs):
        raise CorpusError(f"{exported.name} has an input on a channel other than 0-3")
    slots = [exported.inputs.get(channel) for channel in range(4)]
    return (slots[0], slots[1], slots[2], slots[3])


def source_from_passes(passes: list[ExportedPass], dialect: str, buffer_passes: int = 0, mode: str = "") -> ProgramSource:
    """Inverse of `export_passes`: the ProgramSource the catalog gives for the same program."""
    by_kind: dict[str, ExportedPass] = {}
    for exported in passes:
        kind = _KIND_BY_NAME.get(exported.name)
        if kind is None or exported.output != (None if kind == _COMMON else kind) or kind in by_kind:
            raise CorpusError(f"pass {exported.name[:40]!r} (output {str(exported.output)[:40]!r}) is unknown, "
                              "mislabelled or repeated")
        by_kind[kind] = exported
    if "image" not in by_kind:
        raise CorpusError("the passes have no Image pass")
    inputs = _bindings(by_kind["image"])
    return ProgramSource(
        dialect=dialect,
        image=by_kind["image"].code,
        common=by_kind[_COMMON].code if _COMMON in by_kind else "",
        channels=(tuple(b.kind if b else None for b in inputs)),  # type: ignore[arg-type]
        buffer_passes=int(buffer_passes),
        mode=mode,
        inputs=inputs,
        buffers=tuple(BufferPass(kind, by_kind[kind].code, _bindings(by_kind[kind])) for kind in BUFFER_KINDS
                      if kind in by_kind),
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
    passes: list[ExportedPass] = field(default_factory=list)  # empty in format 1 exports: KEY.frag only
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {**data, "passes": _PASSES.dump_python(self.passes, mode="json")}

    @classmethod
    def from_json(cls, data: dict) -> SampleMetadata:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        try:
            known["passes"] = _PASSES.validate_python(known.get("passes") or [])
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise CorpusError(f"entry {data.get('key')!r} has malformed passes ({where}: {problem['msg']})") from None
        return cls(**known)

    def program_source(self, frag: str) -> ProgramSource:
        """From `passes` when the entry has them, else from the joined code of format 1."""
        if not self.passes:
            return source_from_frag(frag, self.dialect, self.channels, self.buffer_passes, self.mode)
        try:
            return source_from_passes(self.passes, self.dialect, self.buffer_passes, self.mode)
        except CorpusError as exc:
            raise CorpusError(f"entry {self.key!r}: {exc}") from None

    def exported_program(self, frag: str) -> ExportedProgram:
        return ExportedProgram(
            key=self.key,
            program_id=int(self.id),
            source=self.program_source(frag),
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
