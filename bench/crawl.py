"""Benchmark of `harvest crawl`: programs/s and peak RSS.

1. `local` import of ../shared/samples/shadertoy-flat (2,414 flat records) into a fresh catalog
   (targets: under 20 s, under 300 MB peak RSS; skipped when the shared folder is absent);
2. `shadertoy-public` against a fake API on 127.0.0.1 (in its own process) with politeness off
   (--rate 0), synthetic programs (target: at least 100 programs/s).
Each part runs in its own process so its peak RSS is its own.

    python bench/crawl.py [--api-programs 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
KEY = "bench-key-0123"
sys.path.insert(0, str(REPO))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _crawl(source, db: Path) -> dict:
    from corpus.db import open_catalog
    from harvester.crawl import CrawlOptions, run_crawl

    catalog = open_catalog(db)
    started = time.perf_counter()
    summary = run_crawl(catalog, source, CrawlOptions())
    elapsed = time.perf_counter() - started
    catalog.close()
    return {"programs": summary.processed, "new": summary.new, "duplicates": summary.duplicates,
            "failed": summary.failed, "seconds": round(elapsed, 2),
            "programs_per_s": round(summary.processed / elapsed, 1), "peak_rss_mb": round(_peak_rss_mb(), 1)}


def part_local(tmp: Path) -> dict:
    from harvester.sources.local import LocalSource

    return _crawl(LocalSource(SHARED / "samples" / "shadertoy-flat"), tmp / "local.db")


def _serve(url_queue, stop_event, programs: int) -> None:
    from tests.fakes.servers import FakeShadertoy, api_shader

    code = "void mainImage(out vec4 c, in vec2 p){{ vec2 q = p / {n}.0; c = vec4(q, sin(iTime + {n}.0), 1.0); }}"
    shaders = {f"b{i:05d}": api_shader(f"b{i:05d}", code.format(n=i + 1)) for i in range(programs)}
    with FakeShadertoy(KEY, shaders) as server:
        url_queue.put(server.url)
        stop_event.wait()


def part_api(tmp: Path, programs: int, concurrency: int) -> dict:
    from harvester.http import HttpPolicy, PoliteClient
    from harvester.sources.shadertoy import ShadertoySource

    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(urls, stop, programs), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=60)
        with PoliteClient(HttpPolicy(rate_per_host=0, concurrency=concurrency), secrets=[KEY]) as client:
            source = ShadertoySource(client, KEY, base_url=url, concurrency=concurrency)
            return _crawl(source, tmp / "api.db")
    finally:
        stop.set()
        server.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["local", "api"], help=argparse.SUPPRESS)
    parser.add_argument("--api-programs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    if args.part:
        with tempfile.TemporaryDirectory() as tmp:
            result = part_local(Path(tmp)) if args.part == "local" else part_api(Path(tmp), args.api_programs, args.concurrency)
        print(json.dumps(result))
        return 0

    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")
    parts = [("api", "API crawl (fake server, --rate 0)", "target >= 100 programs/s")]
    if (SHARED / "samples" / "shadertoy-flat").is_dir():
        parts.insert(0, ("local", "local import of shadertoy-flat", "targets < 20 s, < 300 MB peak RSS"))
    else:
        print(f"local import skipped: no shared samples under {SHARED}")
    for part, label, target in parts:
        child = subprocess.run(
            [sys.executable, __file__, "--part", part, "--api-programs", str(args.api_programs),
             "--concurrency", str(args.concurrency)],
            capture_output=True, text=True, cwd=REPO,
        )
        if child.returncode != 0:
            print(f"{label}: failed\n{child.stderr}")
            return 1
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{label}: {r['programs']} programs ({r['new']} new, {r['duplicates']} duplicates, {r['failed']} failed) "
              f"in {r['seconds']} s = {r['programs_per_s']} programs/s, peak RSS {r['peak_rss_mb']} MB  [{target}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
