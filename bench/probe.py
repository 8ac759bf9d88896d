"""Benchmark: does pretraining on live renders beat random init on a linear probe of real images?

For each method (supervised, moco) and seed: pretrain for a fixed step budget on the shared samples' validated
programs, then probe on ../shared/eval/cifar10_500_100.npz (5,000 train / 1,000 test CIFAR-10 images, upsampled
to --size) with frozen features from every stage, with and without re-estimated batch-norm statistics. Random init
of the same architecture is probed for each seed as the baseline. Prints one table (top-1 on the test split: the
last stage, and the stage picked on held-out train images) and writes every number as JSON.

The issue asks for 60 min per model; on the shared 2-core machine that is far more than a session has, so the budget
is a parameter (steps, with the wall time printed beside it).

    python bench/probe.py [--db CATALOG] [--steps 200] [--seeds 0] [--methods supervised,moco] [--width 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pipeline import SHARED, load_avg, sample_programs  # noqa: E402


def probe_all(backbone, data, size, label: str, recalibrate: tuple[bool, ...]) -> list[dict]:
    import copy

    import torch

    from pretrain.probe import run_probe

    rows = []
    for bn in recalibrate:
        started = time.perf_counter()
        report = run_probe(copy.deepcopy(backbone), data, size, torch.device("cpu"), checkpoint=label,
                           data_name="cifar10_500_100", recalibrate_bn=bn)
        row = report.to_json()
        row["probe_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        stages = " ".join(f"s{s.stage}={s.test_accuracy:.3f}" for s in report.stages)
        print(f"  probe {label} bn_recalibrated={bn}: {stages} (best s{report.best.stage}); "
              f"{row['probe_s']} s, load {load_avg()}", flush=True)
    return rows


def calibrated_steps(config, programs, env, workdir: Path, minutes: float) -> int:
    """Steps that fit `minutes`, from the steady rate of a 20-step run (its first 10 steps include start-up)."""
    from pretrain.train import run_pretraining

    stamps: list[float] = []
    run_pretraining(replace(config, steps=20, log_every=10), workdir / f"calibrate-{config.method}-{config.seed}",
                    programs, env, on_step=lambda m: stamps.append(m.elapsed_s))
    per_step = (stamps[-1] - stamps[0]) / 10
    return max(20, int(minutes * 60 / per_step))


def summarise(results: list[dict]) -> None:
    def fmt(values: list[float]) -> str:
        if not values:
            return "-"
        mean = statistics.mean(values) * 100
        spread = f" ±{statistics.stdev(values) * 100:.1f}" if len(values) > 1 else ""
        return f"{mean:.1f}{spread} (n={len(values)})"

    print("\n| model | BN stats | last stage top-1 % | best stage top-1 % (stage) |")
    print("|---|---|---|---|")
    keys = sorted({(r["model"], r["bn_recalibrated"]) for r in results})
    for model, bn in keys:
        rows = [r for r in results if r["model"] == model and r["bn_recalibrated"] == bn]
        last = [r["last_stage"]["test_accuracy"] for r in rows]
        best = [r["best_stage"]["test_accuracy"] for r in rows]
        stages = ",".join(str(r["best_stage"]["stage"]) for r in rows)
        print(f"| {model} | {'re-estimated' if bn else 'as trained'} | {fmt(last)} | {fmt(best)} ({stages}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=None, help="validated catalog (default: build one from shared)")
    parser.add_argument("--eval", type=Path, default=SHARED / "eval" / "cifar10_500_100.npz")
    parser.add_argument("--methods", default="supervised,moco")
    parser.add_argument("--seeds", default="0", help="pretraining seeds")
    parser.add_argument("--random-seeds", default="0,1,2", help="random-init seeds (probing them is cheap)")
    parser.add_argument("--steps", type=int, default=200, help="steps per model, unless --minutes is given")
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget per model: steps are set from a 20-step calibration run "
                             "(unreliable under changing load: 520 to 1,413 steps for the same 10 min here; "
                             "and render cost varies with the programs drawn, so prefer --steps)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--supervised-programs", type=int, default=64,
                        help="programs per supervised run (1,700 classes did not learn in 300 steps)")
    parser.add_argument("--moco-programs", type=int, default=None)
    parser.add_argument("--moco-mixup", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("probe-bench.json"))
    args = parser.parse_args()
    if not args.eval.is_file() or (args.db is None and not SHARED.is_dir()):
        print(f"skipped: {args.eval} or the shared samples are absent")
        return
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed (pip install 'harvest[train]')")
        return
    from pretrain.checkpoints import backbone_from_checkpoint
    from pretrain.distributed import DistEnv
    from pretrain.models import BackboneSpec, build_backbone
    from pretrain.probe import load_probe_data
    from pretrain.programs import choose_programs
    from pretrain.train import PretrainConfig, run_pretraining

    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    data = load_probe_data(args.eval, args.size)
    env = DistEnv(0, 1, 0, torch.device("cpu"))
    results: list[dict] = []

    def save() -> None:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                       indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="harvest-probe-") as tmp:
        workdir = Path(tmp)
        programs = sample_programs(args.db, workdir)
        print(f"{len(programs)} programs; load {load_avg()}", flush=True)
        for seed in [int(s) for s in args.random_seeds.split(",") if s]:
            torch.manual_seed(seed)
            random_backbone = build_backbone(BackboneSpec("resnet18", args.width)).eval()
            for row in probe_all(random_backbone, data, args.size, f"random-seed{seed}", (False, True)):
                results.append({**row, "model": "random init", "seed": seed})
            save()
        for seed in seeds:
            for method in methods:
                count = args.supervised_programs if method == "supervised" else args.moco_programs
                chosen = choose_programs(programs, count, seed)
                config = PretrainConfig(
                    method=method, width=args.width, size=args.size, batch_size=args.batch_size, steps=args.steps,
                    workers=args.workers, mixup=1 if method == "supervised" else args.moco_mixup, seed=seed,
                    checkpoint_every=10**9, log_every=10,
                )
                if args.minutes is not None:
                    config = replace(config, steps=calibrated_steps(config, chosen, env, workdir, args.minutes))
                started = time.perf_counter()
                losses: list[float] = []
                summary = run_pretraining(config, workdir / f"{method}-{seed}", chosen, env,
                                          on_step=lambda m: losses.append(round(m.loss, 3)))
                minutes = (time.perf_counter() - started) / 60
                print(f"{method} seed {seed}: {summary.step} steps x {args.batch_size} on {len(chosen)} programs "
                      f"in {minutes:.1f} min; loss every 10 steps {losses}; load {load_avg()}", flush=True)
                backbone, _ = backbone_from_checkpoint(summary.checkpoint)
                for row in probe_all(backbone, data, args.size, f"{method}-seed{seed}", (False, True)):
                    results.append({**row, "model": f"{method} ({len(chosen)} programs)", "seed": seed,
                                    "pretrain_min": round(minutes, 1), "losses": losses})
                save()
    summarise(results)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
