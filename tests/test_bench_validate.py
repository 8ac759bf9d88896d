"""bench/validate.py's multi-pass row: simulated frames are counted from the checkpoints each validation reached."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from validate import catalog_of, simulated_frames


def test_simulated_frames_follow_the_checkpoints_reached(tmp_path):
    from sqlmodel import select

    from corpus.models import Program, Validation
    from corpus.records import FetchedPass, FetchedProgram

    programs = [FetchedProgram(source="shadertoy", source_id=f"sim{n}AA", url="", title=f"p{n}", author="",
                               passes=[FetchedPass("image", f"void mainImage(out vec4 c, in vec2 p) {{ c = vec4({n}.0); }}")],
                               dialect="shadertoy") for n in range(3)]
    catalog = catalog_of(tmp_path, programs)
    try:
        with catalog.session() as session:
            # All four checkpoints (frames 0..59), the first two (0..9), and a verdict drawn nothing for.
            ids = session.exec(select(Program.id).order_by(Program.id)).all()
            for program_id, render_ms in zip(ids, ([10.0, 90.0, 200.0, 300.0], [10.0, 90.0], [])):
                session.add(Validation(program_id=program_id, verdict="ok" if render_ms else "compile_error",
                                       render_ms=render_ms))
            session.commit()

        assert simulated_frames(catalog) == (2, 60 + 10, 700.0)
    finally:
        catalog.close()
