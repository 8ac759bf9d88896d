"""Counts over the catalog for `harvest stats`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from corpus.models import Program, Validation

PENDING = "pending"


@dataclass
class CatalogStats:
    programs: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    by_dialect: dict[str, int] = field(default_factory=dict)
    by_license: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _grouped(session: Session, column) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).group_by(column).order_by(func.count().desc())).all()
    return {str(key): int(count) for key, count in rows}


def catalog_stats(session: Session) -> CatalogStats:
    stats = CatalogStats()
    stats.programs = session.exec(select(func.count()).select_from(Program)).one()
    stats.exact_duplicates = session.exec(select(func.count()).where(Program.duplicate_of.is_not(None))).one()
    stats.near_duplicates = session.exec(select(func.count()).where(Program.near_duplicate_of.is_not(None))).one()
    stats.by_source = _grouped(session, Program.source)
    stats.by_dialect = _grouped(session, Program.dialect)
    stats.by_license = _grouped(session, Program.license)
    verdict = func.coalesce(Validation.verdict, PENDING)
    rows = session.exec(
        select(verdict, func.count())
        .select_from(Program)
        .join(Validation, Validation.program_id == Program.id, isouter=True)
        .group_by(verdict)
        .order_by(func.count().desc())
    ).all()
    stats.by_status = {str(key): int(count) for key, count in rows}
    return stats
