"""Image near-duplicate pairs: every frame's hashes within a Hamming distance and every frame's mean colours
within a per-channel gap, found in time and memory that grow with the programs plus the alike pairs.

Programs with identical hashes in every frame are grouped first, so a crowd of equal hashes (flat or template
pictures) is one row of the hash search. Pairs of distinct hash rows come from the banded search in
corpus.hash_index; inside a group the hashes already agree and only the colours decide. A group whose colours all
lie within the gap of each other is returned as a clique, not as its pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from corpus.hash_index import (
    CHUNK_PAIRS,
    Pairs,
    chunked_repeat,
    near_hash_pairs,
    run_pairs,
)
from corpus.links import Links


def _colours_alike(colours: np.ndarray, a: np.ndarray, b: np.ndarray, max_colour: float) -> np.ndarray:
    return (np.abs(colours[a] - colours[b]) <= max_colour).all(axis=(1, 2))


def _group_ranges_fit(colours_by_group: np.ndarray, starts: np.ndarray, max_colour: float) -> np.ndarray:
    """Per group: whether every member pair's colour gap is within max_colour. Rounding is monotonic, so the
    largest rounded gap is the one between the channel's extremes, and max - min decides exactly."""
    if colours_by_group.size == 0:
        return np.ones(len(starts), dtype=bool)
    spread = np.maximum.reduceat(colours_by_group, starts) - np.minimum.reduceat(colours_by_group, starts)
    return (spread <= max_colour).all(axis=(1, 2))


def _cross_group_pairs(rows: Pairs, starts: np.ndarray, sizes: np.ndarray, order: np.ndarray,
                       max_pairs: int) -> Iterator[Pairs]:
    """Every (member of group u, member of group v) for the given group pairs, in chunks."""
    u, v = rows
    for index, offset in chunked_repeat(sizes[u] * sizes[v], max_pairs):
        width = sizes[v[index]]
        yield (order[starts[u[index]] + offset // width], order[starts[v[index]] + offset % width])


def alike_links(ids: list[int], hashes: np.ndarray, colours: np.ndarray, max_bits: int, max_colour: float,
                max_pairs: int = CHUNK_PAIRS) -> Links:
    """ids sorted ascending; hashes: programs × frames uint64; colours: programs × frames × 3 float."""
    if len(ids) < 2:
        return Links.of([], [])
    id_array = np.asarray(ids, dtype=np.int64)
    unique_rows, group = np.unique(hashes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group, minlength=len(unique_rows))
    starts = np.cumsum(sizes) - sizes
    clique = _group_ranges_fit(colours[order], starts, max_colour) & (sizes >= 2)
    cliques = [tuple(id_array[np.sort(order[s : s + n])].tolist()) for s, n in zip(starts[clique], sizes[clique])]

    found: list[np.ndarray] = []

    def keep(a: np.ndarray, b: np.ndarray) -> None:
        alike = _colours_alike(colours, a, b, max_colour)
        a, b = a[alike], b[alike]
        found.append(np.stack([id_array[np.minimum(a, b)], id_array[np.maximum(a, b)]], axis=1))

    open_members = order[np.repeat(~clique, sizes)]  # still sorted by group
    for left, right in run_pairs(group[open_members], max_pairs):
        keep(open_members[left], open_members[right])
    for rows in near_hash_pairs(unique_rows, max_bits, max_pairs):
        for a, b in _cross_group_pairs(rows, starts, sizes, order, max_pairs):
            keep(a, b)
    return Links.of(cliques, found)
