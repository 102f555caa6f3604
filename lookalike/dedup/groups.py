"""Candidate pairs from a k-nearest-neighbour graph, and duplicate groups as its connected components.

Each item is searched against the index in batches (exact top-k, :mod:`lookalike.index`): memory is one batch of
k results at a time plus the edges kept, never an N x N matrix. Groups are the connected components of the edges
that pass the verdict (union-find), so a chain a~b~c is one group even when a and c are not among each other's
k nearest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..catalog.types import Item
from ..errors import InvalidParameterError

__all__ = ["choose_keeper", "components", "edges_from_hits", "unique_pairs"]


def edges_from_hits(own: np.ndarray, scores: np.ndarray, hits: np.ndarray, *, min_score: float = -np.inf
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (min, max) of keys from (nq, k) ``scores`` / ``hits`` of queries ``own`` (nq,), itself,
    padding (-1) and scores under ``min_score`` left out; each pair once (the first found, as pairs repeat in
    both directions with the same cosine)."""
    own2 = np.repeat(np.asarray(own, dtype=np.int64)[:, None], hits.shape[1], axis=1)
    keep = (hits >= 0) & (hits != own2) & (scores >= min_score)
    a, b = own2[keep], hits[keep]
    return unique_pairs(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), scores[keep].astype(np.float32))


def unique_pairs(pairs: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (a, b) row of ``pairs`` once, with its highest score; sorted by (a, b)."""
    order = np.lexsort((-scores, pairs[:, 1], pairs[:, 0]))
    pairs, scores = pairs[order], scores[order]
    first = np.r_[True, (pairs[1:] != pairs[:-1]).any(axis=1)] if len(pairs) else np.zeros(0, dtype=bool)
    return pairs[first], scores[first]


def components(keys: Sequence[int] | np.ndarray, pairs: np.ndarray) -> list[list[int]]:
    """Connected components with at least two members: sorted keys, groups ordered by their smallest key."""
    keys = np.asarray(keys, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    index = {k: i for i, k in enumerate(keys.tolist())}
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs.tolist():
        if a not in index or b not in index:
            raise InvalidParameterError(f"edge ({a}, {b}) names a key that is not among the items")
        ra, rb = root(index[a]), root(index[b])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i, key in enumerate(keys.tolist()):
        members.setdefault(root(i), []).append(key)
    groups = [sorted(g) for g in members.values() if len(g) > 1]
    return sorted(groups, key=lambda g: g[0])


def choose_keeper(items: Sequence[Item]) -> Item:
    """The item to keep in a group: the most pixels, then the oldest (``added``), then the smallest id."""
    return min(items, key=lambda it: (-int(it.width) * int(it.height), float(it.added), str(it.id)))
