"""A compact set of alike program pairs: groups whose members are all pairwise alike, plus single pairs.

Thousands of programs can share one signature (forks of a template, the same picture); listing each of their
pairs would take memory quadratic in the group, while clustering only needs to know that they are connected.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Links:
    """cliques: groups of program ids, every pair inside a group alike. pairs: (k, 2) int64 array of other alike
    pairs (a < b), none of them inside a clique."""

    cliques: tuple[tuple[int, ...], ...]
    pairs: np.ndarray

    @classmethod
    def of(cls, cliques: list[tuple[int, ...]], pairs: list[np.ndarray] | np.ndarray) -> Links:
        stacked = np.concatenate(pairs) if isinstance(pairs, list) and pairs else pairs
        return cls(tuple(cliques), np.asarray(stacked, dtype=np.int64).reshape(-1, 2))

    def count(self) -> int:
        """How many alike pairs there are in all."""
        return sum(len(c) * (len(c) - 1) // 2 for c in self.cliques) + len(self.pairs)

    def all_pairs(self) -> list[tuple[int, int]]:
        """Every alike pair (a < b), sorted. Quadratic in the clique sizes: for checks and small sets."""
        inside = [np.array(np.triu_indices(len(c), k=1)).T for c in self.cliques]
        listed = [np.asarray(c, dtype=np.int64)[index] for c, index in zip(self.cliques, inside)]
        every = np.concatenate([self.pairs, *listed]) if listed else self.pairs
        every = every[np.lexsort((every[:, 1], every[:, 0]))]
        return [(a, b) for a, b in every.tolist()]

    def spanning(self) -> Iterator[tuple[int, int]]:
        """Enough pairs to connect what the full set connects, touching every program the full set touches:
        each clique as a chain, then the single pairs."""
        for clique in self.cliques:
            yield from itertools.pairwise(clique)
        yield from map(tuple, self.pairs.tolist())
