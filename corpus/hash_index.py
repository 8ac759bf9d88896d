"""Pairs of 64-bit hash rows within a Hamming distance, found without comparing every row with every other.

Multi-index hashing: each 64-bit hash is cut into max_bits + 1 bands. Two hashes that differ in at most max_bits
bits cannot have a difference in every band, so they agree exactly on at least one band (pigeonhole). Rows are
bucketed by band value, only rows sharing a bucket are compared, and each comparison is exact, so the result is
the same as comparing all pairs. Work and memory grow with the number of rows plus the bucket pairs, and bucket
pairs are produced in bounded chunks, so even one bucket holding every row cannot exhaust memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

HASH_BITS = 64
# Bucket pairs handled per step: bounds the temporary arrays (a few tens of MB) whatever the bucket sizes.
CHUNK_PAIRS = 1 << 18
# Frames whose bands are combined into one bucket key. Two frames make buckets ~2^18 values wide instead of
# ~2^9; a third would multiply the tables by max_bits + 1 again for little gain.
KEY_FRAMES = 2

Pairs = tuple[np.ndarray, np.ndarray]


def band_layout(max_bits: int) -> list[tuple[int, int]]:
    """(shift, width) of max_bits + 1 contiguous bands covering the 64 bits, widths differing by at most one."""
    if not 0 <= max_bits < HASH_BITS:
        raise ValueError(f"max_bits must be between 0 and {HASH_BITS - 1}, not {max_bits}")
    count = max_bits + 1
    widths = [HASH_BITS // count + (1 if band < HASH_BITS % count else 0) for band in range(count)]
    shifts = [sum(widths[:band]) for band in range(count)]
    return list(zip(shifts, widths))


def chunked_repeat(counts: np.ndarray, max_pairs: int = CHUNK_PAIRS) -> Iterator[Pairs]:
    """For items with counts[i] outputs each, yields (item, offset) arrays listing every (i, 0..counts[i]-1), in
    chunks of about max_pairs (an item is never split, so a chunk holds at least one item)."""
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        before = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, before + max_pairs, side="right")))
        chunk = counts[start:stop]
        total = int(chunk.sum())
        if total:
            items = np.repeat(np.arange(start, stop), chunk)
            offsets = np.arange(total) - np.repeat(np.cumsum(chunk) - chunk, chunk)
            yield items, offsets
        start = stop


def run_pairs(sorted_keys: np.ndarray, max_pairs: int = CHUNK_PAIRS) -> Iterator[Pairs]:
    """Every pair of positions i < j with sorted_keys[i] == sorted_keys[j], once, in chunks."""
    size = len(sorted_keys)
    if size < 2:
        return
    starts = np.concatenate(([0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1))
    run_end = np.repeat(np.append(starts[1:], size), np.diff(np.append(starts, size)))
    later = run_end - np.arange(size) - 1  # partners after each position inside its run
    for positions, offsets in chunked_repeat(later, max_pairs):
        yield positions, positions + 1 + offsets


def _band_values(column: np.ndarray, band: tuple[int, int]) -> np.ndarray:
    shift, width = band
    return (column >> np.uint64(shift)) & np.uint64((1 << width) - 1)


def _first_equal_band(xor: np.ndarray, bands: list[tuple[int, int]]) -> np.ndarray:
    """Index of the first band in which two hashes agree, per pair, given their XOR."""
    return np.argmax(np.stack([_band_values(xor, band) == 0 for band in bands], axis=1), axis=1)


def _table_key(hashes: np.ndarray, choice: tuple[int, ...], bands: list[tuple[int, int]]) -> np.ndarray:
    key = np.zeros(len(hashes), dtype=np.uint64)
    for frame, band in enumerate(choice):
        key = (key << np.uint64(bands[band][1])) | _band_values(hashes[:, frame], bands[band])
    return key


def near_hash_pairs(hashes: np.ndarray, max_bits: int, max_pairs: int = CHUNK_PAIRS) -> Iterator[Pairs]:
    """Row pairs (u < v) of a rows × frames uint64 array whose hashes differ in at most max_bits bits in every
    frame, each pair exactly once, in chunks. Rows should be distinct: equal rows all share every bucket."""
    hashes = np.asarray(hashes, dtype=np.uint64).reshape(len(hashes), -1)
    bands = band_layout(max_bits)
    key_frames = min(hashes.shape[1], KEY_FRAMES)
    for choice in itertools.product(range(len(bands)), repeat=key_frames):
        key = _table_key(hashes, choice, bands)
        order = np.argsort(key, kind="stable")
        for left, right in run_pairs(key[order], max_pairs):
            u, v = order[left], order[right]
            xor = hashes[u] ^ hashes[v]
            within = (np.bitwise_count(xor) <= max_bits).all(axis=1)
            u, v, xor = u[within], v[within], xor[within]
            # A pair agrees on several bands: report it only from the table of its first agreeing bands.
            first = np.ones(len(u), dtype=bool)
            for frame, band in enumerate(choice):
                first &= _first_equal_band(xor[:, frame], bands) == band
            u, v = u[first], v[first]
            yield np.minimum(u, v), np.maximum(u, v)
