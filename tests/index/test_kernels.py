"""hamming_topk and cosine_topk against a brute-force reference (full matrix + np.lexsort)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import _compiled_topk, _faiss_topk, _numpy_topk, kernels
from lookalike.index.kernels import PAD_DISTANCE, cosine_topk, hamming_topk

BACKENDS = ("numpy", "faiss")
HAMMING_BACKENDS = ("numpy", "faiss", "compiled")


def reference(values: np.ndarray, rows: np.ndarray, k: int, pad: float, descending: bool) -> tuple:
    """Top k of each row of ``values`` (nq, m) over database ``rows`` (m,): sort by value, then by row."""
    best = np.full((values.shape[0], k), pad, dtype=values.dtype)
    found = np.full((values.shape[0], k), -1, dtype=np.int64)
    for i, row_values in enumerate(values):
        order = np.lexsort((rows, -row_values if descending else row_values))[:k]
        best[i, : order.size], found[i, : order.size] = row_values[order], rows[order]
    return best, found


def hamming_reference(
    queries: np.ndarray, codes: np.ndarray, k: int, subset: np.ndarray | None = None
) -> tuple:
    rows = np.arange(len(codes)) if subset is None else np.unique(subset)
    dist = np.bitwise_count(queries[:, None, :] ^ codes[None, rows, :]).sum(axis=-1, dtype=np.int32)
    return reference(dist, rows, k, PAD_DISTANCE, descending=False)


def cosine_reference(
    queries: np.ndarray, vectors: np.ndarray, k: int, subset: np.ndarray | None = None
) -> tuple:
    rows = np.arange(len(vectors)) if subset is None else np.unique(subset)
    return reference((queries @ vectors[rows].T).astype(np.float32), rows, k, -np.inf, descending=True)


def random_codes(rng: np.random.Generator, n: int, nbytes: int, distinct: int | None = None) -> np.ndarray:
    """Random packed codes; with ``distinct``, drawn from that many values only (heavy ties)."""
    if distinct is None:
        return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    return rng.integers(0, 256, (distinct, nbytes), dtype=np.uint8)[rng.integers(0, distinct, n)]


def exact_vectors(rng: np.random.Generator, n: int, dim: int, distinct: int | None = None) -> np.ndarray:
    """Components in multiples of 1/4: every inner product is exact in float32, in any summation order."""
    pool = rng.integers(-4, 5, (n if distinct is None else distinct, dim)).astype(np.float32) / 4
    return pool if distinct is None else pool[rng.integers(0, distinct, n)]


def assert_same(got: tuple, expected: tuple) -> None:
    assert got[0].dtype == expected[0].dtype and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


@pytest.fixture
def tiny_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every block size so that small inputs cross chunk, block, thread and gather boundaries."""
    monkeypatch.setattr(_numpy_topk, "_FIRST_CHUNK", 7)
    monkeypatch.setattr(_numpy_topk, "_MIN_THREADED_PAIRS", 0)
    monkeypatch.setattr(_numpy_topk, "_GATHER_BYTES", 300)
    monkeypatch.setattr(_faiss_topk, "_GATHER_BYTES", 300)
    monkeypatch.setattr(_numpy_topk, "_n_threads", lambda: 3)
    monkeypatch.setattr(_compiled_topk, "_TILE_ROWS", 37)
    monkeypatch.setattr(_compiled_topk, "_MIN_THREADED_PAIRS", 0)
    for tiles in (kernels._HammingTiles, kernels._CosineTiles):
        monkeypatch.setattr(tiles, "tile_pairs", 96)
        monkeypatch.setattr(tiles, "max_query_block", 4)


@pytest.mark.parametrize("backend", HAMMING_BACKENDS)
@pytest.mark.parametrize("nbytes", [2, 8, 12, 16, 32, 64])
@pytest.mark.parametrize("n", [0, 1, 5, 17, 1000, 4099])
@pytest.mark.parametrize("nq", [1, 3, 70])
def test_hamming_matches_reference(
    rng: np.random.Generator, backend: str, nbytes: int, n: int, nq: int
) -> None:
    codes, queries = random_codes(rng, n, nbytes), random_codes(rng, nq, nbytes)
    for k in (1, 10, n + 3):
        assert_same(hamming_topk(queries, codes, k, backend=backend), hamming_reference(queries, codes, k))


@pytest.mark.parametrize("backend", HAMMING_BACKENDS)
@pytest.mark.parametrize("nbytes", [2, 8, 16, 32, 64])
def test_hamming_heavy_ties_break_by_ascending_row(
    rng: np.random.Generator, backend: str, nbytes: int
) -> None:
    codes, queries = random_codes(rng, 4099, nbytes, distinct=4), random_codes(rng, 70, nbytes, distinct=6)
    for k in (1, 10, 1500):
        assert_same(hamming_topk(queries, codes, k, backend=backend), hamming_reference(queries, codes, k))


@pytest.mark.parametrize("backend", HAMMING_BACKENDS)
@pytest.mark.parametrize("distinct", [None, 4])
def test_hamming_subset_restricts_the_rows(
    rng: np.random.Generator, backend: str, distinct: int | None
) -> None:
    codes, queries = random_codes(rng, 4099, 8, distinct), random_codes(rng, 17, 8)
    for subset in (
        rng.integers(0, 4099, 1200),
        rng.permutation(4099)[:5],
        np.arange(4099),
        np.array([], int),
    ):
        got = hamming_topk(queries, codes, 10, subset=subset, backend=backend)
        assert_same(got, hamming_reference(queries, codes, 10, subset))
        assert np.isin(got[1][got[1] >= 0], subset).all()


@pytest.mark.parametrize("distinct", [None, 3])
@pytest.mark.parametrize("nq", [1, 5, 30])  # 30 queries split across the 3 threads, fewer split the rows
def test_hamming_block_boundaries(
    tiny_tiles: None, rng: np.random.Generator, distinct: int | None, nq: int
) -> None:
    codes, queries = random_codes(rng, 1001, 16, distinct), random_codes(rng, nq, 16)
    subset = rng.integers(0, 1001, 400)
    for backend in HAMMING_BACKENDS:
        for k in (1, 9, 30):
            assert_same(
                hamming_topk(queries, codes, k, backend=backend), hamming_reference(queries, codes, k)
            )
            got = hamming_topk(queries, codes, k, subset=subset, backend=backend)
            assert_same(got, hamming_reference(queries, codes, k, subset))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim", [3, 64])
@pytest.mark.parametrize("n", [0, 1, 5, 17, 1000, 4099])
@pytest.mark.parametrize("nq", [1, 3, 70])
def test_cosine_matches_reference(rng: np.random.Generator, backend: str, dim: int, n: int, nq: int) -> None:
    vectors, queries = exact_vectors(rng, n, dim), exact_vectors(rng, nq, dim)
    for k in (1, 10, n + 3):
        assert_same(cosine_topk(queries, vectors, k, backend=backend), cosine_reference(queries, vectors, k))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cosine_heavy_ties_and_subset(rng: np.random.Generator, backend: str) -> None:
    vectors, queries = exact_vectors(rng, 4099, 16, distinct=4), exact_vectors(rng, 70, 16, distinct=5)
    for k in (1, 10, 1500):
        assert_same(cosine_topk(queries, vectors, k, backend=backend), cosine_reference(queries, vectors, k))
    subset = rng.integers(0, 4099, 700)
    got = cosine_topk(queries, vectors, 10, subset=subset, backend=backend)
    assert_same(got, cosine_reference(queries, vectors, 10, subset))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cosine_on_normalised_random_vectors(rng: np.random.Generator, backend: str) -> None:
    vectors = rng.standard_normal((4099, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores, rows = cosine_topk(vectors[:50], vectors, 10, backend=backend)
    expected_scores, expected_rows = cosine_reference(vectors[:50], vectors, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(rows[:, 0], np.arange(50))  # each vector finds itself first


@pytest.mark.parametrize("nq", [1, 6, 13])
def test_cosine_block_boundaries(tiny_tiles: None, rng: np.random.Generator, nq: int) -> None:
    vectors, queries = exact_vectors(rng, 1001, 8, distinct=5), exact_vectors(rng, nq, 8)
    subset = rng.integers(0, 1001, 300)
    for backend in BACKENDS:
        for k in (1, 9, 30):
            assert_same(
                cosine_topk(queries, vectors, k, backend=backend), cosine_reference(queries, vectors, k)
            )
            got = cosine_topk(queries, vectors, k, subset=subset, backend=backend)
            assert_same(got, cosine_reference(queries, vectors, k, subset))


def test_auto_returns_what_both_backends_return(rng: np.random.Generator) -> None:
    codes, queries = random_codes(rng, 3000, 8, distinct=5), random_codes(rng, 40, 8)
    for nq in (1, 2, 40):
        assert_same(hamming_topk(queries[:nq], codes, 7), hamming_reference(queries[:nq], codes, 7))
    vectors = exact_vectors(rng, 3000, 16, distinct=5)
    for nq in (1, 40):
        expected = cosine_reference(vectors[:nq], vectors, 7)
        assert_same(cosine_topk(vectors[:nq], vectors, 7), expected)


def test_shapes_dtypes_and_padding_when_nothing_is_searched(rng: np.random.Generator) -> None:
    distances, rows = hamming_topk(random_codes(rng, 0, 8), random_codes(rng, 4, 8), 3)
    assert distances.shape == rows.shape == (0, 3) and distances.dtype == np.int32 and rows.dtype == np.int64
    distances, rows = hamming_topk(random_codes(rng, 2, 8), random_codes(rng, 4, 8), 3, subset=[])
    assert (distances == PAD_DISTANCE).all() and (rows == -1).all()
    scores, rows = cosine_topk(exact_vectors(rng, 2, 4), exact_vectors(rng, 0, 4), 3)
    assert scores.dtype == np.float32 and (scores == -np.inf).all() and (rows == -1).all()


def test_non_contiguous_inputs_are_searched_correctly(rng: np.random.Generator) -> None:
    codes, queries = random_codes(rng, 2000, 16), random_codes(rng, 9, 16)
    for backend in HAMMING_BACKENDS:
        got = hamming_topk(queries[::3], codes[::2], 5, backend=backend)
        assert_same(got, hamming_reference(queries[::3], codes[::2], 5))


def test_subset_duplicates_and_order_do_not_matter(rng: np.random.Generator) -> None:
    codes, queries = random_codes(rng, 500, 8, distinct=3), random_codes(rng, 4, 8)
    subset = rng.integers(0, 500, 300)
    expected = hamming_topk(queries, codes, 20, subset=np.unique(subset))
    assert_same(hamming_topk(queries, codes, 20, subset=subset[::-1].tolist()), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "The 'k' parameter of hamming_topk must be >= 1. Got 0 instead."),
        ({"k": -2}, "The 'k' parameter of hamming_topk must be >= 1. Got -2 instead."),
        ({"k": 2.0}, "The 'k' parameter of hamming_topk must be an integer >= 1. Got 2.0 instead."),
        ({"k": True}, "The 'k' parameter of hamming_topk must be an integer >= 1. Got True instead."),
        (
            {"backend": "gpu"},
            "The 'backend' parameter of hamming_topk must be one of 'auto', 'compiled', 'faiss', 'numpy'.",
        ),
        ({"subset": [0, 8]}, "The 'subset' parameter of hamming_topk must be row indices in [0, 8)."),
        ({"subset": [-1]}, "The 'subset' parameter of hamming_topk must be row indices in [0, 8)."),
        (
            {"subset": [[1]]},
            "The 'subset' parameter of hamming_topk must be a 1-D array of integer row indices.",
        ),
        (
            {"subset": [0.5]},
            "The 'subset' parameter of hamming_topk must be a 1-D array of integer row indices.",
        ),
        (
            {"codes": np.zeros((8, 4), np.int64)},
            "The 'codes' parameter of hamming_topk must be a 2-D numpy array",
        ),
        ({"codes": np.zeros(8, np.uint8)}, "The 'codes' parameter of hamming_topk must be a 2-D numpy array"),
        ({"codes": np.zeros((8, 0), np.uint8)}, "with >= 1 column. Got shape (8, 0), dtype uint8 instead."),
        ({"queries": [[1, 2, 3, 4]]}, "The 'queries' parameter of hamming_topk must be a 2-D numpy array"),
        ({"queries": np.zeros((2, 3), np.uint8)}, "must be 4 columns wide, like 'codes'. Got 3 instead."),
    ],
)
def test_hamming_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    arguments = {"queries": np.zeros((2, 4), np.uint8), "codes": np.zeros((8, 4), np.uint8), "k": 3, **kwargs}
    with pytest.raises(InvalidParameterError) as caught:
        hamming_topk(**arguments)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_cosine_rejects_float64_and_mismatched_widths() -> None:
    vectors = np.zeros((5, 4), np.float32)
    with pytest.raises(
        InvalidParameterError, match="'vectors' parameter of cosine_topk must be a 2-D numpy array"
    ):
        cosine_topk(vectors, vectors.astype(np.float64), 1)
    with pytest.raises(
        InvalidParameterError, match="'queries' parameter of cosine_topk must be 4 columns wide"
    ):
        cosine_topk(np.zeros((1, 3), np.float32), vectors, 1)


def test_faiss_is_loaded_lazily_with_a_passive_openmp_wait_policy() -> None:
    code = (
        "import sys, os, numpy as np\n"
        "from lookalike.index import kernels\n"
        "loaded_early = 'faiss' in sys.modules\n"
        "kernels.hamming_topk(np.zeros((1, 8), np.uint8), np.zeros((3, 8), np.uint8), 2, backend='faiss')\n"
        "print(loaded_early, os.environ['OMP_WAIT_POLICY'])\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split()[-1] == "PASSIVE"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+ warns about forking with threads
def test_threaded_search_still_works_in_a_forked_child(tiny_tiles: None, rng: np.random.Generator) -> None:
    codes, queries = random_codes(rng, 300, 8), random_codes(rng, 30, 8)
    expected = hamming_reference(queries, codes, 5)
    assert_same(hamming_topk(queries, codes, 5, backend="numpy"), expected)  # the parent's pool is up
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads behind it
        got = hamming_topk(queries, codes, 5, backend="numpy")
        os._exit(0 if np.array_equal(got[1], expected[1]) else 1)
    for _ in range(400):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung in the search")
