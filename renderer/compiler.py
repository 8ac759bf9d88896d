"""Compile any program source: a single pass (renderer/program.py) or a simulation (renderer/passes.py).

It sits above both so that neither imports the other to dispatch: passes builds on program, and this module
chooses between them.
"""

from __future__ import annotations

import moderngl

from renderer.dialects import wrap
from renderer.jobs import ProgramSource
from renderer.passes import MultipassProgram, compile_simulation
from renderer.program import CompiledProgram, link, preflight


def compile_program(ctx: moderngl.Context, source: ProgramSource) -> CompiledProgram | MultipassProgram:
    """Wrap, compile and link `source` (a CompiledProgram, or a simulation for a program with Buffer A-D
    passes or a `backbuffer`); raises ProgramError when it cannot be drawn."""
    preflight(source)
    if source.multipass:
        return compile_simulation(ctx, source)
    return CompiledProgram(ctx, source, link(ctx, wrap(source), source.dialect))
