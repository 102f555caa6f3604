"""Candidate pairs from a k-nearest-neighbour graph, and duplicate groups as its connected components.

Each item is searched against the index in batches (exact top-k, :mod:`lookalike.index`): memory is one batch of
k results at a time plus the edges kept, never an N x N matrix. Groups are the connected components of the edges
that pass the verdict (union-find), so a chain a~b~c is one group even when a and c are not among each other's
k nearest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["choose_keeper", "components", "knn_edges"]


def knn_edges(
    search: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], keys: np.ndarray,
    vectors: Callable[[int, int], np.ndarray], *, min_score: float = -np.inf, batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (a, b), a < b, between each item and its nearest neighbours scoring >= ``min_score``.

    Args:
        search: queries → (scores, keys) of the k + 1 nearest (the item itself among them), as
            :meth:`FloatFlatIndex.search` returns them.
        keys: the keys of the items, in the order ``vectors`` slices them.
        vectors: (start, stop) → the vectors of ``keys[start:stop]``.

    Returns:
        ``(pairs (m, 2) int64, scores (m,) float32)``, each pair once (the higher score where both directions
        were found; they are equal for cosine).
    """
    keys = np.asarray(keys, dtype=np.int64)
    found_pairs, found_scores = [], []
    for start in range(0, len(keys), batch):
        stop = min(start + batch, len(keys))
        scores, hits = search(vectors(start, stop))
        own = np.repeat(keys[start:stop, None], hits.shape[1], axis=1)
        keep = (hits >= 0) & (hits != own) & (scores >= min_score)
        a, b = own[keep], hits[keep]
        found_pairs.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
        found_scores.append(scores[keep].astype(np.float32))
    if not found_pairs:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    pairs, scores = np.concatenate(found_pairs), np.concatenate(found_scores)
    order = np.lexsort((-scores, pairs[:, 1], pairs[:, 0]))
    pairs, scores = pairs[order], scores[order]
    first = np.r_[True, (pairs[1:] != pairs[:-1]).any(axis=1)]
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


def choose_keeper(items: Sequence[Any]) -> Any:
    """The item to keep in a group: the most pixels, then the oldest (``added``), then the smallest id."""
    return min(items, key=lambda it: (-int(it.width) * int(it.height), float(it.added), str(it.id)))
