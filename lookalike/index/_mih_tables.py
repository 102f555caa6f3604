"""The substring tables of :class:`~lookalike.index.mih.MultiIndexHashIndex`: built from the codes, probed by
value; and the bit helpers both sides use (a code's substring, every value at a given Hamming weight)."""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np


@lru_cache(maxsize=256)
def weight_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit value with exactly ``radius`` bits set, uint32, ascending."""
    values = [sum(1 << b for b in bits) for bits in combinations(range(width), radius)]
    return np.sort(np.asarray(values, dtype=np.uint32))


class Tables:
    """The m direct-address tables over the codes as they were at build time (``build rows``)."""

    def __init__(self, codes: np.ndarray, m: int) -> None:
        n, nbytes = codes.shape
        n_bits = nbytes * 8
        base, extra = divmod(n_bits, m)
        self.widths = [base + (1 if t < extra else 0) for t in range(m)]
        self.starts = np.cumsum([0, *self.widths[:-1]]).tolist()
        self.n = n
        self.offsets: list[np.ndarray] = []  # per table: (2**width + 1,) int32, views of all_offsets
        self.members: list[np.ndarray] = []  # per table: (n,) int32 build rows ordered by substring value
        self.all_offsets = np.zeros(sum((1 << w) + 1 for w in self.widths), dtype=np.int32)
        self.all_members = np.empty(n * m, dtype=np.int32)
        self.offset_base = np.zeros(m, np.int64)
        self.member_base = np.arange(m, dtype=np.int64) * n
        at = 0
        for t in range(m):
            values = substrings(codes, self.starts[t], self.widths[t])
            offsets = self.all_offsets[at : at + (1 << self.widths[t]) + 1]
            np.cumsum(np.bincount(values, minlength=1 << self.widths[t]), out=offsets[1:])
            members = self.all_members[t * n : (t + 1) * n]
            members[...] = np.argsort(values, kind="stable")
            self.offset_base[t] = at
            at += len(offsets)
            self.offsets.append(offsets)
            self.members.append(members)
        # Each table's members' codes in bucket order: the probe reads a bucket's codes in sequence instead of
        # every row's own code at random (m copies of the codes: 24 bytes an item at 64 bits, m = 3).
        self.member_codes = codes[self.all_members] if n else np.empty((0, nbytes), np.uint8)
        self.widths_array = np.asarray(self.widths, np.int32)
        self.starts_array = np.asarray(self.starts, np.int32)

    def probe(self, t: int, values: np.ndarray) -> np.ndarray:
        """The build rows whose substring ``t`` is any of ``values`` (distinct), int64."""
        offsets = self.offsets[t]
        lo, hi = offsets[values], offsets[values.astype(np.int64) + 1]
        sizes = hi - lo
        total = int(sizes.sum())
        if not total:
            return np.empty(0, np.int64)
        nonzero = sizes > 0
        lo, sizes = lo[nonzero], sizes[nonzero]
        steps = np.ones(total, dtype=np.int64)
        steps[0] = lo[0]
        ends = np.cumsum(sizes)[:-1]
        steps[ends] = lo[1:] - (lo[:-1] + sizes[:-1]) + 1
        return self.members[t][np.cumsum(steps)].astype(np.int64)

    @property
    def nbytes(self) -> int:
        return self.all_offsets.nbytes + self.all_members.nbytes + self.member_codes.nbytes


def substrings(codes: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start + width) of every code (bit i of a code is bit i % 8 of byte i // 8), uint32."""
    first, last = start // 8, (start + width - 1) // 8
    value = np.zeros(len(codes), dtype=np.uint64)
    for i, byte in enumerate(range(first, last + 1)):
        value |= codes[:, byte].astype(np.uint64) << np.uint64(8 * i)
    value >>= np.uint64(start - 8 * first)
    return (value & np.uint64((1 << width) - 1)).astype(np.uint32)
