"""Benchmark: what a live-data image costs when its program is a simulation, against a single-pass program.

Programs: a seeded sample of the 2022 Shadertoy API samples (../shared/samples/shadertoy-api/2022-*.jsonl), N with
Buffer A-D passes and N single-pass ones, as harvest maps them (corpus/render_source.py). Each set fills one
stream's pool (so no swap interrupts the timing and the simulations run on, restarting at seeded frames), drawn
through the default killable drawing process at 64 px, MixUp 1. After a warm-up that compiles the pool, it times
`--images` images per set and prints ms per image, and for simulations the steps simulated per image. Programs
that do not compile, need live input or pass the frame budget leave the pool, as in training.

    python bench/live_multipass.py [--programs 16] [--images 300] [--strides 1,4] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))


def sample_sources(count: int, seed: int):
    """(multi-pass, single-pass) ProgramSources, `count` of each, from the 2022 samples."""
    from corpus.render_source import fetched_program_source
    from harvester.sources.base import RecordError
    from harvester.sources.shadertoy_format import program_from_shader

    multi, single = [], []
    for path in sorted((SHARED / "samples" / "shadertoy-api").glob("2022-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                source = fetched_program_source(program_from_shader(json.loads(line)["Shader"]))
            except (RecordError, KeyError, ValueError):
                continue
            if not source.cube_pass:
                (multi if source.buffers else single if not source.multipass else []).append(source)
    rng = random.Random(seed)
    return rng.sample(multi, min(count, len(multi))), rng.sample(single, min(count, len(single)))


def measure(sources, config, images: int) -> tuple[float, float, int]:
    """(ms per image, simulation steps per image, programs left in the pool) after a warm-up."""
    from pretrain.data import ProgramPool, draw_image, gl_backend

    backend = gl_backend(config)
    pool = ProgramPool(sources, config, (config.seed, 0, 0), backend)
    try:
        warmup = 2 * len(sources)
        for number in range(warmup):
            draw_image(pool, number, config)
        steps_before = pool.simulation_steps
        begin = time.perf_counter()
        for number in range(warmup, warmup + images):
            draw_image(pool, number, config)
        elapsed = time.perf_counter() - begin
        steps = pool.simulation_steps - steps_before
        live = len(pool.live_at(warmup + images))
    finally:
        pool.close()
        backend.close()
    return 1000 * elapsed / images, steps / images, live


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=16)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--strides", default="1,4")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (SHARED / "samples" / "shadertoy-api").is_dir():
        print(f"skipped: {SHARED}/samples/shadertoy-api is absent")
        return
    from pretrain.data import LiveDataConfig

    multi, single = sample_sources(args.programs, args.seed)
    print(f"{len(multi)} multi-pass and {len(single)} single-pass programs, {args.size} px, MixUp 1; "
          f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    base = LiveDataConfig(size=args.size, pool_size=args.programs, mixup=1, seed=args.seed)
    ms, _, live = measure(single, base, args.images)
    print(f"single-pass:            {ms:6.2f} ms/image ({live} programs in the pool)", flush=True)
    for stride in (int(s) for s in args.strides.split(",")):
        config = LiveDataConfig(**{**base.__dict__, "simulation_stride": stride})
        ms_multi, steps, live = measure(multi, config, args.images)
        print(f"multi-pass, stride {stride:3d}: {ms_multi:6.2f} ms/image, {steps:5.2f} steps/image "
              f"({live} programs in the pool); {ms_multi / ms:.1f}x single-pass", flush=True)


if __name__ == "__main__":
    main()
