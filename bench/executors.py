"""Benchmark of the Ray executor against the local pool on the same real programs.

Takes the first N single-pass programs without inputs from shared/samples/shadertoy-flat
(`--programs`, default 300) and validates them through the validate stage with `--executor local`
and then `--executor ray` (2 workers each by default), each in a fresh catalog with its own empty
Mesa shader cache, so both start cold. For each executor it prints the startup time (pool, or Ray
itself and its actors), programs/s while rendering, programs/s including startup and shutdown, and
the load; then the Ray/local ratio (goal: >= 0.8x while rendering) and how many verdicts differ.
`--rounds 2` runs local, ray, ray, local to even out load drift on a shared machine.
Skips (exit 0) when the shared folder is absent or Ray is not installed.

    python bench/executors.py [--programs 300] [--workers 2] [--size 128] [--frames 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
TARGET_RATIO = 0.8
# Programs rendered before timing starts, so startup is measured apart; each takes long enough
# (a fraction of a second) that every worker gets one rather than the first ready one taking all.
WARM_UP = (
    "void mainImage(out vec4 c, in vec2 f) {{ float s = 0.0;"
    " for (int i = 0; i < 400; i++) {{ s += sin(float(i) * f.x * 0.01 + {k}.0); }}"
    " c = vec4(fract(s), f / iResolution.xy, 1.0); }}"
)


@dataclass
class Timing:
    executor: str
    programs: int
    startup_s: float
    render_s: float
    total_s: float
    load: str
    verdicts: dict[str, str]  # source_id -> verdict
    respawns: int  # workers replaced after a timeout or crash

    @property
    def render_rate(self) -> float:
        return self.programs / self.render_s

    @property
    def total_rate(self) -> float:
        return self.programs / self.total_s


def single_pass_without_inputs(limit: int) -> list[dict]:
    records: list[dict] = []
    for path in sorted((SHARED / "samples" / "shadertoy-flat").glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if record.get("image_inputs") or record.get("common_code"):
                    continue
                if any(record.get(f"buffer_{x}_code") for x in "abcd"):
                    continue
                records.append(record)
                if len(records) >= limit:
                    return records
    return records


def build_catalog(folder: Path, records: list[dict]):
    from corpus.db import open_catalog
    from corpus.ingest import ingest_program
    from corpus.records import FetchedPass, FetchedProgram

    catalog = open_catalog(folder / "harvest.db")
    with catalog.session() as session:
        for record in records:
            ingest_program(session, FetchedProgram(
                source="shadertoy", source_id=record["id"], url="", title=record.get("name", ""),
                author=record.get("author", ""), passes=[FetchedPass("image", record["image_code"])],
                license=record.get("license") or "unknown", dialect="shadertoy",
            ))
    return catalog


def verdicts_by_source_id(catalog) -> dict[str, str]:
    from sqlmodel import select

    from corpus.models import Program, Validation

    with catalog.session() as session:
        rows = session.exec(select(Program.source_id, Validation.verdict).join(Validation, Validation.program_id == Program.id))
        return {str(source_id): str(verdict) for source_id, verdict in rows}


def warm_up_jobs(workers: int, size: int):
    from renderer.frames import frame_specs
    from renderer.jobs import ProgramSource, RenderJob

    return [RenderJob(key=-k - 1, program=ProgramSource("shadertoy", WARM_UP.format(k=k)),
                      frames=frame_specs(f"warm-up:{k}", 1, size, size), width=size, height=size, timeout_s=60.0)
            for k in range(2 * workers)]


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed_run(kind: str, folder: Path, records: list[dict], args: argparse.Namespace) -> Timing:
    from corpus.validation import ValidateOptions, validate
    from renderer.executor_spec import make_executor

    folder.mkdir()
    catalog = build_catalog(folder, records)
    options = ValidateOptions(size=args.size, frames=args.frames, timeout_s=args.timeout, score=False, signatures=False)
    cache = folder / "mesa-cache"  # fresh and empty: both executors compile every program cold
    try:
        started = time.perf_counter()
        executor = make_executor(kind, workers=args.workers, shader_cache_dir=cache)
        with executor:
            for _ in executor.run(warm_up_jobs(args.workers, args.size)):
                pass
            ready = time.perf_counter()
            report = validate(catalog, executor, options)
            rendered = time.perf_counter()
        stopped = time.perf_counter()
        return Timing(kind, report.done, ready - started, rendered - ready, stopped - started, load(),
                      verdicts_by_source_id(catalog), getattr(executor, "respawns", 0))
    finally:
        catalog.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1, help="1: local then ray; 2: local, ray, ray, local")
    args = parser.parse_args()
    if not (SHARED / "samples" / "shadertoy-flat").is_dir():
        print(f"skipped: no shared samples under {SHARED}")
        return 0
    try:
        import ray  # noqa: F401
    except ImportError:
        print("skipped: ray is not installed (pip install 'harvest[ray]')")
        return 0

    records = single_pass_without_inputs(args.programs)
    order = ["local", "ray", "ray", "local"] * ((args.rounds + 1) // 2)
    order = order[: 2 * args.rounds]
    print(f"{len(records)} single-pass programs without inputs, --workers {args.workers} --size {args.size} "
          f"--frames {args.frames} --timeout {args.timeout:g}, cold shader cache each run")
    print(f"load before: {load()}")
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="harvest-bench-executors-") as tmp:
        for run, kind in enumerate(order):
            timing = timed_run(kind, Path(tmp) / f"{run}-{kind}", records, args)
            timings.append(timing)
            print(f"{kind:>5}: startup {timing.startup_s:5.1f} s | {timing.programs} programs in {timing.render_s:6.1f} s = "
                  f"{timing.render_rate:5.2f} programs/s rendering, {timing.total_rate:5.2f} programs/s with startup "
                  f"and shutdown, {timing.respawns} workers replaced   ({timing.load})")

    def mean_rate(kind: str, attribute: str) -> float:
        rates = [getattr(t, attribute) for t in timings if t.executor == kind]
        return sum(rates) / len(rates)

    ratio = mean_rate("ray", "render_rate") / mean_rate("local", "render_rate")
    ratio_total = mean_rate("ray", "total_rate") / mean_rate("local", "total_rate")
    local_verdicts = next(t.verdicts for t in timings if t.executor == "local")
    ray_verdicts = next(t.verdicts for t in timings if t.executor == "ray")
    differ = sorted(k for k in local_verdicts if local_verdicts[k] != ray_verdicts.get(k))
    counts = collections.Counter(local_verdicts.values())
    print("verdicts (local): " + ", ".join(f"{name} {n}" for name, n in counts.most_common()))
    print(f"ray / local: {ratio:.2f}x rendering (goal >= {TARGET_RATIO}x), {ratio_total:.2f}x with startup and shutdown")
    print(f"verdicts that differ between the executors: {len(differ)} of {len(local_verdicts)}"
          + "".join(f"\n  {k}: local {local_verdicts[k]}, ray {ray_verdicts.get(k)}" for k in differ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
