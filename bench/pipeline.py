"""Benchmark of the live pretraining data: what the renderers supply against what they could, and against what
the trainer consumes.

Supply table (the default), at each --sizes, on the same programs:
- cost of each program: seconds a frame, single draws of the compiled program in this process (LP_NUM_THREADS=1,
  as a render worker draws) at random times and mouse positions, as a stream draws them; no compile, no pool,
  no isolation;
- supply with and without atlas draws and compile-ahead: images/s that `LiveRenders` yields with W workers after
  the first batch (the pool filled), each on a cold Mesa shader cache of its own, so compiles cost what they cost
  in a run over new programs;
- supply / limit, where a cell's limit is the render-only rate of the very frames it yielded (the costs above,
  weighted by how many frames of each program the cell drew). A short cell visits only the start of the program
  sequence, and a stream drops programs slower than its frame budget, so one limit over all programs would compare
  different mixes; this ratio is the share of the stream's time that went to drawing, and an atlas can pass 1.
  "all programs" is the render-only rate of equal frames of every program, for reference.

With --trainer, also (at the first size):
1. supply: images/s that `LiveRenders` yields with W spawned render workers (after the pool's first compile),
   drawing in killable child processes (the default) and, for the cost of that isolation, in the workers
   themselves;
2. consume: images/s the trainer takes when the data is free (one pre-rendered batch reused), ResNet-18 at 64 px;
3. combined: images/s of real `run_pretraining` steps with the same W workers (on a 2-core machine renderers
   and trainer compete for the same cores, so this is less than min(supply, consume)).
Programs: the `ok` programs of a validated catalog (`--db`), or of a temporary catalog built from
../shared/samples/shadertoy-flat with `harvest crawl --source local` + `harvest validate` (slow: minutes).

    python bench/pipeline.py [--db CATALOG] [--programs 64] [--sizes 32,64,128] [--workers 1] [--mixup 1]
                             [--seconds 15] [--trainer [--method supervised]]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def sample_programs(db: Path | None, workdir: Path, limit: int):
    """The validated single-pass programs of `db`, or of a fresh catalog of the shared flat samples (the first
    `limit` validated)."""
    from corpus.db import open_catalog
    from corpus.export_format import programs_from_catalog

    if db is None:
        db = workdir / "harvest.db"
        flat = SHARED / "samples" / "shadertoy-flat"
        validate = ["validate", "--limit", str(2 * limit), "--no-score"]
        for command in (["crawl", "--source", "local", "--path", str(flat)], validate):
            print(f"$ harvest {' '.join(command)} --db {db}", flush=True)
            subprocess.run([sys.executable, "-m", "harvester.cli", *command, "--db", str(db)], check=True,
                           cwd=workdir, stdout=subprocess.DEVNULL)
    catalog = open_catalog(db)
    try:
        programs = programs_from_catalog(catalog)
    finally:
        catalog.close()
    return [p for p in programs if not p.source.multipass][:limit]


def measure_supply(sources, config, workers: int, seconds: float, isolated: bool = True):
    """(images/s after the first batch, seconds to the first batch, frames drawn of each program meanwhile)."""
    import numpy as np

    from pretrain.data import InProcessGLBackend, LiveRenders, gl_backend, live_loader

    factory = gl_backend if isolated else InProcessGLBackend
    started = time.perf_counter()
    batches = iter(live_loader(LiveRenders(sources, config, backend_factory=factory), workers))
    next(batches)
    first = time.perf_counter() - started
    count, begin = 0, time.perf_counter()
    drawn = np.zeros(len(sources), dtype=np.int64)
    while time.perf_counter() - begin < seconds:
        batch = next(batches)
        drawn += np.bincount(batch.label_index.numpy().ravel(), minlength=len(sources))
        count += config.batch_size
    rate = count / (time.perf_counter() - begin)
    del batches
    return rate, first, drawn


def measure_consume(config, batch, seconds: float, classes: int) -> float:
    import torch

    from pretrain.train import build_objective, make_views

    torch.manual_seed(0)
    objective = build_objective(config, classes)
    optimizer = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    device = torch.device("cpu")
    step, begin = 0, None
    while begin is None or time.perf_counter() - begin < seconds:
        if step == 1:
            begin = time.perf_counter()  # the first step allocates
        views = make_views(batch, config, objective.num_views, 0, step, device)
        loss, _ = objective(views, batch.label_index, batch.label_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
    return (step - 1) * config.batch_size / (time.perf_counter() - begin)


def measure_combined(config, programs, seconds: float, workdir: Path) -> float:
    import torch

    from pretrain.distributed import DistEnv
    from pretrain.train import run_pretraining

    env = DistEnv(0, 1, 0, torch.device("cpu"))
    rates: list[tuple[float, float]] = []
    started = time.perf_counter()

    class Budget(Exception):
        pass

    def on_step(metrics) -> None:
        rates.append((metrics.elapsed_s, metrics.images_per_s))
        if time.perf_counter() - started > seconds:
            raise Budget

    try:
        run_pretraining(config, workdir / "combined-run", programs, env, on_step=on_step)
    except Budget:
        pass
    steady = [rate for elapsed, rate in rates[1:]] or [rate for _, rate in rates]
    return sum(steady) / max(1, len(steady))


def frame_costs(sources, size: int, frames_per_program: int = 8):
    """Seconds a frame of each program (single draws at the stream's kind of random times and mouse positions, the
    program compiled and drawn once beforehand); NaN where it fails."""
    import numpy as np

    from pretrain.simulations import seeded_mouse
    from renderer.compiler import compile_program
    from renderer.context import create_context
    from renderer.jobs import FrameSpec
    from renderer.program import ProgramError

    ctx = create_context()
    rng = np.random.default_rng(0)
    costs = np.full(len(sources), np.nan)
    for index, source in enumerate(sources):
        try:
            program = compile_program(ctx, source)
        except ProgramError:
            continue
        program.render(FrameSpec(time=1.0), size, size)  # llvmpipe generates its code at the first draw
        begin = time.perf_counter()
        for _ in range(frames_per_program):
            mouse = seeded_mouse(rng, size)
            program.render(FrameSpec(time=float(rng.uniform(0.1, 10.0)), mouse=mouse), size, size)
        costs[index] = (time.perf_counter() - begin) / frames_per_program
        program.release()
    ctx.release()
    return costs


def same_frames_limit(drawn, costs) -> float:
    """Images/s of drawing exactly `drawn` frames of each program and nothing else."""
    import numpy as np

    known = ~np.isnan(costs)
    return float(drawn[known].sum() / max(1e-12, float((drawn[known] * costs[known]).sum())))


# (name, atlas, compile-ahead). Each (atlas, compile-ahead) pair has a Mesa cache of its own, so the last cell
# comes after the atlas cell on that cell's cache: the same seed brings the same programs in the same order, and
# its compiles are the cache hits of programs compiled on this machine before (a later epoch, or a rerun),
# against the cold compiles of a corpus's first visit in the other cells.
VARIANTS = (("single draws", False, False), ("atlas", True, False), ("compile-ahead", False, True),
            ("atlas + compile-ahead", True, True), ("atlas, warm cache", True, False))


def supply_table(sources, args, workdir: Path) -> None:
    from dataclasses import replace

    import numpy as np

    from pretrain.data import LiveDataConfig

    os.environ["LP_NUM_THREADS"] = "1"
    print(f"| size | all programs (img/s) | {' | '.join(name for name, _, _ in VARIANTS)} |")
    print(f"|---:|---:|{'---:|' * len(VARIANTS)}")
    for size in args.sizes:
        costs = frame_costs(sources, size)
        everything = same_frames_limit(np.where(np.isnan(costs), 0, 1), costs)
        cells = []
        for name, atlas, ahead in VARIANTS:
            config = LiveDataConfig(size=size, batch_size=args.batch_size, pool_size=args.pool_size,
                                    swap_every=args.swap_every, mixup=args.mixup, seed=0)
            config = replace(config, atlas=atlas, compile_ahead=ahead)
            os.environ["MESA_SHADER_CACHE_DIR"] = str(workdir / f"cache-{size}-{atlas}-{ahead}")
            supply, _, drawn = measure_supply(sources, config, args.workers, args.seconds)
            limit = same_frames_limit(drawn, costs) / args.mixup
            cells.append(f"{supply:.1f} ({supply / limit:.2f} of {limit:.0f}, {int((drawn > 0).sum())} programs)")
        print(f"| {size} | {everything / args.mixup:.1f} | {' | '.join(cells)} |  load {load_avg()}", flush=True)


def trainer_rows(programs, sources, args, workdir: Path) -> None:
    from pretrain.data import LiveDataConfig, LiveRenders, batch_as_tensors
    from pretrain.train import PretrainConfig

    size = args.sizes[0]
    data_config = LiveDataConfig(size=size, batch_size=args.batch_size, pool_size=args.pool_size,
                                 swap_every=args.swap_every, mixup=args.mixup, seed=0)
    train_config = PretrainConfig(
        method=args.method, width=args.width, size=size, batch_size=args.batch_size, steps=10_000,
        workers=args.workers, mixup=args.mixup, pool_size=args.pool_size, swap_every=args.swap_every,
        checkpoint_every=10_000, log_every=2,
    )
    supply, first, _ = measure_supply(sources, data_config, args.workers, args.seconds)
    in_process, _, _ = measure_supply(sources, data_config, args.workers, args.seconds, isolated=False)
    print(f"supply:   {supply:7.1f} images/s isolated, {in_process:7.1f} drawing inside the workers "
          f"(isolated/in-process {supply / in_process:.2f}); load {load_avg()}", flush=True)
    batch = batch_as_tensors(next(iter(LiveRenders(sources, data_config))), pin_memory=False)
    consume = measure_consume(train_config, batch, args.seconds, len(programs))
    print(f"consume:  {consume:7.1f} images/s ({args.method}, resnet18 width {args.width}, {size} px, "
          f"batch {args.batch_size}); load {load_avg()}", flush=True)
    combined = measure_combined(train_config, programs, args.seconds + 20, workdir)
    print(f"combined: {combined:7.1f} images/s (run_pretraining, {args.workers} worker(s)); load {load_avg()}")
    print(f"ratio supply/consume: {supply / consume:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--programs", type=int, default=64, help="validated single-pass programs to use")
    parser.add_argument("--sizes", type=lambda text: [int(v) for v in text.split(",")], default=[32, 64, 128])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--method", default="supervised", choices=("supervised", "moco", "simclr", "supcon"))
    parser.add_argument("--mixup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pool-size", type=int, default=32)
    parser.add_argument("--swap-every", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--trainer", action="store_true", help="also the trainer's consumption and a combined run")
    args = parser.parse_args()
    if args.db is None and not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent and no --db was given")
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skipped: torch is not installed (pip install 'harvest[train]')")
        return
    with tempfile.TemporaryDirectory(prefix="harvest-pipeline-") as tmp:
        workdir = Path(tmp)
        programs = sample_programs(args.db, workdir, args.programs)
        sources = [p.source for p in programs]
        print(f"{len(programs)} programs, {args.workers} worker(s), pool {args.pool_size}, swap every "
              f"{args.swap_every}, MixUp {args.mixup}, batch {args.batch_size}, {args.seconds:g} s a cell; "
              f"{os.cpu_count()} cores, load before: {load_avg()}; cells: img/s (supply / limit)", flush=True)
        supply_table(sources, args, workdir)
        if args.trainer:
            trainer_rows(programs, sources, args, workdir)


if __name__ == "__main__":
    main()
