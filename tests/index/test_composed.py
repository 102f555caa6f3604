"""The approximate composed indexes: recall against exact search on seeded clustered data, exactness of the
projected space, composition around indexes that already hold vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError, NotFittedError
from lookalike.hashing import get_hasher
from lookalike.index import (
    BinaryFlatIndex,
    FaissIDMapIndex,
    FloatFlatIndex,
    HashedIndex,
    ProjectedIndex,
    RefineIndex,
    TrainableIndex,
    VectorIndex,
    index_factory,
    projection,
)

_BASIS = np.random.default_rng(99).normal(size=(8, 48))  # data of intrinsic dimension 8 in 48 dimensions


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 8)) @ _BASIS + 0.05 * rng.normal(size=(n, 48))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2000 items, 50 queries and the queries' exact top 10."""
    rng = np.random.default_rng(1)
    data, queries = _clustered(rng, 2000), _clustered(rng, 50)
    exact = FloatFlatIndex(48)
    exact.add(np.arange(2000), data)
    return data, queries, exact.search(queries, 10).keys


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / want.shape[1] for a, b in zip(got.tolist(), want.tolist(),
                                                                                strict=True)]))


@pytest.mark.parametrize(("spec", "floor"), [
    ("ITQ32", 0.4), ("LSH64", 0.5),  # candidates alone: asymmetric scores on the codes
    ("ITQ32,Refine(Flat,100)", 0.95), ("LSH64,Refine(Flat,200)", 0.95), ("ITQ32,Refine", 0.8),
    ("PCA8,Flat", 0.95), ("PCA8,Flat,Refine", 0.95),
])
def test_approximate_indexes_find_most_of_the_exact_top_10(clustered: tuple[np.ndarray, ...], spec: str,
                                                           floor: float) -> None:
    data, queries, want = clustered
    options: dict[str, Any] = {}
    if not spec.startswith("PCA"):
        options = {"random_state": 0, **({"n_iter": 10} if "ITQ" in spec else {})}
    index = index_factory(48, spec, **options)
    assert isinstance(index, TrainableIndex) and not index.is_trained and index.dim == 48
    index.train(data)
    assert index.is_trained and len(index) == 0
    index.add(np.arange(2000), data)
    scores, got = index.search(queries, 10)
    assert _recall(got, want) >= floor
    assert (np.diff(scores, axis=1) <= 0).all()  # best first, whatever the score
    if isinstance(index, RefineIndex):  # refined scores are the exact cosines of the keys found, ties by key
        np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, data[got]), atol=1e-5)


def test_projected_index_is_exact_in_its_own_space() -> None:
    rng = np.random.default_rng(2)
    data = _clustered(rng, 300)
    index = ProjectedIndex(6)
    index.train(data)
    index.add(np.arange(300), data)
    q = _clustered(rng, 5)
    assert index.basis is not None and index.basis.shape == (48, 6)
    np.testing.assert_allclose(index.basis.T @ index.basis, np.eye(6), atol=1e-5)  # orthonormal
    p, pq = data @ index.basis, q @ index.basis
    brute = pq.astype(np.float64) @ p.T.astype(np.float64)
    scores, keys = index.search(q, 7)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, keys, axis=1), atol=1e-5)
    np.testing.assert_allclose(scores, -np.sort(-brute, axis=1)[:, :7], atol=1e-5)
    np.testing.assert_array_equal(index.search(q, 7, keys=[3, 4, 5]).keys[:, 3:], -1)


def test_projected_index_fits_a_seeded_sample() -> None:
    data = _clustered(np.random.default_rng(3), 500)
    a, b, c = ProjectedIndex(4, seed=7, sample=100), ProjectedIndex(4, seed=7, sample=100), ProjectedIndex(4)
    for index in (a, b, c):
        index.train(data)
    np.testing.assert_array_equal(a.basis, b.basis)
    rows = np.sort(np.random.default_rng(7).choice(500, size=100, replace=False))
    np.testing.assert_array_equal(a.basis, projection(data[rows], 4))
    np.testing.assert_array_equal(c.basis, projection(data, 4))  # 500 rows, under the default sample


def test_untrained_indexes_say_so() -> None:
    for index in (ProjectedIndex(4), HashedIndex(get_hasher("lsh", n_bits=16))):
        assert not index.is_trained
        with pytest.raises(NotFittedError):
            index.search(np.zeros((1, 48), np.float32), 1)
        with pytest.raises(NotFittedError):
            index.add([1], np.zeros((1, 48), np.float32))
    with pytest.raises(InvalidParameterError, match="'vectors' parameter of ProjectedIndex.train must be a"):
        ProjectedIndex(4, dim=48).train(np.zeros((5, 40), np.float32))
    with pytest.raises(InvalidParameterError, match="must be finite"):
        ProjectedIndex(4).train(np.full((5, 48), np.nan, np.float32))


def test_composed_indexes_share_the_indexes_they_wrap() -> None:
    """The catalogue's rerank: a HashedIndex around an existing codes index, refined by an existing float index."""
    rng = np.random.default_rng(4)
    data = _clustered(rng, 500)
    hasher = get_hasher("itq", n_bits=32, random_state=0, n_iter=10).fit(data)
    codes = BinaryFlatIndex(32)
    codes.add(np.arange(500), hasher.transform(data))
    floats = FloatFlatIndex(48)
    floats.add(np.arange(500), data)
    hashed = HashedIndex(hasher, codes=codes)
    assert hashed.is_trained and hashed.dim == 48 and len(hashed) == 500
    refined = RefineIndex(hashed, floats, depth=500)
    np.testing.assert_array_equal(refined.search(data[:8], 5).keys, floats.search(data[:8], 5).keys)
    keys = [3, 7, 400, 9999]
    np.testing.assert_array_equal(refined.search(data[:8], 4, keys=keys).keys,
                                  floats.search(data[:8], 4, keys=keys).keys)
    assert len(codes) == 500 and len(floats) == 500  # nothing copied or added
    want = codes.search_asymmetric(hasher.project(data[:3]), 6)  # the candidates are the asymmetric ranking
    got = hashed.search(data[:3], 6)
    np.testing.assert_array_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.scores, want.scores)


def test_hashed_index_over_a_codes_index_without_asymmetric_search_ranks_by_hamming() -> None:
    rng = np.random.default_rng(5)
    data = _clustered(rng, 300)
    hasher = get_hasher("lsh", n_bits=64, random_state=0).fit(data)
    hashed = HashedIndex(hasher, codes=FaissIDMapIndex(64, "hamming"))
    hashed.add(np.arange(300), data)
    flat = BinaryFlatIndex(64)
    flat.add(np.arange(300), hasher.transform(data))
    got, want = hashed.search(data[:5], 8), flat.search(hasher.transform(data[:5]), 8)
    np.testing.assert_array_equal(got.scores, want.scores)
    assert hashed.remove([0, 1, 5000]) == 2 and len(hashed) == 298 and 0 not in hashed


def test_refine_gathers_in_blocks_and_drops_candidates_it_cannot_read() -> None:
    rng = np.random.default_rng(6)
    data, queries = _clustered(rng, 200), _clustered(rng, 600)  # 600 x 200 x 48 floats: more than one block
    candidates, floats = FloatFlatIndex(48), FloatFlatIndex(48)
    candidates.add(np.arange(200), data)
    floats.add(np.arange(0, 200, 2), data[::2])  # the odd keys have no float vector to refine with
    refined = RefineIndex(candidates, floats, depth=200)
    scores, keys = refined.search(queries, 150)
    assert (keys[:, :100] % 2 == 0).all() and (keys[:, 100:] == -1).all() and (scores[:, 100:] == -np.inf).all()
    want = floats.search(queries, 10)
    np.testing.assert_array_equal(keys[:, :10], want.keys)
    np.testing.assert_allclose(scores[:, :10], want.scores, atol=1e-6)
    assert len(refined) == 100  # the refine part holds what the index answers for


def test_refine_takes_k_factor_times_k_candidates_and_never_fewer_than_k() -> None:
    """Candidates rank the keys in reverse of the exact scores, so the best refined key tells the depth used."""
    angles = np.linspace(0, np.pi / 2, 100)
    exact = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)  # score for (0, 1) grows with key
    candidates, floats = FloatFlatIndex(2), FloatFlatIndex(2)
    candidates.add(np.arange(100), exact[:, ::-1].copy())  # ... and falls with key here
    floats.add(np.arange(100), exact)
    query = np.array([[0.0, 1.0]], dtype=np.float32)
    assert RefineIndex(candidates, floats, k_factor=3).search(query, 5).keys.tolist() == [[14, 13, 12, 11, 10]]
    assert RefineIndex(candidates, floats).search(query, 2).keys.tolist() == [[7, 6]]  # default k_factor 4
    assert RefineIndex(candidates, floats, depth=2).search(query, 5).keys.tolist() == [[4, 3, 2, 1, 0]]
    assert RefineIndex(candidates, floats, depth=10**6).search(query, 1).keys.tolist() == [[99]]
    assert RefineIndex(candidates, floats, depth=6).search(query, 2, keys=[50, 60, 70]).keys.tolist() == [[70, 60]]


def test_refine_checks_its_parts() -> None:
    with pytest.raises(InvalidParameterError, match="one metric"):
        RefineIndex(BinaryFlatIndex(64), FloatFlatIndex(8))
    with pytest.raises(InvalidParameterError, match="hands its vectors back"):
        RefineIndex(FloatFlatIndex(8), HashedIndex(get_hasher("lsh", n_bits=16)))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'depth' parameter of RefineIndex"):
        RefineIndex(FloatFlatIndex(8), FloatFlatIndex(8), depth=0)
    with pytest.raises(InvalidParameterError, match="Hamming index for its codes"):
        HashedIndex(get_hasher("lsh", n_bits=16), codes=FloatFlatIndex(8))
    index: VectorIndex = RefineIndex(FloatFlatIndex(8), FloatFlatIndex(8))
    assert isinstance(index, VectorIndex) and index.metric == "cosine" and index.dim == 8


def test_refine_scores_a_few_queries_as_it_scores_a_batch() -> None:
    """A few queries are re-scored without BLAS (einsum), a batch by matmul: the same neighbours, scores to
    float32 rounding."""
    rng = np.random.default_rng(8)
    data, queries = _clustered(rng, 500), _clustered(rng, 30)
    candidates, floats = FloatFlatIndex(48), FloatFlatIndex(48)
    candidates.add(np.arange(500), data)
    floats.add(np.arange(500), data)
    refined = RefineIndex(candidates, floats, depth=100)
    batch = refined.search(queries, 10)
    for i in range(0, 30, 7):
        one = refined.search(queries[i : i + 1], 10)
        np.testing.assert_array_equal(one.keys[0], batch.keys[i])
        np.testing.assert_allclose(one.scores[0], batch.scores[i], atol=1e-6)
    np.testing.assert_array_equal(batch.keys, floats.search(queries, 10).keys)
