"""The ``adapt`` hasher (issue 16, part 3): its k-NN graph, smoothing map and codes against direct numpy, its
determinism and persistence, and that on clustered data it beats ITQ on the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.evaluation import retrieval_map
from lookalike.hashing import Hasher, get_hasher
from lookalike.hashing.adapt import knn_graph, smoothed, smoothing_map


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _blobs(seed: int, n: int = 1200, d: int = 24, classes: int = 8, noise: float = 1.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d))
    labels = rng.integers(0, classes, n)
    return _unit(centres[labels] + noise * rng.normal(size=(n, d))), labels


def test_the_knn_graph_is_the_exact_one() -> None:
    U, _ = _blobs(0, n=300)
    graph = knn_graph(U, 7)
    sims = U @ U.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    assert graph.shape == (300, 7) and not (graph == np.arange(300)[:, None]).any()
    np.testing.assert_allclose(np.take_along_axis(sims, graph, 1), np.take_along_axis(sims, expected, 1), atol=1e-5)


def test_smoothing_needs_no_n_by_k_by_d_temporary() -> None:
    import tracemalloc

    U, _ = _blobs(2, n=2000, d=64)
    graph = knn_graph(U, 50)
    tracemalloc.start()
    smoothed(U, graph)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * U.nbytes < U.nbytes * 50  # a few (n, d) arrays, never U[graph]'s (n, 50, d)


def test_the_smoothing_map_is_a_ridge_regression_towards_the_identity() -> None:
    U, _ = _blobs(1, n=400, d=12)
    graph = knn_graph(U, 5)
    target = smoothed(U, graph)
    assert np.allclose(np.linalg.norm(target, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(target[0], _unit((U[0] + U[graph[0]].sum(0))[None])[0], atol=1e-5)
    np.testing.assert_allclose(target, _unit(U + U[graph].sum(axis=1)), atol=1e-5)
    W, mu = smoothing_map(U, graph, 1e-9)  # next to no shrinkage: least squares
    lstsq = np.linalg.lstsq((U - mu).astype(np.float64), (target - mu).astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(W, lstsq, atol=1e-3)
    W, _ = smoothing_map(U, graph, 1e6)  # all shrinkage: the identity
    np.testing.assert_allclose(W, np.eye(12), atol=1e-4)


def test_codes_are_itq_of_the_mapped_vectors_deterministic_and_persist() -> None:
    U, _ = _blobs(2)
    h = get_hasher("adapt", n_bits=16, k=5, random_state=0).fit(U)
    mapped = h.mapped(U)
    direct = (mapped - h.itq_mean_) @ h.components_.T @ h.rotation_
    np.testing.assert_allclose(h.project(U), direct, atol=1e-4)
    assert np.array_equal(h.transform(U), np.packbits(h.project(U) > 0, axis=1))
    again = get_hasher("adapt", n_bits=16, k=5, random_state=0).fit(U)
    assert np.array_equal(again.transform(U), h.transform(U))
    loaded = Hasher.from_state({k: np.asarray(v) for k, v in h.to_state().items()})
    assert np.array_equal(loaded.transform(U), h.transform(U))
    sampled = get_hasher("adapt", n_bits=16, k=5, sample=300, random_state=0).fit(U)  # a seeded sample fits
    assert sampled.transform(U).shape == (len(U), 2)


def test_on_clustered_data_it_beats_itq_on_the_same_vectors() -> None:
    """The reason it exists: neighbours carry the structure the raw vectors' noise hides (seeded blobs; mAP@100 of
    200 held-out queries, relevant = same blob)."""
    X, y = _blobs(3, n=2200)
    db, q, dbl, ql = X[:2000], X[2000:], y[:2000], y[2000:]
    for bits in (16, 24):
        itq = get_hasher("itq", n_bits=bits, random_state=0).fit(db)
        adapt = get_hasher("adapt", n_bits=bits, k=10, random_state=0).fit(db)
        m_itq = retrieval_map(itq.transform(q), itq.transform(db), ql, dbl, 100)
        m_adapt = retrieval_map(adapt.transform(q), adapt.transform(db), ql, dbl, 100)
        assert m_adapt > m_itq + 0.02, (bits, m_adapt, m_itq)


def test_fewer_rows_than_features_or_identical_rows_still_fit() -> None:
    rng = np.random.default_rng(6)
    few = _unit(rng.normal(size=(20, 64)))  # 20 rows, 64 features: the Gram matrix is singular
    assert get_hasher("adapt", n_bits=16, k=3, random_state=0).fit(few).transform(few).shape == (20, 2)
    same = np.tile(few[:1], (10, 1))
    assert get_hasher("adapt", n_bits=8, k=3, random_state=0).fit(same).transform(same).shape == (10, 1)


@pytest.mark.parametrize("params", [{"k": 0}, {"ridge": -1.0}, {"ridge": 0.0}, {"sample": 1}, {"n_bits": 12},
                                    {"n_bits": 64}])
def test_bad_parameters_are_refused(params: dict) -> None:
    U, _ = _blobs(4, n=100)
    with pytest.raises(InvalidParameterError):
        get_hasher("adapt", **{"n_bits": 16, **params}).fit(U)  # n_bits 64 > 24 features


@pytest.mark.parametrize("name", ["adapt", "adapt-spectral"])
def test_a_catalogue_learns_adapted_codes_and_the_cli_refuses_bad_lengths(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lookalike index DIR --hash adapt`` (or ``adapt-spectral``) goes through the hasher registry like every other
    hasher; a length the data cannot carry is a clear error that leaves the catalogue as it was."""
    from PIL import Image

    from lookalike import Catalog
    from lookalike.cli import main

    rng = np.random.default_rng(5)
    root = tmp_path / "images"
    root.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"i{i:02d}.png")
    catalog = str(tmp_path / "cat")
    assert main(["--catalog", catalog, "index", str(root), "--encoder", "pixels:size=8", "--hash", name,
                 "--bits", "16", "--no-progress"]) == 0
    with Catalog(catalog) as cat:
        assert cat.find_hashed(name, 16) is not None and cat.encoder.spec == cat.find_hashed(name, 16).spec
        hits = cat.search(root / "i07.png", k=3, rerank=0)
        assert len(hits) == 3 and hits[0].score == pytest.approx(1.0)  # its own codes: distance 0
        count = len(cat)
    capsys.readouterr()
    too_many = "256" if name == "adapt" else "64"  # adapt: at most the 192 features; adapt-spectral: 40 items - 2
    assert main(["--catalog", catalog, "index", str(root), "--encoder", "pixels:size=8", "--hash", name,
                 "--bits", too_many, "--no-progress"]) != 0
    assert "n_bits" in capsys.readouterr().err
    with Catalog(catalog) as cat:
        assert len(cat) == count and cat.find_hashed(name, 16) is not None
