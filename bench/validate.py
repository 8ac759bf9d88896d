"""Benchmark of `harvest validate` on real Shadertoy programs from the shared samples.

Takes the first N single-pass programs without inputs from shared/samples/shadertoy-flat (`--programs`,
default 300), and times the validate stage on them: cold (empty shader cache) with 1 worker and with 2,
then a rerun (`--revalidate`) with the warm shader cache; then `harvest score` on that catalog against
`validate --score`, which draws the scoring frames while each program is compiled. Prints programs/s, the 2-worker ratio, the
verdict counts and every program that did not reach `ok`, with its reason. `--quality-all` also validates
every single-pass program without inputs (about 1,850) and prints the share that reaches `ok`.
The multi-pass row validates the first `--multipass-programs` programs with Buffer A-D passes from
shared/samples/shadertoy-api/2022-*.jsonl (cold, 2 workers; each is simulated from frame 0 and judged
at its checkpoints) and prints programs/s and the milliseconds per simulated frame, from the frames each
validation reached and the render time it stored. `--only-multipass` prints that row alone.
Skips (exit 0) when the shared folder is absent.

    python bench/validate.py [--programs 300] [--size 128] [--frames 4] [--executor local] [--quality-all]
                             [--multipass-programs 100] [--only-multipass]
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
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))

TARGET_ONE_WORKER = 3.5
TARGET_RATIO = 1.7
TARGET_WARM = 15.0
TARGET_OK_SHARE = 0.99


def single_pass_without_inputs(limit: int | None) -> list[dict]:
    records = []
    for path in sorted((SHARED / "samples" / "shadertoy-flat").glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if record.get("image_inputs") or record.get("common_code"):
                    continue
                if any(record.get(f"buffer_{x}_code") for x in "abcd"):
                    continue
                records.append(record)
                if limit is not None and len(records) >= limit:
                    return records
    return records


def multipass_programs(limit: int) -> list:
    """The first `limit` programs with Buffer A-D passes in the 2022 API samples, as harvest fetches them."""
    from harvester.sources.shadertoy_format import program_from_shader

    programs = []
    for path in sorted((SHARED / "samples" / "shadertoy-api").glob("2022-*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                shader = json.loads(line)["Shader"]
                if any(p.get("type") == "buffer" for p in shader.get("renderpass", [])):
                    programs.append(program_from_shader(shader))
                    if len(programs) >= limit:
                        return programs
    return programs


def build_catalog(folder: Path, records: list[dict]):
    from corpus.records import FetchedPass, FetchedProgram

    return catalog_of(folder, [FetchedProgram(
        source="shadertoy", source_id=record["id"], url="", title=record.get("name", ""),
        author=record.get("author", ""), passes=[FetchedPass("image", record["image_code"])],
        license=record.get("license") or "unknown", dialect="shadertoy",
    ) for record in records])


def catalog_of(folder: Path, fetched: list):
    from corpus.db import open_catalog
    from corpus.ingest import ingest_program

    catalog = open_catalog(folder / "harvest.db")
    with catalog.session() as session:
        for program in fetched:
            ingest_program(session, program)
    return catalog


def simulated_frames(catalog) -> tuple[int, int, float]:
    """(programs simulated, frames simulated, render ms) over the stored multi-pass validations: a
    validation that reached k checkpoints simulated frames 0 to the k-th (renderer.passes.checkpoint_frames)."""
    from sqlmodel import select

    from corpus.models import Validation
    from renderer.passes import checkpoint_frames

    programs = frames = 0
    milliseconds = 0.0
    with catalog.session() as session:
        for render_ms in session.exec(select(Validation.render_ms)).all():
            if render_ms:
                last = checkpoint_frames(len(render_ms))[-1].frame
                programs, frames, milliseconds = programs + 1, frames + last + 1, milliseconds + sum(render_ms)
    return programs, frames, milliseconds


def multipass_row(folder: Path, args, options) -> None:
    fetched = multipass_programs(args.multipass_programs)
    if not fetched:
        print(f"multi-pass row skipped: no 2022 API samples under {SHARED / 'samples' / 'shadertoy-api'}")
        return
    folder.mkdir()
    catalog = catalog_of(folder, fetched)
    seconds, report = timed_validate(catalog, args.executor, 2, options)
    simulated, frames, milliseconds = simulated_frames(catalog)
    catalog.close()
    print(f"multi-pass (2022 API samples), cold cache, 2 workers: {report.done} programs in {seconds:.1f} s = "
          f"{report.done / seconds:.2f} programs/s; {milliseconds / max(1, frames):.2f} ms per simulated frame "
          f"(one worker's time, all passes: {frames} frames of {simulated} simulated programs)   ({load()})")
    print("multi-pass verdicts: " + ", ".join(f"{k} {v}" for k, v in report.counts.most_common()))


def timed_validate(catalog, executor_kind: str, workers: int, options) -> tuple[float, object]:
    from corpus.validation import shader_cache_dir, validate
    from renderer.executor_spec import make_executor

    started = time.perf_counter()
    with make_executor(executor_kind, workers=workers, shader_cache_dir=shader_cache_dir(catalog)) as pool:
        report = validate(catalog, pool, options)
    return time.perf_counter() - started, report


def timed_score(catalog, executor_kind: str, workers: int) -> float:
    from corpus.scoring import score_catalog
    from corpus.validation import shader_cache_dir
    from renderer.executor_spec import ExecutorSpec

    started = time.perf_counter()
    score_catalog(catalog, executor=ExecutorSpec(kind=executor_kind, workers=workers),
                  shader_cache_dir=shader_cache_dir(catalog))
    return time.perf_counter() - started


def failures(catalog) -> list[tuple[str, str, str]]:
    from sqlmodel import select

    from corpus.models import Program, Validation

    with catalog.session() as session:
        rows = session.exec(
            select(Program.source_id, Validation.verdict, Validation.reason)
            .join(Validation, Validation.program_id == Program.id)
            .where(Validation.verdict != "ok")
            .order_by(Validation.verdict)
        ).all()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--executor", default="local")
    parser.add_argument("--quality-all", action="store_true", help="also validate every single-pass program without inputs")
    parser.add_argument("--multipass-programs", type=int, default=100,
                        help="multi-pass programs for the multi-pass row (0: no such row)")
    parser.add_argument("--only-multipass", action="store_true", help="print the multi-pass row alone")
    args = parser.parse_args()
    if not (SHARED / "samples" / "shadertoy-flat").is_dir():
        print(f"skipped: no shared samples under {SHARED}")
        return 0
    from corpus.validation import ValidateOptions

    # Verdict frames only (`--no-score`), so these figures measure judging; bench/scale.py measures the whole.
    options = ValidateOptions(size=args.size, frames=args.frames, timeout_s=args.timeout, score=False, signatures=False)
    if args.only_multipass:
        print(f"load before: {load()}")
        with tempfile.TemporaryDirectory(prefix="harvest-bench-") as tmp:
            multipass_row(Path(tmp) / "multipass", args, options)
        return 0
    records = single_pass_without_inputs(args.programs)
    print(f"{len(records)} single-pass programs without inputs, --size {args.size} --frames {args.frames}, "
          f"executor {args.executor}")
    print(f"load before: {load()}")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="harvest-bench-") as tmp:
        for workers in (1, 2):
            folder = Path(tmp) / f"w{workers}"
            folder.mkdir()
            catalog = build_catalog(folder, records)
            seconds, report = timed_validate(catalog, args.executor, workers, options)
            rates[f"cold{workers}"] = report.done / seconds
            print(f"cold cache, {workers} worker(s): {report.done} programs in {seconds:.1f} s = "
                  f"{rates[f'cold{workers}']:.2f} programs/s   ({load()})")
            if workers == 2:
                warm_options = replace(options, revalidate=True)
                seconds, warm = timed_validate(catalog, args.executor, 2, warm_options)
                rates["warm"] = warm.done / seconds
                print(f"warm cache rerun, 2 workers: {warm.done} programs in {seconds:.1f} s = {rates['warm']:.2f} programs/s"
                      f"   ({load()})")
                counts = collections.Counter(report.counts)
                failed = failures(catalog)
                score_s = timed_score(catalog, args.executor, 2)
                separate_s = report.done / rates["cold2"] + score_s
            catalog.close()
        # `validate --score` (scoring frames drawn while each program is compiled) against validate, then score.
        folder = Path(tmp) / "together"
        folder.mkdir()
        catalog = build_catalog(folder, records)
        together_s, together = timed_validate(catalog, args.executor, 2, replace(options, score=True))
        catalog.close()
        print(f"validate then score, 2 workers, cold: {separate_s - score_s:.1f} s + {score_s:.1f} s = {separate_s:.1f} s; "
              f"validate --score: {together_s:.1f} s ({together.scored} scored; {separate_s / together_s:.2f}x)   ({load()})")
        ratio = rates["cold2"] / rates["cold1"]
        print(f"2 workers / 1 worker: {ratio:.2f}x")
        print("verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
        ok_share = counts.get("ok", 0) / max(1, sum(counts.values()))
        print(f"ok share: {100 * ok_share:.1f} %")
        for source_id, verdict, reason in failed:
            print(f"  {source_id}  {verdict}: {reason[:150]}")
        if args.quality_all:
            everything = single_pass_without_inputs(None)
            folder = Path(tmp) / "all"
            folder.mkdir()
            catalog = build_catalog(folder, everything)
            seconds, report = timed_validate(catalog, args.executor, 2, options)
            share = report.counts.get("ok", 0) / max(1, report.done)
            print(f"quality over all {report.done} single-pass programs without inputs: {100 * share:.2f} % ok "
                  f"({seconds:.0f} s, {report.done / seconds:.2f} programs/s)")
            print("verdicts: " + ", ".join(f"{k} {v}" for k, v in report.counts.most_common()))
            for source_id, verdict, reason in failures(catalog):
                print(f"  {source_id}  {verdict}: {reason[:150]}")
            catalog.close()
        if args.multipass_programs > 0:
            multipass_row(Path(tmp) / "multipass", args, options)
    print(f"targets: >= {TARGET_ONE_WORKER}/s with 1 worker ({rates['cold1']:.2f}), 2 workers >= {TARGET_RATIO}x ({ratio:.2f}), "
          f"warm >= {TARGET_WARM}/s ({rates['warm']:.2f}), ok >= {100 * TARGET_OK_SHARE:.0f} % ({100 * ok_share:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
