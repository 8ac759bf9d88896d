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

`--multipass` compares the 2022 API samples' programs with Buffer A-D passes instead: each is simulated
from frame 0 on both sides (iFrame n, iTime n/60, iTimeDelta 1/60, mouse 0; harvest's side is what
`harvest render --frame N` draws) and compared at frames 0, 9 and 59, each frame reported on its own.
Only programs whose channels read buffers and the keyboard are compared (bench/_faithful_multipass.py
says why); results.jsonl then has each program's MAD per frame.

    python bench/faithful.py [--programs N | --all] [--multipass] [--timeout S] [--png-dir /tmp/harvest-faithful]
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
from collections.abc import Callable
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
        return self.ask({"key": key, "code": code, "out": str(out)}, timeout_s)

    def ask(self, request: dict, timeout_s: float | None = None) -> Outcome:
        """Send one request (see the protocol in bench/_harvest_snapshot.py) and wait for its answer."""
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        line = json.dumps(request) + "\n"
        try:
            self._process.stdin.write(line)
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


def print_causes(causes: dict[str, list[str]], comparisons: list[Comparison], texts: dict[str, str],
                 wgpu_side: frozenset[str]) -> None:
    """Attribute each mismatch to the first likely cause found in its code (bench/_faithful_causes.py)."""
    mismatches = [c for c in comparisons if c.mad > MATCH_MAD]
    attributed = collections.Counter(causes[c.id][0] if causes[c.id] else "unexplained" for c in mismatches)
    print(f"likely causes of the {len(mismatches)} mismatches (first pattern found in the code; "
          "with / among all programs both render):")
    for name in list(texts) + ["unexplained"]:
        having = sum(name in causes[c.id] for c in comparisons) if name in texts else attributed[name]
        text = texts.get(name, "none of the patterns above")
        print(f"  {attributed[name]:4d} / {having:4d}  {name:20s} {text}")
    wgpu_deviates = {c.id for c in comparisons if set(causes[c.id]) & wgpu_side}
    rest = [c for c in comparisons if c.id not in wgpu_deviates]
    share = sum(c.mad <= MATCH_MAD for c in rest) / max(1, len(rest))
    print(f"match within MAD {MATCH_MAD:g} among the {len(rest)} programs without a pattern where wgpu-shadertoy "
          f"is known to deviate: {100 * share:.1f} %")


def print_outcomes(tried: int, harvest: dict[str, Outcome], wgpu: dict[str, Outcome]) -> None:
    for name, results in (("harvest", harvest), ("wgpu", wgpu)):
        counts = collections.Counter(outcome.status for outcome in results.values())
        print(f"rendered by {name}: {counts.get('ok', 0)} of {tried}  ("
              + ", ".join(f"{status} {n}" for status, n in counts.most_common()) + ")")
    only_wgpu = sorted(k for k in wgpu if wgpu[k].status == "ok" and harvest[k].status != "ok")
    if only_wgpu:
        print("rendered by wgpu but not by harvest:")
        for key in only_wgpu:
            print(f"  {key}  {harvest[key].status}: {harvest[key].detail[:150]}")


def print_comparisons(comparisons: list[Comparison], worst: int) -> float:
    both = len(comparisons)
    matching = sum(c.mad <= MATCH_MAD for c in comparisons)
    share = matching / both if both else 0.0
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
    return share


def compare(ids: list[str], results: dict[str, dict[str, Outcome]], files: dict[str, Callable[[str], Path]],
            png_dir: Path, png_name: Callable[[str], str]) -> list[Comparison]:
    """Compare what both renderers drew; save harvest | wgpu | difference of every mismatch as a PNG."""
    from PIL import Image

    comparisons = []
    for key in ids:
        if results["harvest"][key].status != "ok" or results["wgpu"][key].status != "ok":
            continue
        harvest_pixels, wgpu_pixels = np.load(files["harvest"](key)), np.load(files["wgpu"](key))
        mad, visible = mean_absolute_difference(harvest_pixels, wgpu_pixels)
        comparisons.append(Comparison(key, mad, visible))
        if mad > MATCH_MAD:
            Image.fromarray(side_by_side(harvest_pixels, wgpu_pixels)).save(png_dir / png_name(key))
    return comparisons


def make_servers(args: argparse.Namespace) -> dict[str, SnapshotServer]:
    # One single-threaded rasteriser per renderer: the two run side by side on the 2 cores.
    env = dict(os.environ, LP_NUM_THREADS="1", WGPU_FORCE_OFFSCREEN="true", FAITHFUL_SIZE=str(SIZE),
               MESA_SHADER_CACHE_DIR=str(args.png_dir / "mesa-cache"),
               # wgpu-shadertoy makes a media cache folder even when it downloads nothing.
               XDG_CACHE_HOME=str(args.png_dir / "cache"))
    return {
        "harvest": SnapshotServer("harvest", [sys.executable, str(REPO / "bench" / "_harvest_snapshot.py")], env, args.timeout),
        "wgpu": SnapshotServer("wgpu", [args.wgpu_python, str(REPO / "bench" / "_wgpu_snapshot.py")], env, args.timeout),
    }


Task = Callable[[SnapshotServer, Path, dict[str, Outcome], collections.Counter], None]


def run_side_by_side(args: argparse.Namespace, task: Task, total: int,
                     folders: dict[str, Path]) -> tuple[dict[str, dict[str, Outcome]], float] | None:
    """Both renderers work through `task` at once, each in its own thread; None when either cannot draw."""
    servers = make_servers(args)
    results: dict[str, dict[str, Outcome]] = {"harvest": {}, "wgpu": {}}
    try:
        problem = check_orientation(servers["harvest"], servers["wgpu"], folders["harvest"].parent)
        if problem:
            print(f"skipped: {problem}")
            return None
        print("orientation: both renderers give top row first (probe gradient checked)")
        progress: collections.Counter = collections.Counter()
        started = time.perf_counter()
        threads = [threading.Thread(target=task, args=(servers[name], folders[name], results[name], progress), daemon=True)
                   for name in servers]
        for thread in threads:
            thread.start()
        while alive := [thread for thread in threads if thread.is_alive()]:
            alive[0].join(timeout=30.0)
            print(f"  {time.perf_counter() - started:5.0f} s: harvest {progress['harvest']}/{total}, "
                  f"wgpu {progress['wgpu']}/{total}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return results, time.perf_counter() - started


def write_results(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


def outcome_row(key: str, results: dict[str, dict[str, Outcome]]) -> dict:
    harvest, wgpu = results["harvest"][key], results["wgpu"][key]
    return {"id": key, "harvest": harvest.status, "harvest_detail": harvest.detail,
            "wgpu": wgpu.status, "wgpu_detail": wgpu.detail}


def chosen(items: list, args: argparse.Namespace) -> list:
    """`items` (each with an `id`): all, an earlier run's mismatches, or a seeded sample, by id."""
    if args.only_mismatches:
        earlier = earlier_mismatches(args.only_mismatches)
        return [item for item in items if item.id in earlier]
    if not args.all and args.programs < len(items):
        return sorted(random.Random(0).sample(items, args.programs), key=lambda item: item.id)
    return items


def run_single_pass(args: argparse.Namespace, tmp: Path) -> int:
    from _faithful_causes import CAUSES, WGPU_SIDE, likely_causes

    programs = chosen(single_pass_programs_without_inputs(SHARED / "samples" / "shadertoy-flat"), args)
    print(f"{len(programs)} single-pass programs without inputs, {SIZE}x{SIZE}, time 1.37 s, mouse 0, "
          f"iFrame 0, iTimeDelta 0.167, iDate 0; timeout {args.timeout:g} s")
    print(f"load before: {load()}")
    folders = {name: tmp / name for name in ("harvest", "wgpu")}

    def task(server: SnapshotServer, folder: Path, results: dict[str, Outcome], progress: collections.Counter) -> None:
        render_all(server, programs, folder, results, progress)

    ran = run_side_by_side(args, task, len(programs), folders)
    if ran is None:
        return 0
    results, seconds = ran
    files = {name: (lambda key, folder=folder: folder / f"{key}.npy") for name, folder in folders.items()}
    ids = [program.id for program in programs]
    comparisons = compare(ids, results, files, args.png_dir, lambda key: f"{key}.png")
    by_id = {c.id: c for c in comparisons}
    write_results(args.png_dir / "results.jsonl", [
        {**outcome_row(key, results), "mad": by_id[key].mad if key in by_id else None,
         "visible_share": by_id[key].visible_share if key in by_id else None} for key in ids])
    print(f"programs tried: {len(programs)} in {seconds:.0f} s   (load after: {load()})")
    print_outcomes(len(programs), results["harvest"], results["wgpu"])
    print_comparisons(comparisons, args.worst)
    print_causes({p.id: likely_causes(p.code) for p in programs}, comparisons, CAUSES, WGPU_SIDE)
    print(f"side-by-side PNGs (harvest | wgpu | difference x4) of every program over MAD {MATCH_MAD:g}, "
          f"and results.jsonl: {args.png_dir}")
    return 0


def run_multipass(args: argparse.Namespace, tmp: Path) -> int:
    from _faithful_causes import CAUSES, MULTIPASS_CAUSES, MULTIPASS_WGPU_SIDE
    from _faithful_multipass import (
        FRAMES,
        causes_at,
        describe_selection,
        frame_file,
        multipass_samples,
        simulation_request,
    )

    selection = multipass_samples(SHARED / "samples" / "shadertoy-api")
    print(describe_selection(selection))
    samples = chosen(selection.samples, args)
    print(f"{len(samples)} multi-pass programs, {SIZE}x{SIZE}, simulated from frame 0 (iFrame n, iTime n/60, "
          f"iTimeDelta 1/60, mouse 0), compared at frames {', '.join(map(str, FRAMES))}; timeout {args.timeout:g} s")
    print(f"load before: {load()}")
    folders = {name: tmp / name for name in ("harvest", "wgpu")}

    def task(server: SnapshotServer, folder: Path, results: dict[str, Outcome], progress: collections.Counter) -> None:
        for sample in samples:
            results[sample.id] = server.ask(simulation_request(sample, folder))
            progress[server.name] += 1

    ran = run_side_by_side(args, task, len(samples), folders)
    if ran is None:
        return 0
    results, seconds = ran
    ids = [sample.id for sample in samples]
    print(f"programs tried: {len(samples)} in {seconds:.0f} s   (load after: {load()})")
    print_outcomes(len(samples), results["harvest"], results["wgpu"])
    mads: dict[str, dict[int, float]] = collections.defaultdict(dict)
    texts = {**CAUSES, **MULTIPASS_CAUSES}
    for frame in FRAMES:
        files = {name: (lambda key, folder=folder, frame=frame: frame_file(folder, key, frame)) for name, folder in folders.items()}
        comparisons = compare(ids, results, files, args.png_dir, lambda key, frame=frame: f"{key}-f{frame}.png")
        for comparison in comparisons:
            mads[comparison.id][frame] = comparison.mad
        print(f"--- frame {frame} ---")
        print_comparisons(comparisons, args.worst)
        print_causes({s.id: causes_at(s, frame) for s in samples}, comparisons, texts, MULTIPASS_WGPU_SIDE)
    write_results(args.png_dir / "results.jsonl", [
        {**outcome_row(s.id, results), "causes": list(s.causes), "mads": mads.get(s.id, {}),
         "mad": max(mads[s.id].values()) if mads.get(s.id) else None} for s in samples])
    print(f"side-by-side PNGs (ID-fFRAME.png: harvest | wgpu | difference x4) of every frame over MAD {MATCH_MAD:g}, "
          f"and results.jsonl: {args.png_dir}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300, help="a seeded random sample of this many programs")
    parser.add_argument("--all", action="store_true", help="every program of the kind compared")
    parser.add_argument("--multipass", action="store_true",
                        help="the 2022 API samples' Buffer A-D programs, at frames 0, 9 and 59 of their simulation")
    parser.add_argument("--timeout", type=float, help="seconds per program and renderer (default 15; 120 with --multipass)")
    parser.add_argument("--wgpu-python", default=os.environ.get("HARVEST_WGPU_PYTHON", DEFAULT_WGPU_PYTHON))
    parser.add_argument("--png-dir", type=Path, default=Path(tempfile.gettempdir()) / "harvest-faithful",
                        help="side-by-side PNGs of the mismatches and results.jsonl go here")
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--only-mismatches", type=Path, metavar="RESULTS_JSONL",
                        help="rerun only the programs over MAD 3 in an earlier run's results.jsonl")
    args = parser.parse_args()
    if args.timeout is None:
        args.timeout = 120.0 if args.multipass else 15.0

    samples = SHARED / "samples" / ("shadertoy-api" if args.multipass else "shadertoy-flat")
    if not samples.is_dir():
        print(f"skipped: no shared samples under {samples}")
        return 0
    if not Path(args.wgpu_python).is_file():
        print(f"skipped: no wgpu-shadertoy python at {args.wgpu_python} (set --wgpu-python or HARVEST_WGPU_PYTHON)")
        return 0
    args.png_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harvest-faithful-") as tmp:
        for name in ("harvest", "wgpu"):
            (Path(tmp) / name).mkdir()
        run = run_multipass if args.multipass else run_single_pass
        return run(args, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
