"""The index over every catalogue image's local descriptors: candidate images by descriptor votes.

All descriptors of all described items live in one :class:`~lookalike.index.MultiIndexHashIndex` (exact Hamming
k-NN by multi-index hashing on 256-bit codes; below 50k codes, or when probing would cost more, it answers by the
compiled scan, with the same answer). Each descriptor has its own int64 id (ids are never reused), mapped to its
item's key. A query descriptor's ``knn`` nearest descriptors within ``max_distance`` bits vote, at most once per
item, for their items; the items with the most votes are the candidates that :mod:`.verify` checks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..index.mih import MultiIndexHashIndex
from .features import BYTES, LocalFeatures

__all__ = ["DescriptorIndex", "brute_force_votes", "votes_from"]


def votes_from(distances: np.ndarray, owners: np.ndarray, max_distance: int) -> dict[int, int]:
    """item key → number of query descriptors with at least one neighbour of that item within ``max_distance``."""
    votes: dict[int, int] = {}
    for d_row, o_row in zip(distances, owners, strict=True):
        for key in {int(o) for d, o in zip(d_row, o_row, strict=True) if o >= 0 and d <= max_distance}:
            votes[key] = votes.get(key, 0) + 1
    return votes


def brute_force_votes(query: np.ndarray, items: dict[int, LocalFeatures], knn: int, max_distance: int
                      ) -> dict[int, int]:
    """The same votes from a scan of every descriptor (ties by insertion order): the reference in the tests."""
    codes = np.concatenate([f.desc for f in items.values()]) if items else np.zeros((0, BYTES), np.uint8)
    owners = np.concatenate([np.full(len(f), key) for key, f in items.items()]) if items else np.zeros(0, int)
    bits = np.unpackbits(codes, axis=1).astype(np.float32)  # float32 products of 0/1 are exact up to 2**24
    qbits = np.unpackbits(query, axis=1).astype(np.float32)
    d = np.rint(qbits.sum(1)[:, None] + bits.sum(1)[None, :] - 2 * qbits @ bits.T).astype(np.int64)
    order = np.argsort(d, axis=1, kind="stable")[:, :knn]
    return votes_from(np.take_along_axis(d, order, 1), owners[order], max_distance)


class DescriptorIndex:
    """Every described item's descriptors, searchable together; ``put`` replaces an item's, ``remove`` drops them."""

    def __init__(self) -> None:
        self._mih = MultiIndexHashIndex(BYTES * 8)
        self._owner = np.zeros(0, np.int64)  # descriptor id -> item key (-1 once removed)
        self._ids: dict[int, np.ndarray] = {}  # item key -> its descriptor ids
        self._next = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    @property
    def descriptors(self) -> int:
        return len(self._mih)

    def memory_bytes(self) -> int:
        """Codes, substring tables and id maps held (the index's memory; the keypoints are held by the caller)."""
        return (len(self._mih) * (BYTES + 16) + self._mih.table_bytes + self._owner.nbytes
                + sum(ids.nbytes for ids in self._ids.values()))  # 16: the flat index's key and row maps

    def put(self, key: int, features: LocalFeatures) -> None:
        self.remove([key])
        n = len(features)
        ids = np.arange(self._next, self._next + n, dtype=np.int64)
        self._next += n
        if len(self._owner) < self._next:
            grown = np.full(max(self._next, 2 * len(self._owner)), -1, np.int64)
            grown[: len(self._owner)] = self._owner
            self._owner = grown
        self._owner[ids] = key
        self._ids[key] = ids
        if n:
            self._mih.add(ids, features.desc)

    def remove(self, keys: Iterable[int]) -> None:
        for key in keys:
            ids = self._ids.pop(int(key), None)
            if ids is not None and len(ids):
                self._mih.remove(ids)
                self._owner[ids] = -1

    def _nearest(self, query: np.ndarray, knn: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        distances, ids = self._mih.hamming(np.ascontiguousarray(query, dtype=np.uint8), knn)
        owners = np.where(ids >= 0, self._owner[np.clip(ids, 0, None)], -1)
        return distances, ids, owners

    def votes(self, query: np.ndarray, *, knn: int, max_distance: int) -> dict[int, int]:
        if not len(self._mih) or not len(query):
            return {}
        distances, _ids, owners = self._nearest(query, knn)
        return votes_from(distances, owners, max_distance)

    def candidates(self, query: np.ndarray, n: int, *, knn: int, max_distance: int, min_votes: int = 2
                   ) -> list[tuple[int, int, np.ndarray]]:
        """The ``n`` items with the most votes (at least ``min_votes``), most first, ties by key, as (key, votes,
        matches): ``matches`` is (m, 2) of (query row, the item's descriptor row), each query descriptor's nearest
        descriptor of that item among its ``knn`` neighbours (the putative matches geometric verification takes)."""
        if not len(self._mih) or not len(query):
            return []
        distances, ids, owners = self._nearest(query, knn)
        votes = votes_from(distances, owners, max_distance)
        ranked = sorted(((v, -k) for k, v in votes.items() if v >= min_votes), reverse=True)[:n]
        out = []
        for v, negkey in ranked:
            key = -negkey
            hit = (owners == key) & (distances <= max_distance)
            rows = np.flatnonzero(hit.any(axis=1))
            first = hit[rows].argmax(axis=1)  # the nearest of that item (neighbours come sorted by distance)
            local = ids[rows, first] - self._ids[key][0]
            out.append((key, v, np.stack([rows, local], axis=1)))
        return out
