"""Faithfulness benchmark: does harvest's renderer draw what an independent renderer draws?

Renders the shared samples' single-pass Shadertoy programs without inputs (no Common, no Buffer A-D,
no Cube A pass, no image inputs) at 128x128, time 1.37 s, iMouse (0, 0, 0, 0), iFrame 0, iTimeDelta
0.167 and iDate (0, 0, 0, 0), once with harvest's renderer (moderngl on EGL, Mesa llvmpipe) and once
with wgpu-shadertoy (naga's GLSL front end, Vulkan on Mesa lavapipe), and compares the RGB pixels.
A program matches when the mean absolute difference (0-255 scale, over every pixel and channel) is
at most 3; the target is >= 90 % of the programs that both render.

wgpu-shadertoy lives in its own venv (see the README, "Faithfulness", for the setup); its python
is `--wgpu-python`, else $HARVEST_WGPU_PYTHON, else /opt/wgpu-venv/bin/python. Each renderer runs
in its own subprocess (bench/_harvest_snapshot.py, bench/_wgpu_snapshot.py), killed and restarted
when a program exceeds `--timeout`. Skips (exit 0) when the shared samples or that python are absent.

    python bench/faithful.py [--programs N | --all] [--timeout 15] [--png-dir /tmp/harvest-faithful]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HARVEST_SHARED", REPO.parent / "shared"))
DEFAULT_WGPU_PYTHON = "/opt/wgpu-venv/bin/python"
MATCH_MAD = 3.0
TARGET_SHARE = 0.90
SIZE = 128
# Pixels further apart than this count as "visibly different" in the per-program detail.
VISIBLE_DIFFERENCE = 32
MAD_BUCKETS = (0.5, 1.0, 3.0, 10.0, 30.0, 100.0)
# Green grows upwards in this probe: the top row of both images must be the bright one.
ORIENTATION_PROBE = (
    "void mainImage(out vec4 c, in vec2 p) { vec2 uv = p / iResolution.xy; c = vec4(uv.x, uv.y, 0.25, 1.0); }"
)
ORIENTATION_KEY = "orientation-probe"


@dataclass(frozen=True)
class SampleProgram:
    id: str
    code: str


@dataclass(frozen=True)
class Outcome:
    status: str  # ok, error, timeout, crash
    detail: str = ""


@dataclass(frozen=True)
class Comparison:
    id: str
    mad: float
    visible_share: float  # share of pixels with some channel off by more than VISIBLE_DIFFERENCE


def single_pass_programs_without_inputs(samples: Path) -> list[SampleProgram]:
    programs = []
    for path in sorted(samples.glob("*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                other_passes = [record.get(f"buffer_{x}_code") for x in "abcd"] + [record.get("cube_a_code")]
                if record.get("image_inputs") or record.get("common_code") or any(other_passes):
                    continue
                if record.get("image_code", "").strip():
                    programs.append(SampleProgram(id=str(record["id"]), code=record["image_code"]))
    return programs


class SnapshotServer:
    """One renderer subprocess speaking the JSON-lines protocol of bench/_*_snapshot.py."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], timeout_s: float) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._timeout_s = timeout_s
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue[str | None] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self._env, text=True, start_new_session=True,
        )
        answers: queue.Queue[str | None] = queue.Queue()

        def read_answers() -> None:
            for line in process.stdout:
                answers.put(line)
            answers.put(None)  # end of stream: the process died

        def read_errors() -> None:
            for line in process.stderr:
                self.stderr_tail.append(line.rstrip())

        threading.Thread(target=read_answers, daemon=True).start()
        threading.Thread(target=read_errors, daemon=True).start()
        self._answers = answers
        return process

    def stop(self) -> None:
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.wait()
            self._process = None

    def render(self, key: str, code: str, out: Path, timeout_s: float | None = None) -> Outcome:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        request = json.dumps({"key": key, "code": code, "out": str(out)}) + "\n"
        try:
            self._process.stdin.write(request)
            self._process.stdin.flush()
            line = self._answers.get(timeout=timeout_s or self._timeout_s)
        except BrokenPipeError:
            line = None
        except queue.Empty:
            self.stop()
            return Outcome("timeout", f"no answer within {timeout_s or self._timeout_s:.0f} s")
        if line is None:
            self.stop()
            return Outcome("crash", self.stderr_tail[-1] if self.stderr_tail else "process died")
        answer = json.loads(line)
        if answer.get("ok"):
            return Outcome("ok")
        return Outcome("error", answer.get("error", ""))


def render_all(server: SnapshotServer, programs: list[SampleProgram], folder: Path,
               results: dict[str, Outcome], progress: collections.Counter) -> None:
    for program in programs:
        results[program.id] = server.render(program.id, program.code, folder / f"{program.id}.npy")
        progress[server.name] += 1


def mean_absolute_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(difference.mean()), float((difference.max(axis=2) > VISIBLE_DIFFERENCE).mean())


def side_by_side(harvest: np.ndarray, wgpu: np.ndarray) -> np.ndarray:
    """harvest | wgpu | |difference| x4, with a 4-pixel grey gutter."""
    difference = np.clip(np.abs(harvest.astype(np.int16) - wgpu.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    gutter = np.full((harvest.shape[0], 4, 3), 128, np.uint8)
    return np.concatenate([harvest, gutter, wgpu, gutter, difference], axis=1)


def check_orientation(harvest: SnapshotServer, wgpu: SnapshotServer, folder: Path) -> str | None:
    """None when both renderers give the probe gradient with its bright (green) row on top."""
    for server in (harvest, wgpu):
        out = folder / f"{server.name}-{ORIENTATION_KEY}.npy"
        # The first request also starts the process (wgpu takes seconds to find its adapter).
        outcome = server.render(ORIENTATION_KEY, ORIENTATION_PROBE, out, timeout_s=120.0)
        if outcome.status != "ok":
            tail = " | ".join(list(server.stderr_tail)[-3:])
            return f"{server.name} cannot draw the probe program ({outcome.status}: {outcome.detail}) {tail}"
        pixels = np.load(out)
        top, bottom, left, right = pixels[0, :, 1].mean(), pixels[-1, :, 1].mean(), pixels[:, 0, 0].mean(), pixels[:, -1, 0].mean()
        if not (top > 240 and bottom < 15 and left < 15 and right > 240):
            return f"{server.name}: unexpected orientation (green top {top:.0f} bottom {bottom:.0f}, red left {left:.0f} right {right:.0f})"
    return None


def earlier_mismatches(results: Path) -> set[str]:
    if not results.is_file():
        raise SystemExit(f"error: no results file at {results}")
    with open(results, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return {row["id"] for row in rows if row.get("mad") is not None and row["mad"] > MATCH_MAD}


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def print_causes(programs: list[SampleProgram], comparisons: list[Comparison]) -> None:
    """Attribute each mismatch to the first likely cause found in its code (bench/_faithful_causes.py)."""
    from _faithful_causes import CAUSES, WGPU_SIDE, likely_causes

    code = {program.id: program.code for program in programs}
    causes = {c.id: likely_causes(code[c.id]) for c in comparisons}
    mismatches = [c for c in comparisons if c.mad > MATCH_MAD]
    attributed = collections.Counter(causes[c.id][0] if causes[c.id] else "unexplained" for c in mismatches)
    print(f"likely causes of the {len(mismatches)} mismatches (first pattern found in the code; "
          "with / among all programs both render):")
    for name in list(CAUSES) + ["unexplained"]:
        having = sum(name in causes[c.id] for c in comparisons) if name in CAUSES else attributed[name]
        text = CAUSES.get(name, "none of the patterns above")
        print(f"  {attributed[name]:4d} / {having:4d}  {name:20s} {text}")
    wgpu_deviates = {c.id for c in comparisons if set(causes[c.id]) & WGPU_SIDE}
    rest = [c for c in comparisons if c.id not in wgpu_deviates]
    share = sum(c.mad <= MATCH_MAD for c in rest) / max(1, len(rest))
    print(f"match within MAD {MATCH_MAD:g} among the {len(rest)} programs without a pattern where wgpu-shadertoy "
          f"is known to deviate: {100 * share:.1f} %")


def print_report(programs: list[SampleProgram], harvest: dict[str, Outcome], wgpu: dict[str, Outcome],
                 comparisons: list[Comparison], worst: int) -> float:
    tried = len(programs)
    both = len(comparisons)
    matching = sum(c.mad <= MATCH_MAD for c in comparisons)
    share = matching / both if both else 0.0
    for name, results in (("harvest", harvest), ("wgpu", wgpu)):
        counts = collections.Counter(outcome.status for outcome in results.values())
        print(f"rendered by {name}: {counts.get('ok', 0)} of {tried}  ("
              + ", ".join(f"{status} {n}" for status, n in counts.most_common()) + ")")
    print(f"rendered by both: {both}")
    print(f"match within MAD {MATCH_MAD:g}: {matching} of {both} = {100 * share:.1f} %  (target >= {100 * TARGET_SHARE:.0f} %)")
    mads = np.array([c.mad for c in comparisons]) if comparisons else np.zeros(1)
    print("MAD distribution: " + ", ".join(
        f"{p}th pct {np.percentile(mads, p):.2f}" for p in (50, 75, 90, 95, 99)))
    edges = (0.0,) + MAD_BUCKETS + (float("inf"),)
    for low, high in itertools.pairwise(edges):
        count = int(((mads > low) & (mads <= high)).sum()) + (int((mads == 0).sum()) if low == 0 else 0)
        label = f"({low:g}, {high:g}]" if low > 0 else f"[0, {high:g}]"
        print(f"  MAD {label:>12}: {count:5d}  {'#' * round(60 * count / max(1, both))}")
    print(f"{worst} worst (MAD, share of pixels off by > {VISIBLE_DIFFERENCE}):")
    for comparison in sorted(comparisons, key=lambda c: -c.mad)[:worst]:
        print(f"  {comparison.id}  MAD {comparison.mad:6.1f}  visible {100 * comparison.visible_share:5.1f} %")
    only_wgpu = sorted(k for k in wgpu if wgpu[k].status == "ok" and harvest[k].status != "ok")
    if only_wgpu:
        print("rendered by wgpu but not by harvest:")
        for key in only_wgpu:
            print(f"  {key}  {harvest[key].status}: {harvest[key].detail[:150]}")
    return share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300, help="a seeded random sample of this many programs")
    parser.add_argument("--all", action="store_true", help="every single-pass program without inputs")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per program and renderer")
    parser.add_argument("--wgpu-python", default=os.environ.get("HARVEST_WGPU_PYTHON", DEFAULT_WGPU_PYTHON))
    parser.add_argument("--png-dir", type=Path, default=Path(tempfile.gettempdir()) / "harvest-faithful",
                        help="side-by-side PNGs of the worst programs and results.jsonl go here")
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--only-mismatches", type=Path, metavar="RESULTS_JSONL",
                        help="rerun only the programs over MAD 3 in an earlier run's results.jsonl")
    args = parser.parse_args()

    samples = SHARED / "samples" / "shadertoy-flat"
    if not samples.is_dir():
        print(f"skipped: no shared samples under {samples}")
        return 0
    if not Path(args.wgpu_python).is_file():
        print(f"skipped: no wgpu-shadertoy python at {args.wgpu_python} (set --wgpu-python or HARVEST_WGPU_PYTHON)")
        return 0

    programs = single_pass_programs_without_inputs(samples)
    if args.only_mismatches:
        earlier = earlier_mismatches(args.only_mismatches)
        programs = [program for program in programs if program.id in earlier]
    elif not args.all and args.programs < len(programs):
        programs = sorted(random.Random(0).sample(programs, args.programs), key=lambda p: p.id)
    print(f"{len(programs)} single-pass programs without inputs, {SIZE}x{SIZE}, time 1.37 s, mouse 0, "
          f"iFrame 0, iTimeDelta 0.167, iDate 0; timeout {args.timeout:g} s")
    print(f"load before: {load()}")

    args.png_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harvest-faithful-") as tmp:
        folders = {name: Path(tmp) / name for name in ("harvest", "wgpu")}
        for folder in folders.values():
            folder.mkdir()
        # One single-threaded rasteriser per renderer: the two run side by side on the 2 cores.
        env = dict(os.environ, LP_NUM_THREADS="1", WGPU_FORCE_OFFSCREEN="true", FAITHFUL_SIZE=str(SIZE),
                   MESA_SHADER_CACHE_DIR=str(args.png_dir / "mesa-cache"))
        servers = {
            "harvest": SnapshotServer("harvest", [sys.executable, str(REPO / "bench" / "_harvest_snapshot.py")], env, args.timeout),
            "wgpu": SnapshotServer("wgpu", [args.wgpu_python, str(REPO / "bench" / "_wgpu_snapshot.py")], env, args.timeout),
        }
        try:
            problem = check_orientation(servers["harvest"], servers["wgpu"], Path(tmp))
            if problem:
                print(f"skipped: {problem}")
                return 0
            print("orientation: both renderers give top row first (probe gradient checked)")
            results: dict[str, dict[str, Outcome]] = {"harvest": {}, "wgpu": {}}
            progress: collections.Counter = collections.Counter()
            started = time.perf_counter()
            threads = [
                threading.Thread(target=render_all, args=(servers[name], programs, folders[name], results[name], progress), daemon=True)
                for name in servers
            ]
            for thread in threads:
                thread.start()
            while alive := [thread for thread in threads if thread.is_alive()]:
                alive[0].join(timeout=30.0)
                elapsed = time.perf_counter() - started
                print(f"  {elapsed:5.0f} s: harvest {progress['harvest']}/{len(programs)}, wgpu {progress['wgpu']}/{len(programs)}",
                      flush=True)
        finally:
            for server in servers.values():
                server.stop()
        seconds = time.perf_counter() - started

        comparisons = []
        for program in programs:
            if results["harvest"][program.id].status == "ok" and results["wgpu"][program.id].status == "ok":
                harvest_pixels = np.load(folders["harvest"] / f"{program.id}.npy")
                wgpu_pixels = np.load(folders["wgpu"] / f"{program.id}.npy")
                mad, visible = mean_absolute_difference(harvest_pixels, wgpu_pixels)
                comparisons.append(Comparison(program.id, mad, visible))
        by_id = {c.id: c for c in comparisons}
        from PIL import Image

        for comparison in sorted(comparisons, key=lambda c: -c.mad):
            if comparison.mad <= MATCH_MAD:
                break
            pixels = side_by_side(np.load(folders["harvest"] / f"{comparison.id}.npy"),
                                  np.load(folders["wgpu"] / f"{comparison.id}.npy"))
            Image.fromarray(pixels).save(args.png_dir / f"{comparison.id}.png")
        with open(args.png_dir / "results.jsonl", "w", encoding="utf-8") as out:
            for program in programs:
                comparison = by_id.get(program.id)
                out.write(json.dumps({
                    "id": program.id,
                    "harvest": results["harvest"][program.id].status, "harvest_detail": results["harvest"][program.id].detail,
                    "wgpu": results["wgpu"][program.id].status, "wgpu_detail": results["wgpu"][program.id].detail,
                    "mad": comparison.mad if comparison else None,
                    "visible_share": comparison.visible_share if comparison else None,
                }) + "\n")

    print(f"programs tried: {len(programs)} in {seconds:.0f} s   (load after: {load()})")
    print_report(programs, results["harvest"], results["wgpu"], comparisons, args.worst)
    print_causes(programs, comparisons)
    print(f"side-by-side PNGs (harvest | wgpu | difference x4) of every program over MAD {MATCH_MAD:g}, "
          f"and results.jsonl: {args.png_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
