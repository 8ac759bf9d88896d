"""From catalog rows to what the renderer draws: the one place that maps passes to a ProgramSource."""

from __future__ import annotations

from sqlmodel import Session, select

from corpus.models import Program, ProgramPass
from renderer.jobs import ProgramSource


def _channels(image: ProgramPass | None) -> tuple[str | None, str | None, str | None, str | None]:
    slots: list[str | None] = [None, None, None, None]
    for binding in (image.inputs if image else []):
        channel = binding.get("channel")
        if isinstance(channel, int) and 0 <= channel < 4:
            slots[channel] = str(binding.get("ctype") or "texture")
    return (slots[0], slots[1], slots[2], slots[3])


def program_source(program: Program, passes: list[ProgramPass]) -> ProgramSource:
    by_kind = {p.kind: p for p in passes}
    image = by_kind.get("image")
    common = by_kind.get("common")
    return ProgramSource(
        dialect=program.dialect,
        image=image.code if image else "",
        common=common.code if common else "",
        channels=_channels(image),
        buffer_passes=program.buffer_passes,
        # A dialect's variant (TwiGL's mode) is stored as the image pass's name.
        mode=image.name if image and program.dialect == "twigl" else "",
    )


def load_program_sources(session: Session, program_ids: list[int]) -> dict[int, ProgramSource]:
    """ProgramSource for each id, loading passes in one query."""
    if not program_ids:
        return {}
    programs = {p.id: p for p in session.exec(select(Program).where(Program.id.in_(program_ids))).all()}
    passes: dict[int, list[ProgramPass]] = {pid: [] for pid in programs}
    for row in session.exec(select(ProgramPass).where(ProgramPass.program_id.in_(list(programs)))).all():
        passes[row.program_id].append(row)
    return {pid: program_source(programs[pid], passes[pid]) for pid in programs}
