"""One contract for every exact index, checked against a numpy reference: the factory's ("Flat", "IDMap2,Flat",
a Refine whose depth covers everything), a composed Hamming refine, and Milvus (Lite, started by the tests: float
and binary collections). A new backend joins by one more CASES row."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from milvus_server import fresh_collection, milvus_uri

from lookalike.errors import InvalidParameterError, ItemNotFoundError
from lookalike.index import (
    MAX_K,
    BinaryFlatIndex,
    FaissIDMapIndex,
    ReadableIndex,
    RefineIndex,
    VectorIndex,
    index_factory,
)

DIM, BITS = 12, 64


def _factory(spec: str, metric: str) -> Callable[[], VectorIndex]:
    return lambda: index_factory(DIM if metric == "cosine" else BITS, spec, metric=metric)  # type: ignore[arg-type]


CASES: dict[str, tuple[str, Callable[[], VectorIndex]]] = {
    "Flat-cosine": ("cosine", _factory("Flat", "cosine")),
    "Flat-hamming": ("hamming", _factory("Flat", "hamming")),
    "IDMap2,Flat-cosine": ("cosine", _factory("IDMap2,Flat", "cosine")),
    "IDMap2,Flat-hamming": ("hamming", _factory("IDMap2,Flat", "hamming")),
    "PCA6,Flat,Refine(Flat,1000)-cosine": ("cosine", _factory("PCA6,Flat,Refine(Flat,1000)", "cosine")),
    "Refine(IDMap2,Flat)-hamming": ("hamming", lambda: RefineIndex(FaissIDMapIndex(BITS, "hamming"),
                                                                   BinaryFlatIndex(BITS), depth=1000)),
    "Milvus-cosine": ("cosine", lambda: index_factory(DIM, f"Milvus({milvus_uri()})", collection=fresh_collection())),
    "Milvus-hamming": ("hamming", lambda: index_factory(BITS, f"Milvus({milvus_uri()})", metric="hamming",
                                                        collection=fresh_collection())),
}


def _vectors(rng: np.random.Generator, n: int, metric: str) -> np.ndarray:
    if metric == "hamming":
        return rng.integers(0, 256, size=(n, BITS // 8), dtype=np.uint8)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _build(name: str, rng: np.random.Generator) -> tuple[VectorIndex, str]:
    metric, make = CASES[name]
    index = make()
    if not getattr(index, "is_trained", True):
        index.train(_vectors(rng, 50, metric))  # type: ignore[attr-defined]
    return index, metric


def _reference(stored: dict[int, np.ndarray], queries: np.ndarray, k: int, metric: str,
               keys: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact scores of every stored vector, best first (ties by key): the expected answer."""
    pool = sorted(stored if keys is None else set(keys) & set(stored))
    scores = np.full((len(queries), k), -np.inf)
    found = np.full((len(queries), k), -1)
    for i, q in enumerate(queries):
        if metric == "cosine":
            s = [float(np.dot(stored[key].astype(np.float64), q)) for key in pool]
        else:
            s = [1 - int(np.unpackbits(stored[key] ^ q).sum()) / BITS for key in pool]
        order = sorted(range(len(pool)), key=lambda j: (-s[j], pool[j]))[:k]
        scores[i, : len(order)] = [s[j] for j in order]
        found[i, : len(order)] = [pool[j] for j in order]
    return scores, found


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _check_search(index: VectorIndex, stored: dict[int, np.ndarray], queries: np.ndarray, metric: str,
                  k: int, keys: list[int] | None = None) -> None:
    scores, found = index.search(queries, k, keys=keys)
    want_s, want_k = _reference(stored, queries, k, metric, keys)
    assert scores.shape == found.shape == (len(queries), k) and scores.dtype == np.float32
    assert found.dtype == np.int64
    np.testing.assert_allclose(np.where(np.isfinite(want_s), scores, 0), np.where(np.isfinite(want_s), want_s, 0),
                               atol=1e-5)
    assert (np.isinf(scores) == np.isinf(want_s)).all() and ((found == -1) == (want_k == -1)).all()
    assert (scores[np.isinf(scores)] < 0).all()  # padding is -inf, never +inf
    if keys is not None:
        assert set(found[found != -1].tolist()) <= set(keys)
    more, _ = _reference(stored, queries, k + 1, metric, keys)  # one more, to know whether the k-th ties
    for i in range(len(queries)):  # keys must agree wherever the scores are distinct
        row = more[i][np.isfinite(more[i])]
        for j in range(min(k, len(row))):
            distinct = (j == 0 or row[j - 1] - row[j] > 1e-5) and (j == len(row) - 1 or row[j] - row[j + 1] > 1e-5)
            if distinct:
                assert found[i, j] == want_k[i, j]


def test_add_upsert_remove_and_search_match_the_reference(case: str) -> None:
    rng = np.random.default_rng(3)
    index, metric = _build(case, rng)
    assert index.metric == metric and index.dim == (DIM if metric == "cosine" else BITS)
    assert isinstance(index, VectorIndex) and len(index) == 0 and index.keys().dtype == np.int64
    stored: dict[int, np.ndarray] = {}
    keys = np.r_[-7, -4, np.arange(38) * 3 + 2].astype(np.int64)  # negative keys are keys too; -1 is reserved
    vectors = _vectors(rng, 40, metric)
    index.add(keys, vectors)
    stored.update(zip(keys.tolist(), vectors, strict=True))
    newer = _vectors(rng, 6, metric)  # upsert: a key present gets the new vector; a repeated key, its last
    index.add([8, 11, 11, 500, 501, 8], newer)
    stored.update({11: newer[2], 500: newer[3], 501: newer[4], 8: newer[5]})
    index.add([], _vectors(rng, 0, metric))  # an empty add is a no-op
    assert len(index) == len(stored) and 500 in index and -7 in index and 7 not in index and "8" not in index
    assert sorted(index.keys().tolist()) == sorted(stored)
    assert index.remove([-7, 8, 99999, -7]) == 2 and index.remove([]) == 0
    del stored[-7], stored[8]
    queries = _vectors(rng, 4, metric)
    for k in (1, 7, len(stored), len(stored) + 3):
        _check_search(index, stored, queries, metric, k)
    _check_search(index, stored, queries, metric, 5, keys=[11, 14, 500, 99999, -7, 11])  # unknown, removed, twice
    _check_search(index, stored, queries, metric, 3, keys=[])
    _check_search(index, stored, queries, metric, 60, keys=[2, 5, 501])
    assert index.search(queries[:0], 3).keys.shape == (0, 3)
    if isinstance(index, ReadableIndex):
        got, present = index.vectors([11, -7, 500])
        assert present.tolist() == [True, False, True] and got.shape == (3, vectors.shape[1])
        assert got.dtype == vectors.dtype and not got[1].any()
        np.testing.assert_array_equal(got[[0, 2]], np.stack([stored[11], stored[500]]))
        np.testing.assert_array_equal(index.get(501), stored[501])
        with pytest.raises(ItemNotFoundError):
            index.get(-7)
    assert index.remove(list(stored)) == len(stored) and len(index) == 0
    found = index.search(queries, 2)
    assert (found.keys == -1).all() and (found.scores == -np.inf).all()


def test_every_exact_index_is_readable(case: str) -> None:
    index, _ = _build(case, np.random.default_rng(0))
    assert isinstance(index, ReadableIndex)


def test_ties_come_in_ascending_key_and_results_repeat(case: str) -> None:
    """Keys added in ascending order, nothing removed: every index's tie order is ascending key."""
    rng = np.random.default_rng(5)
    index, metric = _build(case, rng)
    same = np.repeat(_vectors(rng, 1, metric), 6, axis=0)
    index.add([3, 9, 10, 20, 21, 40], same)
    first = index.search(same[:2], 6)
    assert first.keys.tolist() == [[3, 9, 10, 20, 21, 40]] * 2
    np.testing.assert_array_equal(index.search(same[:2], 6).keys, first.keys)
    np.testing.assert_allclose(first.scores, 1.0, atol=1e-6)
    assert set(index.search(same[:1], 4).keys[0].tolist()) <= {3, 9, 10, 20, 21, 40}


def test_the_largest_k_pads_and_a_larger_one_is_refused(case: str) -> None:
    rng = np.random.default_rng(6)
    index, metric = _build(case, rng)
    index.add([1, 2, 3], _vectors(rng, 3, metric))
    scores, keys = index.search(_vectors(rng, 1, metric), MAX_K)
    assert keys.shape == (1, MAX_K) and (keys[0, 3:] == -1).all() and (scores[0, 3:] == -np.inf).all()
    assert sorted(keys[0, :3].tolist()) == [1, 2, 3]
    for huge in (MAX_K + 1, 10**12):
        with pytest.raises(InvalidParameterError, match=rf"'k' parameter .* must be an integer in \[1, {MAX_K}\]"):
            index.search(_vectors(rng, 1, metric), huge)


def _q(m: str, n: int = 2) -> np.ndarray:
    return _vectors(np.random.default_rng(0), n, m)


def _nan(m: str) -> np.ndarray:
    x = _q(m)
    x[1, 3] = np.nan
    return x


BAD: list[tuple[str, Callable[[VectorIndex, str], object], str]] = [
    ("narrow", lambda i, m: i.search(_q(m)[:, :3], 1), r"'queries' parameter .* must be a \(n, \d+\) array"),
    ("1-D", lambda i, m: i.search(_q(m)[0], 1), r"'queries' parameter .* must be a \(n, \d+\) array"),
    ("ints", lambda i, m: i.search(_q(m).astype(np.int64), 1), r"'queries' .* array of (float32|uint8)"),
    ("k=0", lambda i, m: i.search(_q(m), 0), r"'k' parameter .* Got 0 instead"),
    ("k=True", lambda i, m: i.search(_q(m), True), r"'k' parameter .* Got True instead"),
    ("k=1.0", lambda i, m: i.search(_q(m), 1.0), r"'k' parameter .* Got 1.0 instead"),  # type: ignore[arg-type]
    ("rows", lambda i, m: i.add([1, 2], _q(m, 3)), r"'vectors' parameter .* must be a \(2, \d+\) array"),
    ("2-D keys", lambda i, m: i.add([[1]], _q(m, 1)), r"'keys' parameter .* 1-D sequence of integer keys"),
    ("float keys", lambda i, m: i.add([1.5], _q(m, 1)), r"'keys' parameter .* 1-D sequence of integer keys"),
    ("pad key", lambda i, m: i.add([4, -1], _q(m)), r"'keys' parameter .* other than -1"),
    ("filter", lambda i, m: i.search(_q(m), 1, keys=["a"]), r"'keys' parameter .* integer keys"),
    ("remove", lambda i, m: i.remove([[1]]), r"'keys' parameter .* 1-D"),
]
NAN: list[tuple[str, Callable[[VectorIndex, str], object], str]] = [
    ("NaN query", lambda i, m: i.search(_nan(m), 1), r"'queries' parameter .* must be finite"),
    ("NaN vector", lambda i, m: i.add([5, 6], _nan(m)), r"'vectors' parameter .* must be finite"),
    ("inf query", lambda i, m: i.search(_nan(m) * np.inf, 1), r"'queries' parameter .* must be finite"),
]


@pytest.mark.parametrize(("what", "bad", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_an_invalid_parameter_error(case: str, what: str, bad: Callable[[VectorIndex, str], object],
                                                 message: str) -> None:
    index, metric = _build(case, np.random.default_rng(0))
    index.add([7, 8], _q(metric))
    with pytest.raises(InvalidParameterError, match=message):
        bad(index, metric)
    assert sorted(index.keys().tolist()) == [7, 8]  # a refused call changes nothing


@pytest.mark.parametrize("case_name", [name for name, (metric, _) in CASES.items() if metric == "cosine"])
@pytest.mark.parametrize(("what", "bad", "message"), NAN, ids=[b[0] for b in NAN])
def test_non_finite_floats_are_refused(case_name: str, what: str, bad: Callable[[VectorIndex, str], object],
                                       message: str) -> None:
    index, metric = _build(case_name, np.random.default_rng(0))
    index.add([7, 8], _q(metric))
    with pytest.raises(InvalidParameterError, match=message):
        bad(index, metric)
    assert sorted(index.keys().tolist()) == [7, 8]
