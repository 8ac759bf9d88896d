"""Benchmark of scoring and export on the shared Shadertoy samples.

Builds a temporary catalog from the first N flat records (`--programs`, default 200), validates it with
`harvest validate`, then times `harvest score`, `harvest export` and `harvest export --images-per-program 4`, and
prints how many programs each --min-diversity threshold keeps. Skips (exit 0) when the shared folder is absent.

    python bench/export.py [--programs 200] [--workers 2]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
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
