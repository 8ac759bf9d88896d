"""Benchmark of scoring and export on the shared Shadertoy samples.

Builds a temporary catalog from the first N flat records (`--programs`, default 200), validates it with
`harvest validate`, then times `harvest score`, `harvest export` and `harvest export --images-per-program 4`, and
prints how many programs each --min-diversity threshold keeps. Skips (exit 0) when the shared folder is absent.

`--memory 64,256` instead measures the export's peak memory: for each size it builds a catalog of that many
generated (always rendering) programs, exports them with 4 images of 256x256 each in shards of `--shard-size`, and
prints the exporting process's peak RSS (render workers are separate processes). Memory held per shard, not per
export, shows as a flat line.

    python bench/export.py [--programs 200] [--workers 2]
    python bench/export.py --memory 64,256 [--shard-size 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))


def _harvest(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harvester.cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# Distinct constants per program, so none is an exact duplicate of another.
_GENERATED = """void mainImage(out vec4 c, in vec2 p) {{
    vec2 uv = p / iResolution.xy * {scale:.3f};
    c = vec4(0.5 + 0.5 * cos(iTime * {speed:.3f} + uv.xyx + vec3(0.0, 2.0, 4.0) + {phase:.3f}), 1.0);
}}"""

# Runs in a fresh interpreter so that its peak RSS is the export's alone.
_MEASURE = """
import resource, sys
from pathlib import Path
from corpus.db import open_catalog
from corpus.export import ExportOptions, export_catalog
from renderer.executor_spec import ExecutorSpec
db, out, shard_size, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
catalog = open_catalog(db)
summary = export_catalog(catalog, ExportOptions(out=out, images_per_program=4, image_size=256, shard_size=shard_size,
                                                keep_duplicates=True, executor=ExecutorSpec(workers=workers)))
print(summary.exported, summary.images, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _generated_catalog(db: Path, programs: int) -> None:
    from corpus.db import open_catalog
    from corpus.ingest import ingest_program
    from corpus.models import Score, Validation
    from corpus.records import FetchedPass, FetchedProgram
    from corpus.scoring import METHOD

    catalog = open_catalog(db)
    with catalog.session() as session:
        for index in range(programs):
            code = _GENERATED.format(scale=1 + index % 7, speed=0.5 + index / programs, phase=index * 0.01)
            fetched = FetchedProgram(source="local", source_id=f"generated-{index}", url="", title=f"generated {index}",
                                     author="bench", passes=[FetchedPass("image", code)], license="CC0-1.0")
            program_id = ingest_program(session, fetched).program_id
            # Validated and scored already: the export then only renders its own images.
            session.add(Validation(program_id=program_id, verdict="ok"))
            session.add(Score(program_id=program_id, diversity=0.5, colorfulness=10.0, fill=1.0, method=METHOD))
    catalog.close()


def _memory(sizes: list[int], shard_size: int, workers: int) -> int:
    print(f"peak RSS of the exporting process, 4 images of 256x256 a program, shards of {shard_size}, {workers} workers")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for programs in sizes:
        with tempfile.TemporaryDirectory(prefix="harvest-bench-export-memory-") as folder:
            db = Path(folder) / "harvest.db"
            _generated_catalog(db, programs)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _MEASURE, str(db), f"{folder}/out", str(shard_size), str(workers)],
                                  check=True, capture_output=True, text=True, env=env, cwd=REPO)
            exported, images, peak_kb = (int(x) for x in done.stdout.split()[-3:])
            print(f"  {programs:6d} programs: {exported} exported, {images} images, peak RSS {peak_kb / 1024:7.1f} MiB "
                  f"({time.perf_counter() - started:.1f} s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory", help="comma-separated catalog sizes: measure peak memory instead")
    parser.add_argument("--shard-size", type=int, default=32)
    args = parser.parse_args()
    if args.memory:
        return _memory([int(n) for n in args.memory.split(",")], args.shard_size, args.workers)
    flat = sorted((SHARED / "samples" / "shadertoy-flat").glob("*.jsonl"))
    if not flat:
        print(f"skipped: no shared samples under {SHARED}")
        return 0

    from corpus.db import open_catalog
    from corpus.ingest import ingest_program
    from corpus.scoring import THRESHOLDS, threshold_counts
    from harvester.sources.shadertoy_format import program_from_flat

    with tempfile.TemporaryDirectory(prefix="harvest-bench-export-") as folder:
        db = Path(folder) / "harvest.db"
        catalog = open_catalog(db)
        records = (json.loads(line) for path in flat for line in path.read_text().splitlines() if line.strip())
        with catalog.session() as session:
            for count, record in enumerate(records):
                if count >= args.programs:
                    break
                ingest_program(session, program_from_flat(record))
        workers = str(args.workers)
        validate_s = _harvest("validate", "--db", str(db), "--workers", workers)
        with catalog.session() as session:
            from sqlmodel import func, select

            from corpus.models import Validation

            ok = session.exec(select(func.count()).where(Validation.verdict == "ok")).one()
        score_s = _harvest("score", "--db", str(db), "--workers", workers)
        dedup_s = _harvest("dedup", "--db", str(db), "--workers", workers)
        with catalog.session() as session:
            scored, kept = threshold_counts(session)
        export_s = _harvest("export", "--db", str(db), "--out", f"{folder}/plain", "--workers", workers)
        images_s = _harvest("export", "--db", str(db), "--out", f"{folder}/images", "--images-per-program", "4",
                            "--size", "256", "--workers", workers)
        exported = sum(1 for _ in open(f"{folder}/plain/manifest.jsonl"))
        catalog.close()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, {args.workers} workers")
    print(f"{args.programs} programs, {ok} ok after validate ({validate_s:.1f} s)")
    print(f"score: {ok} programs in {score_s:.1f} s = {ok / score_s:.2f} programs/s")
    print(f"dedup (code + frame hashes): {dedup_s:.1f} s")
    print(f"export (no images): {exported} programs in {export_s:.1f} s = {exported / export_s:.2f} programs/s")
    print(f"export --images-per-program 4 --size 256: {images_s:.1f} s = {exported / images_s:.2f} programs/s")
    print(f"--min-diversity keeps, of {scored} scored non-duplicate ok programs:")
    for threshold in THRESHOLDS:
        print(f"  {threshold:.1f}: {kept[threshold]:5d} ({kept[threshold] / max(1, scored):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
