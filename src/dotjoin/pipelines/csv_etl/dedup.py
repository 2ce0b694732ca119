"""Exact streaming deduplication by 128-bit key digests: the first occurrence of a key wins.

:class:`FirstSeen` remembers, for every key digest seen so far in a file, the line of its first
occurrence, in memory that grows by 24 bytes per distinct key (about 230 MB for 10 million keys)
and never holds the keys themselves. Digests are kept in runs sorted by their first 64 bits; a new
run merges (linearly) into the previous one while that is at most twice as long, up to
:data:`MAX_RUN` keys, so a file of n keys costs O(n log n) and a merge never needs more than
~100 MB of extra memory. Two keys are equal only when both 64-bit halves of their MurmurHash3 x64
128-bit digests are: a false duplicate needs a 128-bit collision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dotjoin.pipelines.csv_etl.transforms import hash_words

logger = logging.getLogger(__name__)

#: Runs stop merging at this many keys, so a merge never doubles a big share of the memory at once.
MAX_RUN = 1 << 21


@dataclass
class _Run:
    hi: np.ndarray
    lo: np.ndarray
    line: np.ndarray

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The first line of each (hi, lo) in this run, or -1."""
        out = np.full(len(hi), -1, dtype=np.int64)
        if not len(self):
            return out
        pos = np.searchsorted(self.hi, hi)
        clipped = np.minimum(pos, len(self) - 1)
        same_hi = self.hi[clipped] == hi
        exact = same_hi & (self.lo[clipped] == lo)
        out[exact] = self.line[clipped[exact]]
        for i in np.flatnonzero(same_hi & ~exact):  # a 64-bit collision of hi: look along the run
            j = int(pos[i])
            while j < len(self) and self.hi[j] == hi[i]:
                if self.lo[j] == lo[i]:
                    out[i] = self.line[j]
                    break
                j += 1
        return out


def _sorted_run(hi: np.ndarray, lo: np.ndarray, line: np.ndarray) -> _Run:
    order = np.argsort(hi, kind="stable")
    return _Run(hi[order], lo[order], line[order])


def _merge(a: _Run, b: _Run) -> _Run:
    """Merge two runs sorted by ``hi`` in linear time (no re-sort)."""
    at = np.searchsorted(a.hi, b.hi, side="right") + np.arange(len(b))
    from_a = np.ones(len(a) + len(b), dtype=bool)
    from_a[at] = False
    out = []
    for x, y in ((a.hi, b.hi), (a.lo, b.lo), (a.line, b.line)):
        merged = np.empty(len(a) + len(b), dtype=x.dtype)
        merged[from_a], merged[at] = x, y
        out.append(merged)
    return _Run(*out)


class FirstSeen:
    """Which keys of a stream are first occurrences, and where each key first occurred.

    >>> from dotjoin.pipelines.csv_etl.transforms import hash128
    >>> seen = FirstSeen()
    >>> seen.add(hash128(pa.array(["a", "b", "a"])), np.array([2, 3, 5])).tolist()
    [-1, -1, 2]
    >>> seen.add(hash128(pa.array(["b", "c"])), np.array([7, 8])).tolist()
    [3, -1]
    >>> len(seen)
    3
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return sum(r.hi.nbytes + r.lo.nbytes + r.line.nbytes for r in self._runs)

    def add(self, digests: pa.Array, lines: np.ndarray) -> np.ndarray:
        """Add a chunk's key digests (in file order) with their lines.

        Returns:
            Per row, -1 for a first occurrence, else the line of the key's first occurrence.
        """
        hi, lo = hash_words(digests)
        lines = np.asarray(lines, dtype=np.int64)
        # Sort the chunk by key (stable, so by line within a key): lookups in the sorted runs are then
        # cache-friendly, and a row equal to its predecessor repeats the first row of its group.
        order = np.argsort(hi, kind="stable")
        h, low = hi[order], lo[order]
        if ((h[1:] == h[:-1]) & (low[1:] != low[:-1])).any():  # two keys share 64 bits: use both
            order = np.lexsort((lines, lo, hi))
            h, low = hi[order], lo[order]
        found = np.full(len(h), -1, dtype=np.int64)
        for run in self._runs:
            found = np.where(found < 0, run.find(h, low), found)
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (h[1:] == h[:-1]) & (low[1:] == low[:-1])
        group_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(order))))
        leader = lines[order][group_start]
        found = np.where((found < 0) & repeat, leader, found)
        first_line = np.empty(len(hi), dtype=np.int64)
        first_line[order] = found
        new = first_line < 0
        if new.any():
            self._push(_sorted_run(hi[new], lo[new], lines[new]))
            self._count += int(new.sum())
        return first_line

    def _push(self, run: _Run) -> None:
        self._runs.append(run)
        while (
            len(self._runs) > 1
            and len(self._runs[-2]) <= 2 * len(self._runs[-1])
            and len(self._runs[-2]) + len(self._runs[-1]) <= MAX_RUN
        ):
            top, below = self._runs.pop(), self._runs.pop()
            self._runs.append(_merge(below, top))
