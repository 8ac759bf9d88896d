"""Benchmark of the image near-duplicate pair search: seconds and peak RSS, dense against banded.

Synthetic programs (no rendering): 2 frames each, 64-bit hashes drawn either like real frames' hashes
(`real-like`, see _frame_bits) or crowded on purpose (`crowded`), mean colours mostly dark as real ones are.
Near duplicates by construction: 15 % are variants of an earlier program (0-8 bits flipped per
frame, colours moved up to 0.12), 3 % share one fade-in first frame (same hash, black), 1 % are one template
(identical signature). Each measurement runs in its own process, so its peak RSS is its own. The dense search (the
former n x n implementation, kept in tests/test_dedup.py as the reference) runs only where it fits; where both
run, the pairs must be the same.

    python bench/dedup.py [--sizes 3000 30000] [--dense-max 3000] [--bits real-like crowded] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FRAMES = 2
VARIANTS, FADE_IN, TEMPLATE = 0.15, 0.03, 0.01


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _pack(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def _frame_bits(rng: np.random.Generator, size: int, crowded: bool) -> np.ndarray:
    """size x FRAMES x 64 hash bits.

    real-like: calibrated so the banded search meets about as many candidates per pair as on 352 real shared
    programs' frames (306 there, 30 times as many as uniform random bits give): first frames in eight loose
    families of pictures (bits 10 % off a family's), a third of programs nearly still (second frame 15 % off the
    first), the others' second frame unrelated. crowded: every bit position strongly biased (Beta(0.4, 0.4)
    odds), about 90 times as many candidates again: a stress case, not a likely catalog.
    """
    if crowded:
        return rng.random((size, FRAMES, 64)) < rng.beta(0.4, 0.4, size=(FRAMES, 64))
    bits = rng.random((size, FRAMES, 64)) < 0.5
    families = rng.random((8, 64)) < 0.5
    bits[:, 0] = families[rng.integers(0, 8, size)] ^ (rng.random((size, 64)) < 0.1)
    still = rng.random(size) < 0.35
    bits[still, 1] = bits[still, 0] ^ (rng.random((int(still.sum()), 64)) < 0.15)
    return bits


def synthetic_arrays(size: int, seed: int, crowded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """hashes (size x FRAMES uint64) and mean colours (size x FRAMES x 3) with near duplicates built in."""
    rng = np.random.default_rng(seed)
    hashes = _pack(_frame_bits(rng, size, crowded))
    colours = rng.beta(1.2, 2.2, size=(size, FRAMES, 3))  # real frames are mostly dark: median 0.33
    variants = np.flatnonzero(rng.random(size) < VARIANTS)
    variants = variants[variants > 0]
    sources = (rng.random(len(variants)) * variants).astype(np.int64)
    flips = np.uint64(1) << rng.integers(0, 64, size=(len(variants), FRAMES, 8)).astype(np.uint64)
    active = np.arange(8) < rng.integers(0, 9, size=(len(variants), FRAMES, 1))
    hashes[variants] = hashes[sources] ^ np.bitwise_xor.reduce(np.where(active, flips, np.uint64(0)), axis=2)
    colours[variants] = colours[sources] + rng.uniform(-0.12, 0.12, size=(len(variants), FRAMES, 3))
    fade_in = rng.random(size) < FADE_IN
    hashes[fade_in, 0], colours[fade_in, 0] = np.uint64(1 << 63), 0.0
    template = rng.random(size) < TEMPLATE
    hashes[template], colours[template] = hashes[0], colours[0]
    return hashes, colours


def _signatures(size: int, seed: int, crowded: bool) -> dict:
    from corpus.dedup import ImageSignature

    hashes, colours = synthetic_arrays(size, seed, crowded)
    return {pid: ImageSignature(tuple(hashes[pid].tolist()), tuple(map(tuple, colours[pid].tolist())))
            for pid in range(size)}


def measure(method: str, size: int, seed: int, crowded: bool) -> dict:
    """One search in this process: seconds, peak RSS before and after, pair count and a digest of the pairs."""
    from corpus.dedup import image_links
    from tests.test_dedup import dense_image_pairs

    signatures = _signatures(size, seed, crowded)
    before = _peak_rss_mb()
    started = time.perf_counter()
    if method == "dense":
        pairs = dense_image_pairs(signatures)
        count = len(pairs)
    else:
        links = image_links(signatures)
        count = links.count()
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    if method != "dense":
        pairs = links.all_pairs() if size <= 10_000 else []  # expanding is for the comparison only
    digest = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16] if pairs else ""
    return {"method": method, "programs": size, "seconds": round(seconds, 2), "rss_before_mb": round(before),
            "peak_rss_mb": round(peak), "pairs": count, "digest": digest}


def _child(method: str, size: int, seed: int, bits: str) -> dict:
    command = [sys.executable, __file__, "--child", method, str(size), "--seed", str(seed), "--bits", bits]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--dense-max", type=int, default=3000, help="largest size the dense search runs at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bits", choices=["real-like", "crowded"], nargs="+", default=["real-like", "crowded"])
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.seed, args.bits == ["crowded"])))
        return 0
    print("| hash bits | programs | search | seconds | RSS before search | peak RSS | pairs |")
    print("|---|---|---|---|---|---|---|")
    for bits in args.bits:
        for size in args.sizes:
            if not _report(bits, size, args.seed, size <= args.dense_max):
                return 1
    return 0


def _report(bits: str, size: int, seed: int, with_dense: bool) -> bool:
    """Prints the rows for one size; False when banded and dense disagree."""
    rows = [_child("banded", size, seed, bits)] + ([_child("dense", size, seed, bits)] if with_dense else [])
    for row in rows:
        print(f"| {bits} | {size:,} | {row['method']} | {row['seconds']} | {row['rss_before_mb']} MB | "
              f"{row['peak_rss_mb']} MB | {row['pairs']:,} |")
    if not with_dense:
        # The dense search's colour gap alone is an n x n x 3 float64 array.
        print(f"| {bits} | {size:,} | dense | not run: needs over {size * size * 3 * 8 / 2**30:.0f} GiB | | | |")
    if with_dense and rows[0]["digest"] != rows[1]["digest"]:
        print(f"MISMATCH: {bits} hashes, {size} programs: banded and dense pairs differ")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
