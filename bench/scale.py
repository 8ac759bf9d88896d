"""The whole curation pipeline at the seed's scale: import, validate, score, dedup and export of N programs.

Builds a dump of N Shadertoy records: the shared real ones (flat and API records), then seeded variants of them
until there are N. A variant changes some numeric constants slightly and renames one variable, so it compiles
like its original and is often a near duplicate of it by construction. Each stage then runs in a fresh
interpreter, so its peak RSS is its own (render workers are separate processes and not counted), and prints:

- programs/s over the programs the stage handled,
- compiles per program: render jobs the stage ran (each compiles its program once) over the catalog's programs,
- peak RSS of the stage's driver process.

The last line is the whole pipeline. Run it at two sizes to see how memory and time grow:

    python bench/scale.py --programs 3000 [--workers 2]
    python bench/scale.py --programs 30000 --stages import,stand-in,dedup,export   # memory at a size not drawn
    python bench/scale.py --programs 30000 --stages import,validate-driver          # the validate driver's memory

Skips (exit 0) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
STAGES = ("import", "validate", "score", "dedup", "export")
# `stand-in` instead of validate: every program gets an `ok` verdict, a score and a seeded image signature without
# being drawn, so the memory of dedup and export can be measured at sizes that validation cannot reach here.
STAND_IN = "stand-in"
# `validate-driver`: the real validate stage, driver and catalog writes, fed by an executor that draws nothing and
# answers each job with synthetic frames at once, so the driver's own memory can be measured at any size.
VALIDATE_DRIVER = "validate-driver"
FLOAT = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")
DECLARED = re.compile(r"\b(?:float|vec2|vec3|vec4|int)\s+([a-z][A-Za-z0-9]{2,})\s*=")


# --- the dump -----------------------------------------------------------------------------------


def _real_records() -> list[dict]:
    records: list[dict] = []
    for folder in ("shadertoy-flat", "shadertoy-api"):
        for path in sorted((SHARED / "samples" / folder).glob("*.jsonl")):
            records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def _code_fields(record: dict) -> list[tuple[dict, str]]:
    """(holder, key) of every code string in a flat or API record."""
    if "Shader" in record:
        return [(p, "code") for p in record["Shader"].get("renderpass", [])]
    return [(record, k) for k in record if k.endswith("_code") and isinstance(record[k], str)]


def _rename(record: dict, new_id: str) -> None:
    if "Shader" in record:
        record["Shader"]["info"]["id"] = new_id
    else:
        record["id"] = new_id


def _variant(record: dict, k: int, rng: random.Random) -> dict:
    """A copy of `record` under a new id, with a few constants nudged and one variable renamed."""
    copy = json.loads(json.dumps(record))
    original_id = copy["Shader"]["info"]["id"] if "Shader" in copy else copy["id"]
    _rename(copy, f"{original_id}v{k}")
    factor = 1.0 + rng.choice((-1, 1)) * rng.uniform(0.002, 0.03)
    for holder, key in _code_fields(copy):
        code = holder[key]
        code = FLOAT.sub(lambda m: f"{float(m.group(1)) * factor:.6f}" if rng.random() < 0.3 else m.group(1), code)
        names = sorted(set(DECLARED.findall(code)))
        if names:
            name = rng.choice(names)
            code = re.sub(rf"\b{re.escape(name)}\b", f"{name}_v{k}", code)
        holder[key] = code
    return copy


def write_dump(path: Path, programs: int, seed: int) -> int:
    real = _real_records()
    rng = random.Random(seed)
    written = 0
    with path.open("w") as out:
        for record in real[:programs]:
            out.write(json.dumps(record) + "\n")
            written += 1
        k = 0
        while written < programs:
            k += 1
            out.write(json.dumps(_variant(real[(k - 1) % len(real)], k, rng)) + "\n")
            written += 1
    return written


# --- one stage, in its own interpreter ---------------------------------------------------------


def _count_render_jobs() -> list[int]:
    """Count every result any executor hands back in this process: one job, one compile."""
    from renderer.scheduler import PooledExecutor

    counter = [0]
    run = PooledExecutor.run

    def counted(self, jobs, on_wait=None):
        for result in run(self, jobs, on_wait=on_wait):
            counter[0] += 1
            yield result

    PooledExecutor.run = counted  # type: ignore[method-assign]
    return counter


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _handled(stage: str, catalog, dump: Path, out: Path, workers: int) -> int:
    """Run `stage` and return how many programs it handled."""
    from renderer.executor_spec import ExecutorSpec

    spec = ExecutorSpec(workers=workers)
    cache = catalog.folder / ".harvest-cache" / "mesa"
    if stage == "import":
        from harvester.crawl import CrawlOptions, run_crawl
        from harvester.http import HttpPolicy, PoliteClient
        from harvester.sources import SourceSettings, open_source

        with PoliteClient(HttpPolicy()) as client:
            source = open_source("local", SourceSettings(path=dump), client, catalog.folder / ".harvest-cache")
            summary = run_crawl(catalog, source, CrawlOptions())
        return summary.new + summary.updated + summary.unchanged + summary.duplicates
    if stage == STAND_IN:
        return _stand_in_verdicts(catalog)
    if stage == VALIDATE_DRIVER:
        from corpus.validation import ValidateOptions, validate

        return validate(catalog, _InstantExecutor(), ValidateOptions(score=False)).done
    if stage == "validate":
        from corpus.validation import ValidateOptions, validate

        with spec.build(cache) as pool:
            return validate(catalog, pool, ValidateOptions()).done
    if stage == "score":
        from corpus.scoring import score_catalog

        summary = score_catalog(catalog, executor=spec, shader_cache_dir=cache)
        return summary.scored + sum(summary.failed.values())
    if stage == "dedup":
        from corpus.dedup import dedup_catalog

        return dedup_catalog(catalog, executor=spec, shader_cache_dir=cache).programs
    from corpus.export import ExportOptions, export_catalog

    options = ExportOptions(out=out, min_diversity=0.3, overwrite=True, executor=spec, shader_cache_dir=cache)
    return export_catalog(catalog, options).exported


class _InstantExecutor:
    """Answers every job at once with seeded frames: an `ok` verdict, a thumbnail and the signature frames."""

    def run(self, jobs, on_wait=None):
        import numpy as np

        from renderer.images import png_bytes
        from renderer.jobs import RenderResult, Verdict

        for job in jobs:
            rng = np.random.default_rng(job.key)
            frames = [rng.integers(0, 255, (job.height, job.width, 3), dtype=np.uint8) for _ in job.frames]
            extras = {s.name: [rng.integers(0, 255, (s.height, s.width, 3), dtype=np.uint8) for _ in s.frames]
                      for s in job.extras}
            yield RenderResult(key=job.key, verdict=Verdict.OK, compile_ms=1.0, render_ms=[1.0] * len(frames),
                               frame_means=[float(f.mean()) for f in frames], frame_stds=[float(f.std()) for f in frames],
                               animated=True, thumbnail_png=png_bytes(frames[0]), extras=extras)
            if on_wait is not None:
                on_wait()


def _stand_in_verdicts(catalog) -> int:
    """An `ok` verdict, a score and a signature for every program, none drawn. A variant gets its original's
    signature with a bit flipped, as it would draw nearly the same picture."""
    from sqlmodel import select

    from corpus.models import ImageSignatureRow, Program, Score, Validation
    from corpus.scoring import METHOD
    from corpus.signatures import SIGNATURE_METHOD
    from renderer import RENDERER_VERSION

    rng = random.Random(7)
    with catalog.session() as session:
        rows = list(session.exec(select(Program.id, Program.source_id)))
    for start in range(0, len(rows), 2000):
        with catalog.session() as session:
            for pid, source_id in rows[start : start + 2000]:
                original = random.Random(source_id[:6])  # Shadertoy ids have 6 characters; variants add `vK`
                hashes = [original.getrandbits(64) ^ (1 << rng.randrange(64)) for _ in range(2)]
                colour = [round(original.random(), 3) for _ in range(3)]
                session.merge(Validation(program_id=pid, verdict="ok", renderer_version=RENDERER_VERSION))
                session.merge(Score(program_id=pid, diversity=rng.random(), colorfulness=rng.random(),
                                    fill=rng.random(), frames_used=8, method=METHOD))
                session.merge(ImageSignatureRow(program_id=pid, method=SIGNATURE_METHOD,
                                                hashes=[f"{h:016x}" for h in hashes], mean_colours=[colour, colour]))
    return len(rows)


def run_one_stage(stage: str, db: Path, dump: Path, out: Path, workers: int) -> None:
    from sqlmodel import func, select

    from corpus.db import open_catalog
    from corpus.models import Program

    renders = _count_render_jobs()
    catalog = open_catalog(db, writer=True)
    started = time.perf_counter()
    handled = _handled(stage, catalog, dump, out, workers)
    seconds = time.perf_counter() - started
    with catalog.session() as session:
        programs = session.exec(select(func.count()).select_from(Program)).one()
    catalog.close()
    print(json.dumps({"stage": stage, "seconds": seconds, "handled": handled, "programs": programs,
                      "renders": renders[0], "peak_rss_mb": _peak_rss_mb()}))


# --- the driver --------------------------------------------------------------------------------


def _stage_in_subprocess(stage: str, folder: Path, workers: int) -> dict:
    command = [sys.executable, __file__, "--stage", stage, "--keep", str(folder), "--workers", str(workers)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_table(rows: list[dict], programs: int) -> None:
    print(f"{'stage':<9} {'programs':>9} {'seconds':>9} {'programs/s':>11} {'compiles/program':>17} {'peak RSS MB':>12}")
    for row in rows:
        rate = row["handled"] / row["seconds"] if row["seconds"] else 0.0
        print(f"{row['stage']:<9} {row['handled']:>9} {row['seconds']:>9.1f} {rate:>11.1f} "
              f"{row['renders'] / max(1, programs):>17.2f} {row['peak_rss_mb']:>12.0f}")
    seconds = sum(r["seconds"] for r in rows)
    renders = sum(r["renders"] for r in rows)
    print(f"{'pipeline':<9} {programs:>9} {seconds:>9.1f} {programs / seconds if seconds else 0:>11.1f} "
          f"{renders / max(1, programs):>17.2f} {max(r['peak_rss_mb'] for r in rows):>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage here and print JSON
    args = parser.parse_args()
    if args.stage:
        folder = args.keep
        run_one_stage(args.stage, folder / "harvest.db", folder / "dump.jsonl", folder / "export", args.workers)
        return
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent")
        return
    with tempfile.TemporaryDirectory(prefix="harvest-scale-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "dump.jsonl").exists():
            write_dump(folder / "dump.jsonl", args.programs, args.seed)
        rows = []
        for stage in args.stages.split(","):
            rows.append(_stage_in_subprocess(stage, folder, args.workers))
            print(json.dumps(rows[-1]), flush=True)
        _print_table(rows, rows[-1]["programs"])


if __name__ == "__main__":
    main()
