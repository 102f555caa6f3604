"""Evaluation metrics: hand-computed values, scikit-learn where it coincides, brute force over tie orderings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from lookalike import evaluation
from lookalike.errors import InvalidParameterError
from lookalike.evaluation import (
    _ranking,
    average_precision_at_k,
    fpr_at_95,
    hamming_distances,
    map_at_k,
    precision_at_k,
    precision_recall_by_radius,
    rank_by_distance,
    rank_by_score,
    recall_at_k,
    relevance,
    retrieval_map,
    tie_aware_average_precision_at_k,
    tie_aware_map_at_k,
)

T, F = True, False


def ap_reference(ranked_relevant: list[bool] | np.ndarray, k: int) -> float:
    """Standard AP@k of one ranked list, term by term."""
    hits, total = 0, 0.0
    for t, rel in enumerate(ranked_relevant[:k], start=1):
        if rel:
            hits += 1
            total += hits / t
    return total / hits if hits else 0.0


def tie_orderings_mean(distances: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean AP@k over every ordering of the items within each group of equal distances (brute force)."""
    groups = [list(relevant[distances == value]) for value in np.unique(distances)]
    scores = [ap_reference([rel for group in ordering for rel in group], k)
              for ordering in itertools.product(*(itertools.permutations(group) for group in groups))]
    return float(np.mean(scores))


def test_all_is_sorted_and_resolves() -> None:
    assert evaluation.__all__ == sorted(evaluation.__all__)
    for name in evaluation.__all__:
        assert callable(getattr(evaluation, name))


# --- distances, rankings, relevance ---------------------------------------------------------------------------


@pytest.mark.parametrize("nbytes", [1, 3, 8, 16, 32])
def test_hamming_distances_match_unpacked_bits(rng: np.random.Generator, nbytes: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ranking, "_TILE_BYTES", 17 * 8)  # blocks of a few queries, the last one short
    queries = rng.integers(0, 256, (23, nbytes), dtype=np.uint8)
    codes = rng.integers(0, 256, (41, nbytes), dtype=np.uint8)
    bits_q, bits_c = np.unpackbits(queries, axis=1), np.unpackbits(codes, axis=1)
    expected = (bits_q[:, None, :] != bits_c[None, :, :]).sum(axis=2)
    got = hamming_distances(queries, codes)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float32, np.float64])
def test_rank_by_distance_is_a_stable_sort(rng: np.random.Generator, dtype: type) -> None:
    distances = rng.integers(0, 5, (9, 40)).astype(dtype)  # heavy ties
    full = np.argsort(distances, axis=1, kind="stable")
    for k in (1, 2, 7, 13, 39, 40):
        got = rank_by_distance(distances, k)
        assert got.dtype == np.int64 and got.shape == (9, k)
        np.testing.assert_array_equal(got, full[:, :k])
    np.testing.assert_array_equal(rank_by_distance(distances), full)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int64, np.float32])
def test_rank_by_score_is_descending_with_ties_by_row(rng: np.random.Generator, dtype: type) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    values = [info.min, info.max, 0, 1] if info else [-np.inf, np.inf, 0.0, -0.0, 1.5]
    scores = rng.choice(np.array(values, dtype=dtype), (6, 30))
    expected = np.array([np.lexsort((np.arange(30), -row.astype(np.float64))) for row in scores])
    np.testing.assert_array_equal(rank_by_score(scores, 11), expected[:, :11])
    np.testing.assert_array_equal(rank_by_score(scores), expected)


def test_relevance_of_a_ranking_and_of_the_whole_database() -> None:
    queries, labels = np.array([1, 2]), np.array([1, 1, 2, 3])
    np.testing.assert_array_equal(relevance(queries, labels, np.array([[2, 0], [2, 1]])), [[F, T], [T, F]])
    np.testing.assert_array_equal(relevance(queries, labels), [[T, T, F, F], [F, F, T, F]])
    np.testing.assert_array_equal(relevance(["cat"], np.array(["dog", "cat"])), [[F, T]])


# --- standard mAP ---------------------------------------------------------------------------------------------


def test_average_precision_hand_computed() -> None:
    relevant = np.array([[T, F, T, F, T], [F, F, F, F, F], [F, T, F, F, F]])
    # row 0: (1/1 + 2/3 + 3/5) / 3 = 34/45; row 1: nothing relevant, 0; row 2: (1/2) / 1
    np.testing.assert_allclose(average_precision_at_k(relevant), [34 / 45, 0, 1 / 2], rtol=1e-15)
    # top 2 only: row 0 has one relevant item at rank 1, so 1; row 2 has 1/2 at rank 2
    np.testing.assert_allclose(average_precision_at_k(relevant, k=2), [1, 0, 1 / 2], rtol=1e-15)
    assert map_at_k(relevant) == pytest.approx((34 / 45 + 0 + 1 / 2) / 3, rel=1e-15)
    assert map_at_k(relevant, k=1) == pytest.approx(1 / 3, rel=1e-15)  # only row 0 is relevant at rank 1


def test_average_precision_matches_sklearn_without_ties(rng: np.random.Generator) -> None:
    scores = rng.random((12, 300))  # continuous: no ties
    labels, query_labels = rng.integers(0, 4, 300), rng.integers(0, 4, 12)
    relevant_all = relevance(query_labels, labels)
    for k in (300, 50):  # k = n: everything; k < n: sklearn on the top k, normalised by the positives there
        ranking = rank_by_score(scores, k)
        ours = average_precision_at_k(relevance(query_labels, labels, ranking))
        top = np.take_along_axis(scores, ranking, axis=1)
        theirs = [average_precision_score(np.take_along_axis(relevant_all, ranking, axis=1)[q], top[q])
                  for q in range(12)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_random_relevance_matches_term_by_term_reference(rng: np.random.Generator) -> None:
    relevant = rng.random((30, 25)) < 0.3
    for k in (1, 5, 25):
        expected = [ap_reference(row, k) for row in relevant]
        np.testing.assert_allclose(average_precision_at_k(relevant, k), expected, rtol=1e-12)


# --- tie-aware mAP ---------------------------------------------------------------------------------------------


def test_tie_aware_hand_computed() -> None:
    # distances [1, 1, 2], relevant [T, F, T]: orders [T, F, T] -> (1/1 + 2/3) / 2 = 5/6 and
    # [F, T, T] -> (1/2 + 2/3) / 2 = 7/12; mean 17/24
    distances, relevant = np.array([[1, 1, 2]]), np.array([[T, F, T]])
    np.testing.assert_allclose(tie_aware_average_precision_at_k(distances, relevant), [17 / 24], rtol=1e-15)
    # k = 1 straddles the tie: rank 1 holds the relevant item half the time, AP@1 = 1 or 0
    np.testing.assert_allclose(tie_aware_average_precision_at_k(distances, relevant, 1), [1 / 2], rtol=1e-15)
    # k = 2 holds the whole tie: one relevant item, at rank 1 (AP 1) or rank 2 (AP 1/2), so 3/4
    assert tie_aware_map_at_k(distances, relevant, 2) == pytest.approx(3 / 4, rel=1e-15)


def test_tie_aware_equals_standard_without_ties(rng: np.random.Generator) -> None:
    distances = rng.permuted(np.tile(np.arange(60), (10, 1)), axis=1)  # every distance distinct
    relevant = rng.random((10, 60)) < 0.2
    for k in (1, 9, 60):
        standard = average_precision_at_k(np.take_along_axis(relevant, rank_by_distance(distances, k), axis=1))
        np.testing.assert_allclose(tie_aware_average_precision_at_k(distances, relevant, k), standard, rtol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_tie_aware_is_the_mean_over_all_tie_orderings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 7
    distances = rng.integers(0, 3 if seed % 2 else 2, (1, n))  # few values: large tie groups
    relevant = rng.random((1, n)) < 0.5
    for k in range(1, n + 1):
        expected = tie_orderings_mean(distances[0], relevant[0], k)
        got = tie_aware_average_precision_at_k(distances, relevant, k)[0]
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), k


def test_tie_aware_handles_many_queries_in_blocks(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    distances = rng.integers(0, 4, (40, 6))
    relevant = rng.random((40, 6)) < 0.4
    monkeypatch.setattr(_ranking, "BLOCK_BYTES", 17 * 6 * _ranking.PAIR_BYTES)  # blocks of 17 queries
    got = tie_aware_average_precision_at_k(distances, relevant, 3)
    expected = [tie_orderings_mean(d, r, 3) for d, r in zip(distances, relevant, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_tie_aware_does_not_depend_on_database_order(rng: np.random.Generator) -> None:
    distances = rng.integers(0, 9, (5, 500))
    relevant = rng.random((5, 500)) < 0.1
    shuffle = rng.permutation(500)
    for k in (37, 500):
        np.testing.assert_allclose(tie_aware_average_precision_at_k(distances, relevant, k),
                                   tie_aware_average_precision_at_k(distances[:, shuffle], relevant[:, shuffle], k),
                                   rtol=1e-10)


# --- precision, recall ------------------------------------------------------------------------------------------


def test_precision_and_recall_at_k_hand_computed() -> None:
    relevant = np.array([[T, F, T, T], [F, F, F, F], [T, T, F, F]])
    # top 2: 1/2, 0/2, 2/2 -> mean 1/2; top 4: 3/4, 0, 2/4 -> mean 5/12
    assert precision_at_k(relevant, 2) == pytest.approx(1 / 2, rel=1e-15)
    assert precision_at_k(relevant) == pytest.approx(5 / 12, rel=1e-15)
    # n_relevant 6, 0, 2: recall@2 = 1/6 and 2/2 (the query with none is left out) -> 7/12
    assert recall_at_k(relevant, np.array([6, 0, 2]), 2) == pytest.approx(7 / 12, rel=1e-15)
    assert math.isnan(recall_at_k(relevant[1:2], [0]))


def test_precision_recall_by_radius_matches_a_loop_over_radii(rng: np.random.Generator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ranking, "BLOCK_BYTES", 5 * 50 * _ranking.PAIR_BYTES)  # blocks of 5 queries
    distances = rng.integers(1, 17, (13, 50))  # nothing at radius 0
    relevant = rng.random((13, 50)) < 0.3
    relevant[0] = False  # a query with no relevant item: no recall
    radii = np.arange(17)
    precision, recall = precision_recall_by_radius(distances, relevant, radii)
    for i, r in enumerate(radii):
        within = distances <= r
        retrieved, hits = within.sum(1), (within & relevant).sum(1)
        expected_p = np.mean(hits[retrieved > 0] / retrieved[retrieved > 0]) if (retrieved > 0).any() else np.nan
        np.testing.assert_allclose(precision[i], expected_p, rtol=1e-12)
        np.testing.assert_allclose(recall[i], np.mean(hits[1:] / relevant[1:].sum(1)), rtol=1e-12)
    assert np.isnan(precision[0]) and recall[0] == 0
    assert (np.diff(recall) >= 0).all()
    assert recall[-1] == pytest.approx(1.0) and precision[-1] == pytest.approx(relevant.mean(1).mean())


def test_precision_recall_by_radius_hand_computed() -> None:
    # radius 0 retrieves item 0 (relevant): P 1, R 1/2; radius 1 adds item 1 (not): P 1/2, R 1/2
    precision, recall = precision_recall_by_radius(np.array([[0, 1, 2]]), np.array([[T, F, T]]), [0, 1, 2])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 1])


# --- FPR@95 -----------------------------------------------------------------------------------------------------


def fpr_at_95_sweep(distances: np.ndarray, is_match: np.ndarray) -> float:
    """Try every threshold in ascending order; the first with TPR >= 95% gives the FPR."""
    for t in np.unique(distances):
        if (distances[is_match] <= t).sum() * 100 >= 95 * is_match.sum():
            return float((distances[~is_match] <= t).mean())
    raise AssertionError("unreachable: the largest distance retrieves every pair")


def test_fpr_at_95_hand_computed() -> None:
    # 20 matches at 0..19: 19 of them (95%) lie within t = 18; non-matches at 18, 19, 25, 30: 1 of 4 within
    distances = np.r_[np.arange(20), [18, 19, 25, 30]]
    is_match = np.r_[np.ones(20, bool), np.zeros(4, bool)]
    assert fpr_at_95(distances, is_match) == 0.25
    # ties at the threshold: matches 0,0,...; TPR jumps from 0 to 100% at t = 0, so every non-match at 0 counts
    assert fpr_at_95(np.array([0, 0, 0, 1, 0]), np.array([T, T, T, F, F])) == 0.5


@pytest.mark.parametrize("seed", range(6))
def test_fpr_at_95_matches_a_threshold_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = [100, 101, 20, 7, 1000, 333][seed]
    is_match = rng.random(m) < 0.5
    is_match[:2] = T, F
    distances = np.where(is_match, rng.integers(0, 20, m), rng.integers(5, 40, m))
    if seed % 2:
        distances = distances + rng.random(m)  # floats, no ties
    assert fpr_at_95(distances, is_match) == fpr_at_95_sweep(distances, is_match)


# --- retrieval_map ----------------------------------------------------------------------------------------------


@pytest.fixture
def codes_and_labels() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    database = rng.integers(0, 256, (300, 1), dtype=np.uint8)  # 8 bits: heavy ties
    queries = rng.integers(0, 256, (40, 1), dtype=np.uint8)
    return queries, database, rng.integers(0, 3, 40), rng.integers(0, 3, 300)


@pytest.mark.parametrize("ties", ["stable", "expected", "grouped"])
def test_retrieval_map_blocked_equals_unblocked(codes_and_labels: tuple, ties: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    whole = retrieval_map(*codes_and_labels, k=50, ties=ties)
    monkeypatch.setattr(_ranking, "BLOCK_BYTES", 17 * 300 * _ranking.PAIR_BYTES)  # 17, 17, 6 queries
    assert retrieval_map(*codes_and_labels, k=50, ties=ties) == pytest.approx(whole, rel=1e-12)


def test_retrieval_map_composes_the_public_functions(codes_and_labels: tuple) -> None:
    queries, database, query_labels, db_labels = codes_and_labels
    distances = hamming_distances(queries, database)
    ranked = relevance(query_labels, db_labels, rank_by_distance(distances, 50))
    assert retrieval_map(*codes_and_labels, k=50) == pytest.approx(map_at_k(ranked), rel=1e-12)
    expected = tie_aware_map_at_k(distances, relevance(query_labels, db_labels), 50)
    assert retrieval_map(*codes_and_labels, k=50, ties="expected") == pytest.approx(expected, rel=1e-12)


def test_retrieval_map_grouped_is_sklearn_on_the_stable_top_k(codes_and_labels: tuple) -> None:
    queries, database, query_labels, db_labels = codes_and_labels
    distances = hamming_distances(queries, database)
    ranking = rank_by_distance(distances, 50)
    relevant = relevance(query_labels, db_labels, ranking)
    scores = -np.take_along_axis(distances, ranking, axis=1)
    # BinGAN's test_cifar.py: sklearn AP per query, queries with no positive skipped, the sum divided by nq
    expected = sum(average_precision_score(relevant[q], scores[q]) for q in range(len(queries)) if relevant[q].any())
    assert retrieval_map(*codes_and_labels, k=50, ties="grouped") == pytest.approx(expected / len(queries),
                                                                                   rel=1e-12)
    assert not np.isclose(retrieval_map(*codes_and_labels, k=50, ties="grouped"),
                          retrieval_map(*codes_and_labels, k=50))  # the ties matter here


def test_retrieval_map_cosine_ranks_by_similarity(rng: np.random.Generator) -> None:
    queries, database = rng.normal(size=(9, 16)), rng.normal(size=(80, 16)) * rng.random((80, 1))
    query_labels, db_labels = rng.integers(0, 2, 9), rng.integers(0, 2, 80)
    unit = database / np.linalg.norm(database, axis=1, keepdims=True)
    similarity = queries / np.linalg.norm(queries, axis=1, keepdims=True) @ unit.T
    expected = map_at_k(relevance(query_labels, db_labels, rank_by_score(similarity, 20)))
    for dtype in (np.float32, np.float64):
        got = retrieval_map(queries.astype(dtype), database.astype(dtype), query_labels, db_labels, 20,
                            metric="cosine")
        assert got == pytest.approx(expected, rel=1e-6)


def test_retrieval_map_hand_computed() -> None:
    codes = np.array([[0b00], [0b01], [0b11]], np.uint8)
    # distances 0, 1, 2 from code 0: relevant at ranks 1 and 3 -> (1/1 + 2/3) / 2
    assert retrieval_map(codes[:1], codes, [0], [0, 1, 0], k=3) == pytest.approx(5 / 6, rel=1e-15)


# --- bad input ----------------------------------------------------------------------------------------------------


REL = np.array([[T, F, T]])
DIST = np.array([[0, 1, 2]])
CODES = np.zeros((2, 1), np.uint8)
BAD_CALLS = {
    "k zero": (lambda: map_at_k(REL, 0), "The 'k' parameter of map_at_k must be >= 1. Got 0 instead."),
    "k above n": (lambda: precision_at_k(REL, 4), "'k' parameter of precision_at_k must be <= 3"),
    "k bool": (lambda: average_precision_at_k(REL, True), "integer >= 1 or None. Got True"),
    "k float": (lambda: rank_by_distance(DIST, 1.0), "integer >= 1 or None. Got 1.0"),
    "int relevance": (lambda: map_at_k(REL.astype(int)), "'relevant' parameter of map_at_k must be a non-empty"),
    "1-D relevance": (lambda: map_at_k(REL[0]), "2-D array of bool. Got shape (3,)"),
    "empty": (lambda: map_at_k(np.zeros((0, 3), bool)), "non-empty"),
    "shape mismatch": (lambda: tie_aware_map_at_k(DIST, REL[:, :2]), "of shape (1, 3), like 'distances'"),
    "nan distance": (lambda: rank_by_distance([[0.0, np.nan]]), "free of NaN"),
    "int8 codes": (lambda: hamming_distances(CODES.astype(np.int8), CODES), "uint8 packed bits"),
    "uint16 codes": (lambda: hamming_distances(CODES.astype(np.uint16), CODES), "dtype uint16"),
    "widths": (lambda: hamming_distances(np.zeros((1, 2), np.uint8), CODES), "1 bytes wide"),
    "pad row": (lambda: relevance([0], [0, 1], [[0, -1]]), "rows in [0, 2). Got values from -1 to 0"),
    "ranking rows": (lambda: relevance([0, 1], [0, 1], [[0, 1]]), "2 rows, one per query label"),
    "label kinds": (lambda: relevance([0], ["a"]), "labels of the same kind"),
    "float labels": (lambda: relevance([0.5], [0.5]), "integer or string labels"),
    "n_relevant short": (lambda: recall_at_k(REL, [1]), "no smaller than the relevant items ranked"),
    "n_relevant float": (lambda: recall_at_k(REL, [2.0]), "array of integers"),
    "radii": (lambda: precision_recall_by_radius(DIST, REL, [1, 0]), "strictly ascending"),
    "all matches": (lambda: fpr_at_95([1, 2], [T, T]), "True for some pairs and False for others. Got all True"),
    "pair shapes": (lambda: fpr_at_95([1, 2, 3], [T, F]), "of shape (3,), like 'distances'"),
    "metric": (lambda: retrieval_map(CODES, CODES, [0, 0], [0, 0], 1, metric="l2"), "one of 'cosine', 'hamming'"),
    "ties": (lambda: retrieval_map(CODES, CODES, [0, 0], [0, 0], 1, ties="random"), "'ties' parameter"),
    "zero vector": (lambda: retrieval_map(np.ones((1, 2)), np.zeros((2, 2)), [0], [0, 0], 1, metric="cosine"),
                    "free of all-zero rows"),
    "labels per row": (lambda: retrieval_map(CODES, CODES, [0], [0, 0], 1), "2 labels, one per row of 'queries'"),
    "label kinds in map": (lambda: retrieval_map(CODES, CODES, [0, 0], ["a", "b"], 1), "labels of the same kind"),
    "k above database": (lambda: retrieval_map(CODES, CODES, [0, 0], [0, 0], 3), "<= 2, the number of database"),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_input_raises_invalid_parameter(name: str) -> None:
    call, message = BAD_CALLS[name]
    with pytest.raises(InvalidParameterError) as caught:
        call()
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
