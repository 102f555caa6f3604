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

__all__ = ["choose_keeper", "components", "edges_from_hits", "knn_edges", "projected_topk", "projection",
           "unique_pairs"]


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
    return unique_pairs(np.concatenate(found_pairs), np.concatenate(found_scores))


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


def projection(sample: np.ndarray, dims: int) -> np.ndarray:
    """(d, dims) float32 orthonormal basis keeping the most of the inner products among ``sample`` rows (the top
    eigenvectors of their uncentred second moment, so ``x @ y ≈ (x @ P) @ (y @ P)`` for rows like them; uncentred,
    because the mean direction carries part of every cosine)."""
    x = np.asarray(sample, dtype=np.float64)
    dims = max(1, min(int(dims), x.shape[1]))
    _values, vectors = np.linalg.eigh(x.T @ x)
    return np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)


def projected_topk(projected: np.ndarray, depth: int, *, batch: int = 4096, queries: np.ndarray | None = None
                   ) -> np.ndarray:
    """(nq, depth) rows of the ``depth`` largest inner products of each row of ``projected`` (or of the rows
    ``queries``; itself included, -1 padded), by faiss's exact search in the reduced space, a batch at a time."""
    from ..index._faiss_topk import _faiss

    faiss = _faiss()
    base = np.ascontiguousarray(projected, dtype=np.float32)
    which = np.arange(len(base)) if queries is None else np.asarray(queries, dtype=np.int64)
    depth = min(int(depth), len(base))
    out = np.full((len(which), depth), -1, dtype=np.int64)
    for start in range(0, len(which), batch):
        _scores, found = faiss.knn(base[which[start : start + batch]], base, depth,
                                   metric=faiss.METRIC_INNER_PRODUCT)
        out[start : start + batch] = found
    return out


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
