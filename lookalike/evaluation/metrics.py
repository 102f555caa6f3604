"""Retrieval metrics: mAP@k in two variants, precision@k, recall@k, precision-recall by Hamming radius, FPR@95.

The ranked-list metrics take ``relevant``, (nq, k) bool, whether each ranked item is relevant to its query
(:func:`~lookalike.evaluation.relevance` of a stable ranking). The others take full (nq, n) distances and a
relevance matrix of the same shape. Means are over queries.

mAP comes in two variants; integer Hamming distances make ties common, so they differ, and a table must say
which one it reports:

- **standard** (:func:`map_at_k`), the definition of the unsupervised-hashing papers (DeepBit, GreedyHash):
  ``AP@k = (1 / R_k) * sum_{t <= k} P(t) * rel(t)``, with ``P(t)`` the precision of the top t and ``R_k`` the
  relevant items in the top k, on a stable ranking (ties by ascending database row). ``R_k = 0`` scores 0.
- **tie-aware** (:func:`tie_aware_map_at_k`), the expected standard AP@k when every group of equal distances
  is put in uniformly random order (McSherry & Najork, ECIR 2008, for ``k = n``; used on Hamming rankings by
  He et al., "Hashing as Tie-Aware Learning to Rank", CVPR 2018). It does not depend on the database order.

:func:`retrieval_map` computes either from codes or vectors, in blocks of queries, and also BinGAN's
reference score (``ties="grouped"``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.evaluation._ranking import (
    array,
    bad,
    block_distances,
    blocks,
    bool_array,
    check_k,
    code_matrix,
    expected_ap,
    grouped_ap,
    hamming,
    label_arrays,
    ratio,
    real_array,
    same_shape,
    stable_topk,
    standard_ap,
)

__all__ = [
    "average_precision_at_k",
    "fpr_at_95",
    "map_at_k",
    "precision_at_k",
    "precision_recall_by_radius",
    "precision_recall_of_codes",
    "recall_at_k",
    "retrieval_map",
    "tie_aware_average_precision_at_k",
    "tie_aware_map_at_k",
]


def average_precision_at_k(relevant: npt.ArrayLike, k: int | None = None) -> np.ndarray:
    """Standard AP@k of each query: ``(1 / R_k) * sum_{t <= k} P(t) * rel(t)``, 0 where ``R_k = 0``.

    Args:
        relevant: (nq, m) bool, whether the item at each rank is relevant (a stable ranking's relevance).
        k: ranks counted, in [1, m]; None for all m.

    Returns:
        (nq,) float64.

    Raises:
        InvalidParameterError: ``relevant`` not a non-empty 2-D bool array, or k outside [1, m].

    Example:
        >>> average_precision_at_k(np.array([[True, False, True]]))  # (1/1 + 2/3) / 2
        array([0.83333333])
    """
    relevant = bool_array("average_precision_at_k", "relevant", relevant, ndim=2)
    return standard_ap(relevant[:, : check_k("average_precision_at_k", k, relevant.shape[1], "ranks")])


def map_at_k(relevant: npt.ArrayLike, k: int | None = None) -> float:
    """Standard mAP@k: the mean of :func:`average_precision_at_k`, queries with no relevant item counting 0.

    Example:
        >>> map_at_k(np.array([[True, False, True], [False, False, False]]), k=2)  # (1 + 0) / 2
        0.5
    """
    relevant = bool_array("map_at_k", "relevant", relevant, ndim=2)
    return float(standard_ap(relevant[:, : check_k("map_at_k", k, relevant.shape[1], "ranks")]).mean())


def tie_aware_average_precision_at_k(distances: npt.ArrayLike, relevant: npt.ArrayLike,
                                     k: int | None = None) -> np.ndarray:
    """Tie-aware AP@k of each query: the mean standard AP@k over every ordering of the tied items.

    For a group of ``g`` equal distances at ranks ``a..b`` holding ``p`` relevant items, ``P`` relevant
    items ranked before ``a``, the item at rank ``t`` is relevant with probability ``p / g`` and then each of
    the ``t - a`` group items ahead of it is relevant with probability ``(p - 1) / (g - 1)``, so::

        E[rel(t) * P(t)] = (p / g) * (P + 1 + (t - a) * (p - 1) / (g - 1)) / t

    If no group straddles rank k, ``R_k`` is fixed and AP@k is ``(1 / R_k) * sum_{t <= k} E[rel(t) * P(t)]``
    (McSherry & Najork, "Computing information retrieval performance measures efficiently in the presence of
    tied scores", ECIR 2008, there with k = n). If the group at rank k has ``s = k - a + 1`` ranks in the top
    k, the number ``m`` of its relevant items that land there is hypergeometric (g items, p relevant, s
    drawn) and ``R_k = P + m``; given m, the s ranks hold m relevant items in random order. Hence, exactly::

        AP@k = sum_m Pr(m) * (A + B(m)) / (P + m),   with 0 / 0 = 0,
        A = sum_{t < a} E[rel(t) * P(t)],   B(m) = sum_{t=a..k} (m / s) * (P + 1 + (t - a) * (m - 1) / (s - 1)) / t

    which reduces to the standard AP@k when there are no ties.

    Args:
        distances: (nq, n) integer or float distances, no NaN (Hamming distances, or minus a similarity).
        relevant: (nq, n) bool, whether each database item is relevant to each query.
        k: ranks counted, in [1, n]; None for all n.

    Returns:
        (nq,) float64.

    Raises:
        InvalidParameterError: arrays not non-empty and 2-D of their kind, shapes that differ, k outside [1, n].

    Example:
        >>> # both orders of the tie, [rel, irr, rel] and [irr, rel, rel], average (5/6 + 7/12) / 2
        >>> tie_aware_average_precision_at_k(np.array([[1, 1, 2]]), np.array([[True, False, True]]))
        array([0.70833333])
    """
    func = "tie_aware_average_precision_at_k"
    distances = real_array(func, "distances", distances, ndim=2)
    relevant = bool_array(func, "relevant", relevant, ndim=2)
    same_shape(func, "relevant", relevant, "distances", distances.shape)
    k = check_k(func, k, distances.shape[1], "columns in 'distances'")
    return np.concatenate([expected_ap(distances[rows], relevant[rows], k) for rows in blocks(distances.shape)])


def tie_aware_map_at_k(distances: npt.ArrayLike, relevant: npt.ArrayLike, k: int | None = None) -> float:
    """Tie-aware mAP@k: the mean of :func:`tie_aware_average_precision_at_k`."""
    return float(tie_aware_average_precision_at_k(distances, relevant, k).mean())


def precision_at_k(relevant: npt.ArrayLike, k: int | None = None) -> float:
    """Mean over queries of the relevant fraction of the top k.

    Args:
        relevant: (nq, m) bool relevance of a ranking.
        k: ranks counted, in [1, m]; None for all m.

    Example:
        >>> precision_at_k(np.array([[True, False, True], [True, True, True]]), k=2)  # (1/2 + 2/2) / 2
        0.75
    """
    relevant = bool_array("precision_at_k", "relevant", relevant, ndim=2)
    k = check_k("precision_at_k", k, relevant.shape[1], "ranks")
    return float(np.count_nonzero(relevant[:, :k], axis=1).mean() / k)


def recall_at_k(relevant: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int | None = None) -> float:
    """Mean over queries of the fraction of their relevant items found in the top k.

    Queries with no relevant item in the database have no recall and are left out of the mean; if no query
    has one, the result is NaN.

    Args:
        relevant: (nq, m) bool relevance of a ranking.
        n_relevant: (nq,) integers, each query's relevant items in the whole database (>= those ranked).
        k: ranks counted, in [1, m]; None for all m.

    Example:
        >>> recall_at_k(np.array([[True, False, True], [False, False, False]]), [4, 0], k=3)  # 2/4
        0.5
    """
    func = "recall_at_k"
    relevant = bool_array(func, "relevant", relevant, ndim=2)
    totals = array(func, "n_relevant", n_relevant, ndim=1, kinds="iu", what="integers")
    same_shape(func, "n_relevant", totals, "relevant", relevant.shape[:1])
    short = np.flatnonzero(totals < np.count_nonzero(relevant, axis=1))
    if short.size:
        raise bad(func, "n_relevant", "no smaller than the relevant items ranked", f"fewer for query {short[0]}")
    found = np.count_nonzero(relevant[:, : check_k(func, k, relevant.shape[1], "ranks")], axis=1)
    return float(_mean_where(found, totals, totals > 0))


def precision_recall_by_radius(distances: npt.ArrayLike, relevant: npt.ArrayLike,
                               radii: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the items retrieved within each radius (``distance <= r``).

    Precision at a radius is averaged over the queries that retrieve at least one item there (NaN where none
    does); recall over the queries with at least one relevant item in the database (NaN if none has one).

    Args:
        distances: (nq, n) integer or float distances, no NaN.
        relevant: (nq, n) bool, whether each database item is relevant to each query.
        radii: (R,) ascending radii, such as ``range(n_bits + 1)`` for Hamming distances.

    Returns:
        ``(precision, recall)``, each (R,) float64; recall never decreases with the radius.

    Raises:
        InvalidParameterError: arrays not non-empty of their kind and shape, radii not strictly ascending.

    Example:
        >>> precision_recall_by_radius(np.array([[0, 1, 2]]), np.array([[True, False, True]]), [0, 1])
        (array([1. , 0.5]), array([0.5, 0.5]))
    """
    func = "precision_recall_by_radius"
    distances = real_array(func, "distances", distances, ndim=2)
    relevant = bool_array(func, "relevant", relevant, ndim=2)
    same_shape(func, "relevant", relevant, "distances", distances.shape)
    radii = real_array(func, "radii", radii, ndim=1)
    if (np.diff(radii) <= 0).any():
        raise bad(func, "radii", "strictly ascending", radii)
    counts = [_counts_within(distances[rows], relevant[rows], radii) for rows in blocks(distances.shape)]
    retrieved, hits = (np.concatenate(parts) for parts in zip(*counts, strict=True))
    totals = np.count_nonzero(relevant, axis=1)[:, None]
    precision = _mean_where(hits, retrieved, retrieved > 0)
    recall = _mean_where(hits, np.broadcast_to(totals, hits.shape), np.broadcast_to(totals > 0, hits.shape))
    return precision, recall


def precision_recall_of_codes(queries: npt.ArrayLike, database: npt.ArrayLike, query_labels: npt.ArrayLike,
                              db_labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """:func:`precision_recall_by_radius` of a labelled benchmark at every Hamming radius ``0..n_bits``, from codes.

    An item is relevant when it shares the query's label. Per block of queries (bounded memory), the Hamming
    distances of each query are histogrammed twice, over all items and over its relevant ones; the cumulative
    counts are the retrieved and the relevant retrieved items within each radius. Averaged as in
    :func:`precision_recall_by_radius`.

    Args:
        queries: (nq, nbytes) uint8 packed codes.
        database: (n, nbytes) uint8 packed codes.
        query_labels: (nq,) integer or string labels. db_labels: (n,) labels of the same kind.

    Returns:
        ``(precision, recall)``, each (n_bits + 1,) float64, index r the radius.

    Example:
        >>> codes = np.array([[0b00], [0b01], [0b11]], np.uint8)  # 8-bit codes at distances 0, 1, 2 from row 0
        >>> precision, recall = precision_recall_of_codes(codes[:1], codes, [0], [0, 1, 0])
        >>> precision[:3], recall[:3]
        (array([1.        , 0.5       , 0.66666667]), array([0.5, 0.5, 1. ]))
    """
    func = "precision_recall_of_codes"
    queries, database = code_matrix(func, "queries", queries), code_matrix(func, "database", database)
    if queries.shape[1] != database.shape[1]:
        raise bad(func, "queries", f"{database.shape[1]} bytes wide, like 'database'", f"{queries.shape[1]} bytes")
    labels, targets = label_arrays(func, query_labels, db_labels)
    for name, given, size, of in (("query_labels", labels, len(queries), "queries"),
                                  ("db_labels", targets, len(database), "database")):
        if given.size != size:
            raise bad(func, name, f"{size} labels, one per row of {of!r}", f"{given.size} labels")
    size = 8 * queries.shape[1] + 1
    retrieved, hits = np.empty((len(queries), size), np.int64), np.empty((len(queries), size), np.int64)
    for rows in blocks((len(queries), len(database))):
        block = queries[rows]
        bins = hamming(block, database) + size * np.arange(len(block))[:, None]
        n = len(block) * size
        retrieved[rows] = np.bincount(bins.ravel(), minlength=n).reshape(-1, size)
        hits[rows] = np.bincount(bins[targets[None, :] == labels[rows, None]], minlength=n).reshape(-1, size)
    retrieved, hits = np.cumsum(retrieved, axis=1), np.cumsum(hits, axis=1)
    totals = np.broadcast_to(hits[:, -1:], hits.shape)
    return _mean_where(hits, retrieved, retrieved > 0), _mean_where(hits, totals, totals > 0)


def _counts_within(distances: np.ndarray, relevant: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, ...]:
    """(nq, R) items and relevant items with distance <= each radius, by a histogram over radius bins."""
    nq, size = len(distances), radii.size + 1
    bins = np.searchsorted(radii, distances, side="left")  # the first radius that retrieves each item
    bins += size * np.arange(nq)[:, None]
    items = np.bincount(bins.ravel(), minlength=nq * size).reshape(nq, size)
    hits = np.bincount(bins[relevant], minlength=nq * size).reshape(nq, size)
    return np.cumsum(items[:, :-1], axis=1), np.cumsum(hits[:, :-1], axis=1)


def fpr_at_95(distances: npt.ArrayLike, is_match: npt.ArrayLike) -> float:
    """False-positive rate at 95% recall on pairs: the descriptor-matching score (Brown et al., BinGAN).

    The threshold is the smallest distance ``t`` at which at least 95% of matching pairs have distance
    <= t; the result is the fraction of non-matching pairs with distance <= t. With integer distances the
    true-positive rate at t can exceed 95%. BinGAN's reference ``eval.py`` takes instead the sorted matching
    distance at index ``int(0.95 * n_match)``, one place later when ``0.95 * n_match`` is whole.

    Args:
        distances: (m,) integer or float pair distances, no NaN.
        is_match: (m,) bool, whether each pair shows the same thing; both kinds of pair must occur.

    Returns:
        The false-positive rate, in [0, 1].

    Example:
        >>> # 20 matches at distances 0..19: 19 of them (95%) lie within t = 18; 1 of 4 non-matches does
        >>> fpr_at_95(np.r_[np.arange(20), [18, 19, 25, 30]], np.r_[np.ones(20, bool), np.zeros(4, bool)])
        0.25
    """
    func = "fpr_at_95"
    distances = real_array(func, "distances", distances, ndim=1)
    is_match = bool_array(func, "is_match", is_match, ndim=1)
    same_shape(func, "is_match", is_match, "distances", distances.shape)
    if is_match.all() or not is_match.any():
        raise bad(func, "is_match", "True for some pairs and False for others", f"all {bool(is_match[0])}")
    matching = np.sort(distances[is_match])
    needed = (95 * matching.size + 99) // 100  # ceil(0.95 m) in integers: 0.95 has no exact binary form
    return float(np.mean(distances[~is_match] <= matching[needed - 1]))


METRICS = ("cosine", "hamming")
TIES = ("expected", "grouped", "stable")


def retrieval_map(queries: npt.ArrayLike, database: npt.ArrayLike, query_labels: npt.ArrayLike,
                  db_labels: npt.ArrayLike, k: int, *, metric: str = "hamming", ties: str = "stable") -> float:
    """mAP@k of a labelled retrieval benchmark (relevant = same label), in blocks of queries (~64 MiB each).

    For BinGAN's CIFAR-10 protocol (1,000 random test queries against the 50,000 training images):

    - the published table ("mAP - top 1000"): ``k=1000, ties="stable"``, the standard definition;
    - its reference code (``test_cifar.py``, as fixed in 2020): ``k=10_000, ties="grouped"``. That code ranks
      with an unstable ``np.argsort``, so which items at the 10,000th distance enter its top k is arbitrary;
      here it is the lowest rows. Its pre-2020 reversed-score bug is not reproduced.

    Args:
        queries: (nq, nbytes) uint8 packed codes for ``"hamming"``; (nq, dim) float vectors, no zero row, for
            ``"cosine"``.
        database: (n, nbytes) or (n, dim), like ``queries``.
        query_labels: (nq,) integer or string labels.
        db_labels: (n,) labels of the same kind.
        k: ranks counted, in [1, n].
        metric: ``"hamming"`` (ascending Hamming distance) or ``"cosine"`` (descending cosine similarity).
        ties: ``"stable"``: :func:`map_at_k` on the stable ranking; ``"expected"``: :func:`tie_aware_map_at_k`;
            ``"grouped"``: ``sklearn.metrics.average_precision_score`` on the stable top k, where a tie group is
            one threshold and each relevant item in it gets the precision at its last rank in the top k.
            Queries with no relevant item in the top k count 0 in all three.

    Returns:
        The mean over queries.

    Raises:
        InvalidParameterError: an unknown metric or ties, arrays not of their kind and shape, k outside [1, n].

    Example:
        >>> codes = np.array([[0b00], [0b01], [0b11]], np.uint8)
        >>> retrieval_map(codes[:1], codes, [0], [0, 1, 0], k=3)  # ranks 1 and 3 relevant: (1 + 2/3) / 2
        0.8333333333333333
    """
    func = "retrieval_map"
    for name, value, valid in (("metric", metric, METRICS), ("ties", ties, TIES)):
        if value not in valid:
            raise bad(func, name, f"one of {', '.join(map(repr, valid))}", repr(value))
    distance = block_distances(func, queries, database, metric)
    nq, n = distance.shape
    labels, targets = label_arrays(func, query_labels, db_labels)
    for name, given, size, of in (("query_labels", labels, nq, "queries"), ("db_labels", targets, n, "database")):
        if given.size != size:
            raise bad(func, name, f"{size} labels, one per row of {of!r}", f"{given.size} labels")
    k = check_k(func, k, n, "database items")
    total = 0.0
    for rows in blocks((nq, n)):
        distances, wanted = distance(rows), labels[rows, None]
        if ties == "expected":
            total += expected_ap(distances, targets[None, :] == wanted, k).sum()
            continue
        ranked = stable_topk(distances, k)
        relevant = targets[ranked] == wanted
        ap = standard_ap(relevant) if ties == "stable" else grouped_ap(
            np.take_along_axis(distances, ranked, axis=1), relevant)
        total += ap.sum()
    return float(total / nq)


def _mean_where(numerator: np.ndarray, denominator: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of the ratios where ``counted``; NaN where nothing is counted."""
    ratios = np.where(counted, ratio(numerator, denominator), 0.0)
    n = np.asarray(np.count_nonzero(counted, axis=0))
    return np.divide(ratios.sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)
