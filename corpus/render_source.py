"""From catalog rows to what the renderer draws: the one place that maps passes to a ProgramSource."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from corpus.models import Program, ProgramPass
from corpus.records import FetchedProgram
from renderer.jobs import BUFFER_KINDS, Bindings, BufferPass, ChannelBinding, ChannelSampler, ProgramSource

# A buffer input names the pass it reads (buffer_a..d, as the Shadertoy sources store it) or, in records
# stored before that, the pass's preview image (/media/previz/buffer00.png is Buffer A).
_BUFFER_PREVIEW = re.compile(r"buffer0?([0-3])\.png$")


def _buffer_read(src: str) -> str:
    if src in BUFFER_KINDS:
        return src
    match = _BUFFER_PREVIEW.search(src)
    return BUFFER_KINDS[int(match.group(1))] if match else ""


def _binding(raw: dict) -> ChannelBinding:
    kind = str(raw.get("ctype") or "texture")
    vflip = raw.get("vflip")
    sampler = ChannelSampler(filter=str(raw.get("filter") or ""), wrap=str(raw.get("wrap") or ""),
                             vflip=vflip if isinstance(vflip, bool) else None)
    src = str(raw.get("src") or "")
    if kind == "buffer":
        return ChannelBinding(kind, _buffer_read(src), sampler)
    return ChannelBinding(kind, sampler=sampler, media=src if kind in ("texture", "cubemap", "volume") else "")


def _bindings(stored: ProgramPass | None) -> Bindings:
    slots: list[ChannelBinding | None] = [None, None, None, None]
    for raw in (stored.inputs if stored else []):
        channel = raw.get("channel") if isinstance(raw, dict) else None
        if isinstance(channel, int) and 0 <= channel < 4:
            slots[channel] = _binding(raw)
    return (slots[0], slots[1], slots[2], slots[3])


def program_source(program: Program, passes: list[ProgramPass]) -> ProgramSource:
    by_kind = {p.kind: p for p in passes}
    image = by_kind.get("image")
    common = by_kind.get("common")
    inputs = _bindings(image)
    return ProgramSource(
        dialect=program.dialect,
        image=image.code if image else "",
        common=common.code if common else "",
        channels=(tuple(b.kind if b else None for b in inputs)),  # type: ignore[arg-type]
        buffer_passes=program.buffer_passes,
        # A dialect's variant (TwiGL's mode) is stored as the image pass's name.
        mode=image.name if image and program.dialect == "twigl" else "",
        inputs=inputs,
        buffers=tuple(BufferPass(kind, by_kind[kind].code, _bindings(by_kind[kind])) for kind in BUFFER_KINDS
                      if kind in by_kind),
        cube_pass="cubemap" in by_kind,
    )


def fetched_program_source(fetched: FetchedProgram) -> ProgramSource:
    """What the renderer draws for a program not (yet) in the catalog, mapped as if it had been stored."""
    passes = [ProgramPass(program_id=0, kind=p.kind, name=p.name, code=p.code, inputs=[i.stored() for i in p.inputs])
              for p in fetched.passes]
    buffers = sum(1 for p in fetched.passes if p.kind in BUFFER_KINDS and p.code.strip())
    return program_source(Program(source=fetched.source, source_id=fetched.source_id,
                                  dialect=fetched.dialect or "shadertoy", buffer_passes=buffers), passes)


def load_program_sources(session: Session, program_ids: list[int]) -> dict[int, ProgramSource]:
    """ProgramSource for each id, loading passes in one query."""
    if not program_ids:
        return {}
    programs = {p.id: p for p in session.exec(select(Program).where(Program.id.in_(program_ids))).all()}
    passes: dict[int, list[ProgramPass]] = {pid: [] for pid in programs}
    for row in session.exec(select(ProgramPass).where(ProgramPass.program_id.in_(list(programs)))).all():
        passes[row.program_id].append(row)
    return {pid: program_source(programs[pid], passes[pid]) for pid in programs}
