"""The ``"faiss"`` backend of :mod:`lookalike.index.kernels`: faiss loaded lazily, results in (key, row) order."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from lookalike.index._numpy_topk import _GATHER_BYTES, PAD_ROW, _CosineTiles, _scan, _TopK

_Result = tuple[np.ndarray, np.ndarray]


def _faiss() -> Any:
    # With the default OpenMP wait policy faiss ran 15-30x slower on a shared 2-core machine. The variable
    # only counts if it is set before faiss (and so its OpenMP runtime) first loads.
    if "faiss" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    return faiss


def _faiss_search(knn: Callable[[np.ndarray, np.ndarray, int], _Result], queries: np.ndarray,
                  base: np.ndarray, subset: np.ndarray | None, acc: _TopK) -> _TopK:
    """``knn`` on all of base (no copy) or on bounded gathered chunks of the subset; merged by (key, row)."""
    k = acc.keys.shape[1]
    if subset is None:
        keys, found = knn(queries, base, min(k, len(base)))
        if keys.shape[1] == k and _settled(keys, found):
            acc.keys[...], acc.rows[...] = keys, found
        else:
            _push_found(acc, keys, found, None)
        return acc
    step = max(_GATHER_BYTES // (base.shape[1] * base.itemsize), 1)
    for j0 in range(0, subset.size, step):
        rows = subset[j0 : j0 + step]
        _push_found(acc, *knn(queries, base[rows], min(k, rows.size)), rows)
    return acc


def _settled(keys: np.ndarray, found: np.ndarray) -> bool:
    """Whether every row of a result is already in (key, row) order, with no padding."""
    earlier, later = keys[:, :-1], keys[:, 1:]
    in_order = (earlier < later) | ((earlier == later) & (found[:, :-1] < found[:, 1:]))
    return bool(in_order.all() and (found >= 0).all())


def _push_found(acc: _TopK, keys: np.ndarray, found: np.ndarray, rows: np.ndarray | None) -> None:
    query, slot = np.nonzero(found >= 0)
    hits = found[query, slot]
    acc.push(query, keys[query, slot], hits if rows is None else rows[hits], in_row_order=False)


def _faiss_hamming(queries: np.ndarray, codes: np.ndarray, k: int) -> _Result:
    # knn_hamming's heap scans rows in ascending order and keeps the first of equal distances (the heavy-tie
    # tests check it), so only the order inside the result needs settling, which _TopK.push does.
    distances, found = _faiss().knn_hamming(queries, codes, k)
    return distances, found


def _faiss_cosine(queries: np.ndarray, vectors: np.ndarray, k: int) -> _Result:
    """faiss's top 2k: its heap keeps arbitrary rows among scores equal to the k-th, so the top k is certain
    only where the 2k-th score is lower than the k-th; the other queries are redone with numpy."""
    faiss = _faiss()
    wide = min(vectors.shape[0], 2 * k)
    scores, found = faiss.knn(queries, vectors, wide, metric=faiss.METRIC_INNER_PRODUCT)
    keys = np.negative(scores, out=scores)
    unsure = np.flatnonzero(keys[:, k - 1] >= keys[:, wide - 1]) if wide < len(vectors) else np.empty(0, int)
    if unsure.size:
        exact = _scan(_CosineTiles(queries[unsure], vectors), 0, len(unsure), slice(0, len(vectors)), k)
        keys[unsure, :k], found[unsure, :k], found[unsure, k:] = exact.keys, exact.rows, PAD_ROW
    return keys, found
