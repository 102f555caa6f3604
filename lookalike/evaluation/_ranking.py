"""Distances, stable rankings, relevance and the AP of a ranking: the arrays under the metrics, and their checks.

A ranking here is always stable: ascending distance (or descending score), ties by ascending database row, so
a metric computed on it does not change between runs, machines or backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import InvalidParameterError

__all__ = ["hamming_distances", "rank_by_distance", "rank_by_score", "relevance"]

_TILE_BYTES = 1 << 24  # xor scratch per block of queries in hamming_distances
BLOCK_BYTES = 1 << 26  # working memory per block of queries in the full-matrix metrics and retrieval_map
PAIR_BYTES = 24  # bytes of temporaries per (query, database item) pair in a block
REAL = "iuf"  # dtype kinds accepted as distances or scores
LABEL = "iuUS"  # dtype kinds accepted as labels: integers or strings


def hamming_distances(queries: npt.ArrayLike, codes: npt.ArrayLike) -> np.ndarray:
    """Exact Hamming distances between every query and every code, computed in blocks of queries.

    Args:
        queries: (nq, nbytes) uint8 packed bits.
        codes: (n, nbytes) uint8 packed bits.

    Returns:
        (nq, n) int32 distances.

    Raises:
        InvalidParameterError: not non-empty 2-D uint8 arrays, or widths that differ.

    Example:
        >>> hamming_distances(np.array([[0b0000_0011]], np.uint8), np.array([[0], [0xFF]], np.uint8))
        array([[2, 6]], dtype=int32)
    """
    func = "hamming_distances"
    queries, codes = code_matrix(func, "queries", queries), code_matrix(func, "codes", codes)
    if queries.shape[1] != codes.shape[1]:
        raise bad(func, "queries", f"{codes.shape[1]} bytes wide, like 'codes'", f"{queries.shape[1]} bytes")
    return hamming(queries, codes)


def hamming(queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """:func:`hamming_distances` without the checks: xor and popcount over the widest word dividing a code."""
    word = np.dtype(f"u{next(w for w in (8, 4, 2, 1) if codes.shape[1] % w == 0)}")
    words = np.ascontiguousarray(queries).view(word)
    columns = np.ascontiguousarray(np.ascontiguousarray(codes).view(word).T)  # (n_words, n): one read per word
    out = np.empty((len(words), columns.shape[1]), np.int32)
    block = max(1, _TILE_BYTES // (word.itemsize * columns.shape[1]))
    for q0 in range(0, len(words), block):
        tile = out[q0 : q0 + block]
        for w, column in enumerate(columns):
            count = np.bitwise_count(np.bitwise_xor(words[q0 : q0 + block, w, None], column))
            if w == 0:
                tile[...] = count
            else:
                tile += count
    return out


def rank_by_distance(distances: npt.ArrayLike, k: int | None = None) -> np.ndarray:
    """The ``k`` nearest database rows of each query: ascending distance, ties by ascending row.

    Args:
        distances: (nq, n) integer or float distances, no NaN.
        k: rows per query, in [1, n]; None for all n.

    Returns:
        (nq, k) int64 database rows.

    Raises:
        InvalidParameterError: not a non-empty 2-D real array, NaN, or k outside [1, n].

    Example:
        >>> rank_by_distance(np.array([[3, 1, 3, 0]]), k=3)
        array([[3, 1, 0]])
    """
    distances = real_array("rank_by_distance", "distances", distances, ndim=2)
    return stable_topk(distances, check_k("rank_by_distance", k, distances.shape[1], "columns in 'distances'"))


def rank_by_score(scores: npt.ArrayLike, k: int | None = None) -> np.ndarray:
    """The ``k`` best-scoring database rows of each query: descending score, ties by ascending row.

    Args:
        scores: (nq, n) integer or float scores (a cosine similarity, say), no NaN.
        k: rows per query, in [1, n]; None for all n.

    Returns:
        (nq, k) int64 database rows.

    Raises:
        InvalidParameterError: as in :func:`rank_by_distance`.

    Example:
        >>> rank_by_score(np.array([[0.5, 0.9, 0.5]]))
        array([[1, 0, 2]])
    """
    scores = real_array("rank_by_score", "scores", scores, ndim=2)
    k = check_k("rank_by_score", k, scores.shape[1], "columns in 'scores'")
    # ~x reverses the order of any integer type without the overflow of -x; floats negate exactly.
    return stable_topk(np.invert(scores) if scores.dtype.kind in "iu" else np.negative(scores), k)


def stable_topk(distances: np.ndarray, k: int) -> np.ndarray:
    """:func:`rank_by_distance` without the checks: a partition, then a sort of the k chosen rows only."""
    nq, n = distances.shape
    if k == n:
        return np.argsort(distances, axis=1, kind="stable")
    kth = np.partition(distances, k - 1, axis=1)[:, k - 1 : k]
    closer = distances < kth
    tied = distances == kth
    room = k - np.count_nonzero(closer, axis=1, keepdims=True)  # places left for rows at the k-th distance
    chosen = closer | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))  # the first tied rows
    rows = np.nonzero(chosen)[1].reshape(nq, k)  # exactly k per query, by ascending row
    order = np.argsort(np.take_along_axis(distances, rows, axis=1), axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1)


def relevance(query_labels: npt.ArrayLike, db_labels: npt.ArrayLike,
              ranking: npt.ArrayLike | None = None) -> np.ndarray:
    """Whether each ranked database item has its query's label.

    Args:
        query_labels: (nq,) integer or string labels.
        db_labels: (n,) labels of the same kind.
        ranking: (nq, k) database rows, as from :func:`rank_by_distance`; None for every row in database order.

    Returns:
        (nq, k) bool, or (nq, n) without a ranking.

    Raises:
        InvalidParameterError: labels not 1-D or of different kinds (strings against numbers), a ranking
            with a row per query missing or a row outside [0, n) (such as the -1 padding of a search).

    Example:
        >>> relevance(np.array([1, 2]), np.array([1, 1, 2]), np.array([[2, 0], [2, 1]]))
        array([[False,  True],
               [ True, False]])
    """
    func = "relevance"
    queries, labels = label_arrays(func, query_labels, db_labels)
    if ranking is None:
        return queries[:, None] == labels[None, :]
    rows = array(func, "ranking", ranking, ndim=2, kinds="iu", what="database rows")
    if rows.shape[0] != queries.size:
        raise bad(func, "ranking", f"{queries.size} rows, one per query label", f"{rows.shape[0]} rows")
    if rows.min() < 0 or rows.max() >= labels.size:
        raise bad(func, "ranking", f"database rows in [0, {labels.size})", f"values from {rows.min()} to {rows.max()}")
    return labels[rows] == queries[:, None]


def standard_ap(relevant: np.ndarray) -> np.ndarray:
    """Standard AP of each row of a (nq, k) ranked relevance, 0 for rows with no relevant item."""
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    return ratio(np.sum(precision, axis=1, where=relevant), hits[:, -1])


def grouped_ap(distances: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """AP of each (nq, k) ranked row as ``sklearn.metrics.average_precision_score`` scores it.

    Equal distances form one threshold: every relevant item of a tie group gets the precision at the group's
    last rank (within the top k).
    """
    k = relevant.shape[1]
    last = np.ones(relevant.shape, bool)
    last[:, :-1] = distances[:, 1:] != distances[:, :-1]
    end = np.minimum.accumulate(np.where(last, np.arange(k), k)[:, ::-1], axis=1)[:, ::-1]
    hits = np.cumsum(relevant, axis=1)
    precision = np.take_along_axis(hits, end, axis=1) / (end + 1)
    return ratio(np.sum(precision, axis=1, where=relevant), hits[:, -1])


def expected_ap(distances: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """:func:`tie_aware_average_precision_at_k` of (nq, n) arrays without the checks."""
    ranked = stable_topk(distances, k)
    kth = np.take_along_axis(distances, ranked[:, -1:], axis=1)
    closer, tied = distances < kth, distances == kth
    before = np.count_nonzero(closer, axis=1)  # N: items ranked before the group at rank k
    found = np.count_nonzero(closer & relevant, axis=1)  # P: relevant ones among them
    ahead = _expected_gains(np.take_along_axis(distances, ranked, axis=1),
                            np.take_along_axis(relevant, ranked, axis=1), before)
    group, group_relevant = np.count_nonzero(tied, axis=1), np.count_nonzero(tied & relevant, axis=1)
    return _straddle(ahead, before, found, group, group_relevant, k)


def _expected_gains(distances: np.ndarray, relevant: np.ndarray, before: np.ndarray) -> np.ndarray:
    """A: the sum of E[rel(t) P(t)] over the first ``before`` ranks of each row, which hold whole tie groups."""
    nq, k = relevant.shape
    rank = np.arange(k)
    start = np.ones((nq, k), bool)
    start[:, 1:] = distances[:, 1:] != distances[:, :-1]
    first = np.maximum.accumulate(np.where(start, rank, 0), axis=1)  # a - 1, the group's first rank
    last = np.minimum.accumulate(np.where(np.roll(start, -1, axis=1), rank, k - 1)[:, ::-1], axis=1)[:, ::-1]
    hits = np.concatenate([np.zeros((nq, 1), np.int64), np.cumsum(relevant, axis=1)], axis=1)
    ahead = np.take_along_axis(hits, first, axis=1)  # P before the group
    size, inside = last - first + 1, np.take_along_axis(hits, last + 1, axis=1) - ahead
    others = ratio(inside - 1, size - 1)  # (p - 1) / (g - 1); 0 for singletons, whose term has t = a
    gains = inside / size * (ahead + 1 + (rank - first) * others) / (rank + 1)
    return np.sum(gains, axis=1, where=rank < before[:, None])


def _straddle(ahead: np.ndarray, before: np.ndarray, found: np.ndarray, group: np.ndarray,
              group_relevant: np.ndarray, k: int) -> np.ndarray:
    """Sum over m, the group's relevant items in the top k, of Pr(m) (A + B(m)) / (P + m)."""
    slots = k - before  # s >= 1
    lowest = np.maximum(0, slots - (group - group_relevant))
    highest = np.minimum(slots, group_relevant)
    m = lowest[:, None] + np.arange(int((highest - lowest).max()) + 1)
    valid = m <= highest[:, None]
    m = np.minimum(m, highest[:, None])
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, int(group.max()) + 1)))])

    def log_choose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return log_factorial[a] - log_factorial[b] - log_factorial[a - b]

    g, p, s = group[:, None], group_relevant[:, None], slots[:, None]
    weight = np.exp(log_choose(p, m) + log_choose(g - p, s - m) - log_choose(g, s)) * valid
    harmonic = np.concatenate([[0.0], np.cumsum(1 / np.arange(1, k + 1))])
    s0 = (harmonic[k] - harmonic[before])[:, None]  # sum_{t=a..k} 1 / t
    s1 = s - (before[:, None] + 1) * s0  # sum_{t=a..k} (t - a) / t
    gains = m / s * ((found[:, None] + 1) * s0 + ratio(m - 1, s - 1) * s1)
    return np.sum(weight * ratio(ahead[:, None] + gains, found[:, None] + m), axis=1)


def blocks(shape: tuple[int, int]) -> list[slice]:
    """Slices of query rows whose (rows, n) temporaries fit in BLOCK_BYTES."""
    nq, n = shape
    step = max(1, BLOCK_BYTES // (PAIR_BYTES * n))
    return [slice(q0, q0 + step) for q0 in range(0, nq, step)]


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    numerator, denominator = np.broadcast_arrays(numerator, denominator)
    return np.divide(numerator, denominator, out=np.zeros(numerator.shape), where=denominator != 0)


class BlockDistances:
    """Distances from a block of query rows to the whole database, checked once."""

    def __init__(self, queries: np.ndarray, database: np.ndarray, metric: str) -> None:
        self.queries, self.database, self.metric = queries, database, metric
        self.shape = (len(queries), len(database))
        if metric == "cosine":  # scale the similarities by the norms instead of copying a normalised database
            self.queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
            self.scale = -1 / np.linalg.norm(database, axis=1)

    def __call__(self, rows: slice) -> np.ndarray:
        if self.metric == "hamming":
            return hamming(self.queries[rows], self.database)
        distances = self.queries[rows] @ self.database.T
        distances *= self.scale
        return distances


def block_distances(func: str, queries: npt.ArrayLike, database: npt.ArrayLike, metric: str) -> BlockDistances:
    if metric == "hamming":
        queries, database = code_matrix(func, "queries", queries), code_matrix(func, "database", database)
    else:
        queries, database = _vectors(func, "queries", queries), _vectors(func, "database", database)
        dtype = np.result_type(queries, database)
        queries, database = queries.astype(dtype, copy=False), database.astype(dtype, copy=False)
    if queries.shape[1] != database.shape[1]:
        raise bad(func, "queries", f"{database.shape[1]} columns wide, like 'database'", queries.shape[1])
    return BlockDistances(queries, database, metric)


def _vectors(func: str, name: str, value: npt.ArrayLike) -> np.ndarray:
    vectors = array(func, name, value, ndim=2, kinds="f", what="float vectors")
    if not np.isfinite(vectors).all():
        raise bad(func, name, "finite", "inf")
    zero = np.flatnonzero(~vectors.any(axis=1))
    if zero.size:
        raise bad(func, name, "free of all-zero rows, whose cosine is undefined", f"row {zero[0]} all zero")
    return vectors


def bad(func: str, name: str, expected: str, got: Any) -> InvalidParameterError:
    return InvalidParameterError(f"The {name!r} parameter of {func} must be {expected}. Got {got} instead.")


def array(func: str, name: str, value: Any, *, ndim: int, kinds: str, what: str) -> np.ndarray:
    """``value`` as a numpy array with ``ndim`` non-zero dimensions and a dtype kind in ``kinds``, no NaN."""
    try:
        result = np.asarray(value)
    except ValueError:  # ragged nested lists
        result = np.empty(0, object)
    if result.ndim != ndim or result.dtype.kind not in kinds or 0 in result.shape:
        got = f"shape {result.shape}, dtype {result.dtype}" if result.dtype != object else type(value).__name__
        raise bad(func, name, f"a non-empty {ndim}-D array of {what}", got)
    if result.dtype.kind == "f" and np.isnan(result).any():
        raise bad(func, name, "free of NaN", "NaN")
    return result


def real_array(func: str, name: str, value: Any, *, ndim: int) -> np.ndarray:
    return array(func, name, value, ndim=ndim, kinds=REAL, what="integer or float numbers")


def bool_array(func: str, name: str, value: Any, *, ndim: int) -> np.ndarray:
    return array(func, name, value, ndim=ndim, kinds="b", what="bool")


def label_arrays(func: str, query_labels: Any, db_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both label arrays, 1-D and both numbers or both strings (numpy compares a string and a number as unequal)."""
    queries = array(func, "query_labels", query_labels, ndim=1, kinds=LABEL, what="integer or string labels")
    labels = array(func, "db_labels", db_labels, ndim=1, kinds=LABEL, what="integer or string labels")
    if (queries.dtype.kind in "US") != (labels.dtype.kind in "US"):
        raise bad(func, "db_labels", f"labels of the same kind as 'query_labels' ({queries.dtype})", labels.dtype)
    return queries, labels


def code_matrix(func: str, name: str, value: Any) -> np.ndarray:
    codes = array(func, name, value, ndim=2, kinds="u", what="uint8 packed bits")
    if codes.dtype != np.uint8:
        raise bad(func, name, "a non-empty 2-D array of uint8 packed bits", f"dtype {codes.dtype}")
    return codes


def check_k(func: str, k: Any, n: int, of: str) -> int:
    """``k`` as an int in [1, n], or ``n`` for None; ``of`` names what n counts, for the message."""
    if k is None:
        return n
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise bad(func, "k", "an integer >= 1 or None", repr(k))
    if k < 1:
        raise bad(func, "k", ">= 1", k)
    if k > n:
        raise bad(func, "k", f"<= {n}, the number of {of}", k)
    return int(k)


def same_shape(func: str, name: str, value: np.ndarray, other: str, shape: tuple[int, ...]) -> None:
    if value.shape != shape:
        raise bad(func, name, f"of shape {shape}, like {other!r}", f"shape {value.shape}")
