"""Which programs a run learns from: an export folder, or the catalog's `ok` programs when there is none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus.export_format import ExportedProgram, programs_from_catalog, read_export
from pretrain.errors import PretrainError

DEFAULT_EXPORT = Path("export")


def load_programs(
    data: Path | None, db: Path | None, min_diversity: float | None = None
) -> tuple[list[ExportedProgram], str]:
    """The programs and a description of where they came from. `data` wins; without it, ./export when present,
    else the catalog at `db` (or the default catalog)."""
    if data is None and DEFAULT_EXPORT.is_dir():
        data = DEFAULT_EXPORT
    if data is not None:
        programs = read_export(Path(data))
        origin = f"export {data}"
    else:
        from corpus.db import default_db_path, open_catalog

        path = Path(db) if db is not None else default_db_path()
        if not path.is_file():
            raise PretrainError(f"no export at ./{DEFAULT_EXPORT} and no catalog at {path}: pass --data or --db")
        catalog = open_catalog(path)
        try:
            programs = programs_from_catalog(catalog, min_diversity=min_diversity)
        finally:
            catalog.close()
        origin = f"catalog {path}"
    # Simulations are drawn along their runs (pretrain/simulations.py). An export of format 1 has only the joined
    # code of a Buffer A-D program, not its buffers: such a program cannot be drawn from it.
    drawable = [p for p in programs if p.source.image.strip() and p.source.buffer_passes <= len(p.source.buffers)]
    if not drawable:
        raise PretrainError(f"{origin} has no programs to render (validate and export some first)")
    return drawable, origin


def choose_programs(programs: list[ExportedProgram], count: int | None, seed: int) -> list[ExportedProgram]:
    """A seeded random subset of `count` programs (all when None), kept in their original order."""
    if count is None or count >= len(programs):
        return list(programs)
    if count < 1:
        raise PretrainError("--num-programs must be at least 1")
    picked = np.random.default_rng([seed, 7]).choice(len(programs), size=count, replace=False)
    return [programs[i] for i in sorted(picked.tolist())]
