"""The asymmetric (real query vs binary codes) top-k against a direct float64 evaluation of its formula."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import BinaryFlatIndex, Neighbors, _asymmetric
from lookalike.index._asymmetric import asymmetric_topk


def _reference(p: np.ndarray, codes: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[list, list]:
    """sum_j p_j (2 b_j - 1) in float64 for every row, best first, ties by row."""
    signs = np.unpackbits(codes, axis=1).astype(np.float64) * 2 - 1
    rows = np.arange(len(codes)) if rows is None else np.unique(rows)
    out_rows, out_scores = [], []
    for q in p.astype(np.float64):
        scores = signs[rows] @ q
        order = np.lexsort((rows, -scores))[:k]
        out_rows.append(rows[order].tolist())
        out_scores.append(scores[order].tolist())
    return out_rows, out_scores


@pytest.mark.parametrize(("n", "bits", "k"), [(300, 64, 10), (50, 16, 50), (5, 8, 9)])
def test_matches_direct_evaluation(n: int, bits: int, k: int) -> None:
    rng = np.random.default_rng(n)
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    p = rng.normal(size=(4, bits)).astype(np.float32)
    scores, rows = asymmetric_topk(p, codes, k)
    ref_rows, ref_scores = _reference(p, codes, k)
    m = min(k, n)
    assert rows[:, :m].tolist() == ref_rows
    np.testing.assert_allclose(scores[:, :m], ref_scores, atol=1e-4)
    assert (rows[:, m:] == -1).all() and np.isneginf(scores[:, m:]).all()


def test_ties_are_broken_by_row_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_asymmetric, "_BLOCK", 7)  # many blocks, so the running merge must keep every tie
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, (60, 1), dtype=np.uint8)  # only 4 distinct codes: ties everywhere
    p = rng.integers(-2, 3, (3, 8)).astype(np.float32)  # integer projections: exact float sums
    scores, rows = asymmetric_topk(p, codes, 25)
    ref_rows, ref_scores = _reference(p, codes, 25)
    assert rows.tolist() == ref_rows and scores.tolist() == ref_scores


def test_subset_restricts_the_search() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (100, 4), dtype=np.uint8)
    p = rng.normal(size=(2, 32)).astype(np.float32)
    subset = np.array([5, 7, 7, 90, 3])
    scores, rows = asymmetric_topk(p, codes, 6, subset=subset)
    ref_rows, _ = _reference(p, codes, 6, subset)
    assert rows[:, :4].tolist() == ref_rows and (rows[:, 4:] == -1).all()


def test_sign_of_projection_alone_gives_hamming_order() -> None:
    """With every |p_j| equal, the score is bits - 2 * Hamming distance: the Hamming ranking."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (200, 8), dtype=np.uint8)
    q = rng.integers(0, 256, (1, 8), dtype=np.uint8)
    p = np.unpackbits(q, axis=1).astype(np.float32) * 2 - 1
    scores, rows = asymmetric_topk(p, codes, 200)
    hamming = np.unpackbits(codes ^ q, axis=1).sum(axis=1).astype(np.int64)
    assert rows[0].tolist() == np.lexsort((np.arange(200), hamming)).tolist()
    assert scores[0].tolist() == (64 - 2 * np.sort(hamming)).tolist()


@pytest.mark.parametrize(("p", "codes", "k", "match"), [
    (np.zeros((1, 16), np.float32), np.zeros((3, 1), np.uint8), 1, "projections must be"),
    (np.zeros((1, 8), np.int64), np.zeros((3, 1), np.uint8), 1, "projections must be"),
    (np.zeros((1, 8), np.float32), np.zeros((3, 1), np.int16), 1, "codes must be"),
    (np.full((1, 8), np.nan, np.float32), np.zeros((3, 1), np.uint8), 1, "NaN"),
    (np.zeros((1, 8), np.float32), np.zeros((3, 1), np.uint8), 0, "k must be"),
    (np.zeros((1, 8), np.float32), np.zeros((3, 1), np.uint8), True, "k must be"),
])
def test_bad_input_is_refused(p: np.ndarray, codes: np.ndarray, k: int, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        asymmetric_topk(p, codes, k)


def test_bad_subset_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="outside"):
        asymmetric_topk(np.zeros((1, 8), np.float32), np.zeros((3, 1), np.uint8), 1, subset=[3])


def test_index_searches_by_item_key() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (40, 2), dtype=np.uint8)
    index = BinaryFlatIndex(16)
    index.add(np.arange(100, 140), codes)
    index.remove([100, 101])  # swap-remove shuffles rows; results must still be keys
    p = rng.normal(size=(1, 16)).astype(np.float32)
    _, keys = index.search_asymmetric(p, 5)
    rows, _ = _reference(p, codes[2:], 5)
    assert keys[0].tolist() == [r + 102 for r in rows[0]]
    _, some = index.search_asymmetric(p, 3, keys=[120, 130, 999])
    assert sorted(some[0][:2].tolist()) == [120, 130] and some[0][2] == -1
    with pytest.raises(InvalidParameterError, match="'k'"):
        index.search_asymmetric(p, 0)


def test_index_returns_neighbors_padded_like_every_search() -> None:
    rng = np.random.default_rng(5)
    index = BinaryFlatIndex(16)
    index.add([7, 3, 9], rng.integers(0, 256, (3, 2), dtype=np.uint8))
    p = rng.normal(size=(2, 16)).astype(np.float32)
    found = index.search_asymmetric(p, 5)
    assert isinstance(found, Neighbors) and found.scores.dtype == np.float32 and found.keys.dtype == np.int64
    assert (found.keys[:, 3:] == -1).all() and (found.scores[:, 3:] == -np.inf).all()
    assert sorted(found.keys[0, :3].tolist()) == [3, 7, 9]
    assert (index.search_asymmetric(p, 2, keys=[]).keys == -1).all()
    with pytest.raises(InvalidParameterError, match="'projections' parameter of BinaryFlatIndex must be finite"):
        index.search_asymmetric(np.full((1, 16), np.nan, np.float32), 1)
    with pytest.raises(InvalidParameterError, match=r"'projections' parameter of BinaryFlatIndex must be a \(n, 16\)"):
        index.search_asymmetric(p[:, :8], 1)
