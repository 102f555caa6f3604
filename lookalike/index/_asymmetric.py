"""Asymmetric distance between a real-valued query and stored binary codes (no quantisation on the query side).

A hasher maps a vector to real values ``p`` (one per bit) and stores only their signs. Comparing a query's signs
with the stored signs (Hamming) throws away how sure each query bit is; the asymmetric score keeps it::

    score(p, b) = sum_j p_j * (2 b_j - 1)        (b_j in {0, 1}, the stored bit j)

which is the inner product of the query's projection with the code read as ±1. For a linear hasher (LSH, PCAH,
ITQ) it ranks codes by the projected inner product, i.e. it estimates the float similarity far better than Hamming
does: a bit the query is unsure about (p_j near 0) costs almost nothing when it differs. Codes stay 1 bit per
dimension in memory; only the query is real-valued.

Used to pick re-ranking candidates (``Catalog.search(rerank=N)``). The scan unpacks a block of codes at a time
into ±1 float32 rows and multiplies by the queries' projections (BLAS), so memory is bounded by the block.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError
from lookalike.index._numpy_topk import PAD_ROW
from lookalike.validation import check_int

__all__ = ["asymmetric_topk"]

_BLOCK = 32_768  # codes per block: 32k x 64 bits x 4 B = 8 MiB of unpacked floats


def asymmetric_topk(projections: Any, codes: Any, k: int, *, subset: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` codes with the highest asymmetric score for each query projection.

    Args:
        projections: (nq, n_bits) float, the query's real values before thresholding (``Hasher.project``).
        codes: (n, n_bits / 8) uint8, packed by ``np.packbits`` (big-endian within a byte).
        k: results per query, >= 1; may exceed n (the result is padded).
        subset: optional 1-D integer row indices to restrict the search to.

    Returns:
        ``(scores, rows)``: (nq, k) float32 descending and (nq, k) int64, ties by ascending row, padded with
        -inf and -1 where fewer than k rows are searched.

    Raises:
        InvalidParameterError: a wrong dtype or shape, widths that differ, k < 1, a row outside ``codes``.
    """
    p = np.asarray(projections)
    c = np.asarray(codes)
    if c.ndim != 2 or c.dtype != np.uint8:
        raise InvalidParameterError(f"asymmetric_topk: codes must be a 2-D uint8 array. Got {c.ndim}-D {c.dtype}.")
    if p.ndim != 2 or p.dtype.kind != "f" or p.shape[1] != 8 * c.shape[1]:
        raise InvalidParameterError(
            f"asymmetric_topk: projections must be a (nq, {8 * c.shape[1]}) float array to match the codes. "
            f"Got {p.ndim}-D {p.dtype} of shape {p.shape}.")
    check_int("k", k, 1, owner="asymmetric_topk")
    if not np.isfinite(p).all():
        raise InvalidParameterError("asymmetric_topk: projections contain NaN or infinity.")
    rows = np.arange(len(c), dtype=np.int64) if subset is None else _subset(subset, len(c))
    p32 = np.ascontiguousarray(p, dtype=np.float32)
    total = p32.sum(axis=1, keepdims=True)  # sum_j p_j (2 b_j - 1) = 2 (b . p) - sum_j p_j
    nq, k = len(p32), int(k)
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_r = np.full((nq, 0), PAD_ROW, dtype=np.int64)
    for start in range(0, len(rows), _BLOCK):
        block = rows[start : start + _BLOCK]
        bits = np.unpackbits(c[block], axis=1).astype(np.float32)
        scores = 2.0 * (p32 @ bits.T) - total
        cand_s = np.concatenate([best_s, scores], axis=1)
        cand_r = np.concatenate([best_r, np.broadcast_to(block, scores.shape)], axis=1)
        best_s, best_r = _best(cand_s, cand_r, k)
    if best_s.shape[1] < k:
        pad = k - best_s.shape[1]
        best_s = np.pad(best_s, ((0, 0), (0, pad)), constant_values=-np.inf)
        best_r = np.pad(best_r, ((0, 0), (0, pad)), constant_values=PAD_ROW)
    return best_s.astype(np.float32), best_r


def _best(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the k highest scores with their rows, ordered by score descending then row ascending."""
    if scores.shape[1] > k:
        # Keep everything tied with the k-th score so the tie-break by row below sees all of them.
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
        keep = scores >= kth
        width = int(keep.sum(axis=1).max())
        order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
        scores = np.take_along_axis(scores, order, axis=1)
        rows = np.take_along_axis(rows, order, axis=1)
        scores = np.where(np.take_along_axis(keep, order, axis=1), scores, -np.inf)
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def _subset(subset: Any, n: int) -> np.ndarray:
    rows = np.asarray(subset)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise InvalidParameterError("asymmetric_topk: subset must be a 1-D array of integer rows.")
    rows = np.unique(rows.astype(np.int64, copy=False))
    if rows.size and (rows[0] < 0 or rows[-1] >= n):
        raise InvalidParameterError(f"asymmetric_topk: subset has rows outside [0, {n}).")
    return rows
