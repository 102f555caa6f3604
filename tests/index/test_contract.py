"""One contract for every exact index the factory builds, checked against a numpy reference; plus the
approximate composed indexes (recall against exact) and the factory's grammar and registry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError, ItemNotFoundError
from lookalike.index import (
    FaissIDMapIndex,
    FloatFlatIndex,
    HashedIndex,
    ProjectedIndex,
    ReadableIndex,
    RefineIndex,
    VectorIndex,
    index_factory,
    register_index,
)

DIM, BITS = 12, 64

EXACT = [("Flat", "cosine"), ("Flat", "hamming"), ("IDMap2,Flat", "cosine"), ("IDMap2,Flat", "hamming"),
         ("PCA6,Flat,Refine(Flat,1000)", "cosine")]


def _vectors(rng: np.random.Generator, n: int, metric: str) -> np.ndarray:
    if metric == "hamming":
        return rng.integers(0, 256, size=(n, BITS // 8), dtype=np.uint8)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _build(spec: str, metric: str, rng: np.random.Generator) -> VectorIndex:
    index = index_factory(DIM if metric == "cosine" else BITS, spec, metric=metric)  # type: ignore[arg-type]
    if hasattr(index, "train") and not getattr(index, "is_trained", True):
        index.train(_vectors(rng, 50, metric))
    return index


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


@pytest.fixture(params=EXACT, ids=[f"{s}-{m}" for s, m in EXACT])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


def _check_search(index: VectorIndex, stored: dict[int, np.ndarray], queries: np.ndarray, metric: str,
                  k: int, keys: list[int] | None = None) -> None:
    scores, found = index.search(queries, k, keys=keys)
    want_s, want_k = _reference(stored, queries, k, metric, keys)
    assert scores.shape == found.shape == (len(queries), k) and scores.dtype == np.float32
    assert found.dtype == np.int64
    np.testing.assert_allclose(np.where(np.isfinite(want_s), scores, 0), np.where(np.isfinite(want_s), want_s, 0),
                               atol=1e-5)
    assert (np.isinf(scores) == np.isinf(want_s)).all() and ((found == -1) == (want_k == -1)).all()
    more, _ = _reference(stored, queries, k + 1, metric, keys)  # one more, to know whether the k-th ties
    for i in range(len(queries)):  # keys must agree wherever the scores are distinct
        row = more[i][np.isfinite(more[i])]
        for j in range(len(row)):
            distinct = (j == 0 or row[j - 1] - row[j] > 1e-5) and (j == len(row) - 1 or row[j] - row[j + 1] > 1e-5)
            if distinct and j < k:
                assert found[i, j] == want_k[i, j]


def test_add_upsert_remove_and_search_match_the_reference(case: tuple[str, str]) -> None:
    spec, metric = case
    rng = np.random.default_rng(3)
    index = _build(spec, metric, rng)
    assert index.metric == metric and index.dim == (DIM if metric == "cosine" else BITS)
    assert isinstance(index, VectorIndex) and len(index) == 0
    stored: dict[int, np.ndarray] = {}
    keys = np.arange(40, dtype=np.int64) * 3 + 5
    vectors = _vectors(rng, 40, metric)
    index.add(keys, vectors)
    stored.update(zip(keys.tolist(), vectors, strict=True))
    newer = _vectors(rng, 6, metric)  # upsert: a key present gets the new vector; a repeated key, its last
    index.add([8, 11, 11, 500, 501, 8], newer)
    stored.update({11: newer[2], 500: newer[3], 501: newer[4], 8: newer[5]})
    assert len(index) == len(stored) and 500 in index and 7 not in index and "8" not in index
    assert sorted(index.keys().tolist()) == sorted(stored)
    assert index.remove([5, 8, 99999, 5]) == 2
    del stored[5], stored[8]
    queries = _vectors(rng, 4, metric)
    for k in (1, 7, len(stored) + 3):
        _check_search(index, stored, queries, metric, k)
    _check_search(index, stored, queries, metric, 5, keys=[11, 14, 500, 99999, 5])
    _check_search(index, stored, queries, metric, 3, keys=[])
    if isinstance(index, ReadableIndex):
        got, present = index.vectors([11, 5, 500])
        assert present.tolist() == [True, False, True]
        np.testing.assert_array_equal(got[[0, 2]], np.stack([stored[11], stored[500]]))
        np.testing.assert_array_equal(index.get(501), stored[501])
        with pytest.raises(ItemNotFoundError):
            index.get(5)
    assert index.remove(list(stored)) == len(stored) and len(index) == 0
    assert (index.search(queries, 2).keys == -1).all()


@pytest.mark.parametrize("bad", [
    lambda i, m: i.search(_vectors(np.random.default_rng(0), 2, m)[:, :3], 1),  # wrong width
    lambda i, m: i.search(_vectors(np.random.default_rng(0), 2, m), 0),
    lambda i, m: i.search(_vectors(np.random.default_rng(0), 2, m), True),
    lambda i, m: i.add([1, 2], _vectors(np.random.default_rng(0), 3, m)),  # keys and rows disagree
    lambda i, m: i.add([[1]], _vectors(np.random.default_rng(0), 1, m)),
    lambda i, m: i.add([1.5], _vectors(np.random.default_rng(0), 1, m)),
])
def test_bad_input_is_an_invalid_parameter_error(case: tuple[str, str], bad: Callable[..., object]) -> None:
    spec, metric = case
    index = _build(spec, metric, np.random.default_rng(0))
    with pytest.raises(InvalidParameterError):
        bad(index, metric)


_BASIS = np.random.default_rng(99).normal(size=(8, 48))  # data of intrinsic dimension 8 in 48 dimensions


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 8)) @ _BASIS + 0.05 * rng.normal(size=(n, 48))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("spec", "floor"), [("ITQ32,Refine(Flat,100)", 0.9), ("LSH64,Refine(Flat,200)", 0.8),
                                             ("PCA8,Flat,Refine", 0.95)])
def test_approximate_indexes_find_most_of_the_exact_top_10(spec: str, floor: float) -> None:
    rng = np.random.default_rng(1)
    data, queries = _clustered(rng, 2000), _clustered(rng, 50)
    index = index_factory(48, spec)
    index.train(data)  # type: ignore[attr-defined]
    index.add(np.arange(2000), data)
    exact = FloatFlatIndex(48)
    exact.add(np.arange(2000), data)
    got, want = index.search(queries, 10).keys, exact.search(queries, 10).keys
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), want.tolist(), strict=True)])
    assert recall >= floor, recall
    scores = index.search(queries, 10).scores  # refined scores are the exact cosines of the keys found
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, data[got]), atol=1e-5)


def test_projected_index_is_exact_in_its_own_space() -> None:
    rng = np.random.default_rng(2)
    data = _clustered(rng, 300)
    index = ProjectedIndex(6)
    index.train(data)
    index.add(np.arange(300), data)
    q = data[:5]
    p, pq = data @ index.basis, q @ index.basis  # type: ignore[operator]
    want = np.argsort(-(pq @ p.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(index.search(q, 7).keys, want)


def test_composed_indexes_share_the_indexes_they_wrap() -> None:
    """The catalogue's rerank: a HashedIndex around an existing codes index, refined by an existing float index."""
    from lookalike.hashing import get_hasher

    rng = np.random.default_rng(4)
    data = _clustered(rng, 500)
    hasher = get_hasher("itq", n_bits=32, random_state=0).fit(data)
    codes = index_factory(32, "Flat", metric="hamming")
    codes.add(np.arange(500), hasher.transform(data))
    floats = FloatFlatIndex(48)
    floats.add(np.arange(500), data)
    refined = RefineIndex(HashedIndex(hasher, codes=codes), floats, depth=500)
    np.testing.assert_array_equal(refined.search(data[:8], 5).keys, floats.search(data[:8], 5).keys)
    assert len(codes) == 500 and len(floats) == 500  # nothing copied or added


@pytest.mark.parametrize("spec", ["", "Flatt", "Flat,Refine(", "ITQ,Refine", "ITQ64,Refine(Flat,0)", "PCA8",
                                  "PCA8,Flat,Refine,Refine", "x" * 500, "Flat(1)", "ITQ64,Refine(HNSW,10)"])
def test_bad_specs_say_what_the_grammar_is(spec: str) -> None:
    with pytest.raises(InvalidParameterError, match="Valid specs"):
        index_factory(16, spec)


def test_the_factory_builds_each_kind_and_a_registered_backend() -> None:
    assert isinstance(index_factory(16, "IDMap2,Flat"), FaissIDMapIndex)
    assert isinstance(index_factory(16, "ITQ16"), HashedIndex)
    refine = index_factory(16, "itq16,refine(flat,30)")
    assert isinstance(refine, RefineIndex) and refine.depth == 30
    with pytest.raises(InvalidParameterError):
        index_factory(64, "ITQ16", metric="hamming")  # codes of codes make no sense
    register_index("Toy", lambda dim, metric, args: FaissIDMapIndex(dim + int(args[0]), metric))
    toy = index_factory(8, "Toy(8)")
    assert isinstance(toy, FaissIDMapIndex) and toy.dim == 16
