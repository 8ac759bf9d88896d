"""Benchmark of atlas rendering: separate draws against one atlas draw, render only, on real programs.

Takes the first N single-pass Shadertoy programs without inputs from shared/samples/shadertoy-flat that
compile here (`--programs`, default 30), and for each size (`--sizes`, default 32,64,128) draws `--tiles`
frames of every program (frames from renderer.frames.frame_specs) twice in this one process: as separate
draws (CompiledProgram.render_frame, one draw and one float readback each) and as one atlas draw
(renderer.atlas.AtlasProgram.render, one draw, one RGBA8 readback). Compiling is not timed. It prints
images/s for both and their ratio per size, and how many programs gave identical pixels and NaN/Inf
shares both ways. Skips (exit 0) when the shared folder is absent. Set LP_NUM_THREADS=1 for one llvmpipe
thread.

    LP_NUM_THREADS=1 python bench/atlas.py [--programs 30] [--tiles 64] [--sizes 32,64,128]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
FLAT = SHARED / "samples" / "shadertoy-flat"


@dataclass
class SizeResult:
    size: int
    images: int
    separate_s: float
    atlas_s: float
    identical: int  # programs whose every tile equals its separate draw

    @property
    def separate_rate(self) -> float:
        return self.images / self.separate_s

    @property
    def atlas_rate(self) -> float:
        return self.images / self.atlas_s


def single_pass_codes(limit: int) -> list[str]:
    """Image code of the first single-pass programs without inputs or a Common pass (more than asked,
    since some do not compile)."""
    codes: list[str] = []
    for path in sorted(FLAT.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if record.get("image_inputs") or record.get("common_code"):
                    continue
                if any(record.get(f"buffer_{x}_code") for x in "abcd") or record.get("test") != "ok":
                    continue
                codes.append(record["image_code"])
                if len(codes) >= limit:
                    return codes
    return codes


def compile_pairs(ctx, codes: list[str], wanted: int, tiles: int):
    """(separate, atlas) compiled programs for the first `wanted` codes that compile both ways."""
    from renderer.atlas import AtlasError, AtlasProgram
    from renderer.compiler import compile_program
    from renderer.jobs import ProgramSource
    from renderer.program import CompiledProgram, ProgramError

    pairs = []
    for code in codes:
        source = ProgramSource("shadertoy", code)
        try:
            single = compile_program(ctx, source)
        except ProgramError:
            continue
        try:
            atlas = AtlasProgram(ctx, source, tiles=tiles)
        except AtlasError as exc:
            print(f"  not as an atlas: {exc}")
            single.release()
            continue
        if isinstance(single, CompiledProgram):
            pairs.append((single, atlas))
        if len(pairs) >= wanted:
            break
    return pairs


def measure(pairs, size: int, tiles: int) -> SizeResult:
    import numpy as np

    from renderer.frames import frame_specs

    separate_s = atlas_s = 0.0
    identical = 0
    for index, (single, atlas) in enumerate(pairs):
        frames = frame_specs(f"bench-atlas:{index}", tiles, size, size)
        single.render_frame(frames[0], size, size)  # the first draw at a size allocates
        atlas.render(frames, size, size)
        started = time.perf_counter()
        expected = [single.render_frame(frame, size, size) for frame in frames]
        middle = time.perf_counter()
        got = atlas.render(frames, size, size)
        atlas_s += time.perf_counter() - middle
        separate_s += middle - started
        identical += all(np.array_equal(a.pixels, b.pixels) and a.nonfinite_fraction == b.nonfinite_fraction
                         for a, b in zip(expected, got))
    return SizeResult(size, len(pairs) * tiles, separate_s, atlas_s, identical)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=30)
    parser.add_argument("--tiles", type=int, default=64)
    parser.add_argument("--sizes", default="32,64,128")
    args = parser.parse_args()
    if not FLAT.is_dir():
        print(f"skipped: no shared samples under {SHARED}")
        return 0
    from renderer.context import create_context

    ctx = create_context()
    print(f"GL: {ctx.info['GL_RENDERER']}; LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'unset')}")
    pairs = compile_pairs(ctx, single_pass_codes(args.programs * 2), args.programs, args.tiles)
    print(f"{len(pairs)} programs, {args.tiles} frames each, load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| size | separate draws | atlas draws | ratio | identical programs |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        result = measure(pairs, size, args.tiles)
        print(f"| {size} px | {result.separate_rate:.1f} img/s | {result.atlas_rate:.1f} img/s "
              f"| {result.atlas_rate / result.separate_rate:.2f}x | {result.identical}/{len(pairs)} |", flush=True)
    print(f"load after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
