"""Shadertoy's record shapes -> FetchedProgram: the API's `{"Shader": ...}`, the site's export JSON and
the flat JSONL records of public dumps. Shared by the API source and the local importer."""

from __future__ import annotations

import re

from corpus.licenses import UNKNOWN, detect_license, normalize_license_id
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from harvester.sources.base import RecordError, unix_seconds_to_utc

CATALOG_SOURCE = "shadertoy"
DEFAULT_BASE_URL = "https://www.shadertoy.com"
SITE_DEFAULT_LICENSE = "CC-BY-NC-SA-3.0"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_BUFFER_SRC = re.compile(r"buffer0?([0-3])\.png$")
_PASS_NAMES = {
    "image": "Image",
    "common": "Common",
    "buffer_a": "Buffer A",
    "buffer_b": "Buffer B",
    "buffer_c": "Buffer C",
    "buffer_d": "Buffer D",
    "cubemap": "Cube A",
    "sound": "Sound",
}
BUFFER_KINDS = ("buffer_a", "buffer_b", "buffer_c", "buffer_d")
# Shadertoy's output ids of Buffer A–D: what a pass reading a buffer binds (its src is buffer00..03.png).
_BUFFER_OUTPUT_IDS = dict(zip((257, 258, 259, 260), BUFFER_KINDS))
_UNSLOTTED_BUFFER = "buffer"
_FILTERS = ("nearest", "linear", "mipmap")
_WRAPS = ("clamp", "repeat")


def view_url(shader_id: str, base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/view/{shader_id}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _int(value: object) -> int | None:
    """A whole number as the record wrote it; whether it is a plausible count is ingest's call."""
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e999 parses as infinity
        return None


def _tags(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value if isinstance(t, (str, int))][:64]
    return []


def _channel_input(raw: object) -> ChannelInput | None:
    """An input in any Shadertoy shape: API (`ctype`, `src`) or export (`type`, `filepath`)."""
    if not isinstance(raw, dict):
        return None
    channel = _int(raw.get("channel"))
    ctype = _text(raw.get("ctype") or raw.get("type")).strip().lower()
    if channel is None or not 0 <= channel <= 3 or not ctype:
        return None
    src = _text(raw.get("src") or raw.get("filepath"))
    if ctype == "buffer":
        # Buffers are bound by their preview image (/media/previz/buffer01.png); name the pass instead.
        match = _BUFFER_SRC.search(src)
        if match:
            src = BUFFER_KINDS[int(match.group(1))]
    sampler = raw.get("sampler") if isinstance(raw.get("sampler"), dict) else {}
    filter_ = _text(sampler.get("filter")).strip().lower()
    wrap = _text(sampler.get("wrap")).strip().lower()
    vflip = _text(sampler.get("vflip")).strip().lower()
    return ChannelInput(
        channel=channel, ctype=ctype, src=src[:500],
        filter=filter_ if filter_ in _FILTERS else "",
        wrap=wrap if wrap in _WRAPS else "",
        vflip={"true": True, "false": False}.get(vflip),
    )


def _inputs(raw: object) -> list[ChannelInput]:
    if not isinstance(raw, list):
        return []
    return [i for i in (_channel_input(r) for r in raw) if i is not None]


def _declared_kind(renderpass: dict) -> str | None:
    """The kind a render pass declares; a buffer by its output id, else its name, else _UNSLOTTED_BUFFER."""
    kind = _text(renderpass.get("type")).strip().lower()
    if kind in ("image", "common", "sound", "cubemap"):
        return kind
    if kind != "buffer":
        return None
    outputs = renderpass.get("outputs")
    for output in outputs if isinstance(outputs, list) else []:
        slot = _BUFFER_OUTPUT_IDS.get(_int(output.get("id")) if isinstance(output, dict) else None)
        if slot:
            return slot
    match = re.fullmatch(r"buf(?:fer)?\s*([a-d])", _text(renderpass.get("name")).strip().lower())
    return f"buffer_{match.group(1)}" if match else _UNSLOTTED_BUFFER


def _pass_kinds(renderpasses: list[dict]) -> list[str | None]:
    """One kind per render pass, None for one to skip (unknown type, or a kind already taken).

    A buffer pass that declares no slot (renamed, no output id) takes the first free buffer slot, so
    it still counts as a buffer instead of vanishing and leaving the program judged single-pass.
    """
    declared = [_declared_kind(renderpass) for renderpass in renderpasses]
    kinds: list[str | None] = []
    for kind in declared:
        kinds.append(kind if kind != _UNSLOTTED_BUFFER and kind not in kinds else None)
    free = iter([slot for slot in BUFFER_KINDS if slot not in kinds])
    return [next(free, None) if want == _UNSLOTTED_BUFFER else kind for want, kind in zip(declared, kinds)]


def _license(passes: list[FetchedPass], declared: str | None, default: str) -> tuple[str, str]:
    if declared and normalize_license_id(declared) != UNKNOWN:
        return normalize_license_id(declared), "declared"
    detected = detect_license("\n".join(p.code for p in passes))
    if detected:
        return detected, "detected"
    return default, "source-default"


def program_from_shader(shader: object, *, base_url: str = DEFAULT_BASE_URL, raw: object = None) -> FetchedProgram:
    """A Shadertoy shader object (`{"ver", "info", "renderpass"}`, API or export) as a program."""
    if not isinstance(shader, dict):
        raise RecordError("shader record is not a JSON object")
    info = shader.get("info")
    renderpasses = shader.get("renderpass")
    if not isinstance(info, dict) or not isinstance(renderpasses, list):
        raise RecordError("shader record lacks `info` or `renderpass`")
    shader_id = _text(info.get("id")).strip()
    if not _ID.match(shader_id):
        raise RecordError(f"shader record has no valid id ({shader_id[:40]!r})")
    passes: list[FetchedPass] = []
    renderpasses = [renderpass for renderpass in renderpasses if isinstance(renderpass, dict)]
    for renderpass, kind in zip(renderpasses, _pass_kinds(renderpasses)):
        if kind is None:
            continue
        passes.append(
            FetchedPass(
                kind=kind,
                code=_text(renderpass.get("code")),
                inputs=_inputs(renderpass.get("inputs")),
                name=_text(renderpass.get("name")) or _PASS_NAMES[kind],
            )
        )
    if not any(p.kind == "image" and p.code.strip() for p in passes):
        raise RecordError(f"shader {shader_id} has no image pass code")
    license_id, origin = _license(passes, None, SITE_DEFAULT_LICENSE)
    return FetchedProgram(
        source=CATALOG_SOURCE,
        source_id=shader_id,
        url=view_url(shader_id, base_url),
        title=_text(info.get("name"))[:500],
        author=_text(info.get("username") or info.get("author"))[:200],
        description=_text(info.get("description"))[:20000],
        tags=_tags(info.get("tags")),
        published_at=unix_seconds_to_utc(info.get("date")),
        likes=_int(info.get("likes")),
        views=_int(info.get("viewed")),
        license=license_id,
        license_origin=origin,
        passes=passes,
        # The website wraps every image pass itself, whatever other hosts the code's #ifdefs also serve.
        dialect="shadertoy",
        raw=raw if raw is not None else shader,
    )


_FLAT_PASSES = (
    ("image", "image"),
    ("common", "common"),
    ("buffer_a", "buffer_a"),
    ("buffer_b", "buffer_b"),
    ("buffer_c", "buffer_c"),
    ("buffer_d", "buffer_d"),
    ("cubemap", "cube_a"),
    ("sound", "sound"),
)


def program_from_flat(record: object) -> FetchedProgram:
    """A flat dump record (`id`, `name`, `image_code`, `buffer_a_code`, ..., `license`) as a program."""
    if not isinstance(record, dict):
        raise RecordError("flat record is not a JSON object")
    shader_id = _text(record.get("id")).strip()
    if not _ID.match(shader_id):
        raise RecordError(f"flat record has no valid id ({shader_id[:40]!r})")
    passes: list[FetchedPass] = []
    for kind, prefix in _FLAT_PASSES:
        code = _text(record.get(f"{prefix}_code"))
        if kind == "image" or code.strip():
            passes.append(FetchedPass(kind, code, _inputs(record.get(f"{prefix}_inputs")), _PASS_NAMES[kind]))
    if not passes[0].code.strip():
        raise RecordError(f"flat record {shader_id} has no image_code")
    declared = record.get("license")
    license_id, origin = _license(passes, declared if isinstance(declared, str) else None, SITE_DEFAULT_LICENSE)
    return FetchedProgram(
        source=CATALOG_SOURCE,
        source_id=shader_id,
        url=view_url(shader_id),
        title=_text(record.get("name"))[:500],
        author=_text(record.get("author") or record.get("username"))[:200],
        description=_text(record.get("description"))[:20000],
        tags=_tags(record.get("tags")),
        published_at=unix_seconds_to_utc(record.get("date")),
        likes=_int(record.get("likes")),
        views=_int(record.get("viewed")),
        license=license_id,
        license_origin=origin,
        passes=passes,
        dialect="shadertoy",
        raw=record,
    )
