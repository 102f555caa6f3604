"""FloatFlatIndex and BinaryFlatIndex: add, replace, remove and search against a reference dict."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike.index
from lookalike.errors import InvalidParameterError, ItemNotFoundError
from lookalike.index import PAD_DISTANCE, BinaryFlatIndex, FloatFlatIndex

BACKENDS = ("numpy", "faiss")


def binary_vectors(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.integers(0, 4, (m, 2), dtype=np.uint8)  # 16 bits of which only 4 vary: plenty of ties


def float_vectors(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.integers(-2, 3, (m, 6)).astype(np.float32) / 4  # exact inner products, plenty of ties


def reference_search(
    index: BinaryFlatIndex | FloatFlatIndex,
    stored: dict[int, np.ndarray],
    queries: np.ndarray,
    k: int,
    keys: list[int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force over the reference dict; ties go to the earlier key in ``index.keys()`` (its row order)."""
    binary = isinstance(index, BinaryFlatIndex)
    candidates = [key for key in index.keys().tolist() if keys is None or key in keys]
    values = np.array([stored[key] for key in candidates], dtype=queries.dtype).reshape(
        len(candidates), queries.shape[1]
    )
    if binary:
        scores = np.bitwise_count(queries[:, None, :] ^ values[None, :, :]).sum(axis=-1, dtype=np.int32)
    else:
        scores = queries @ values.T
    best = np.full((len(queries), k), PAD_DISTANCE if binary else -np.inf, dtype=scores.dtype)
    found = np.full((len(queries), k), -1, dtype=np.int64)
    for i, row in enumerate(scores):
        order = np.lexsort((np.arange(len(candidates)), row if binary else -row))[:k]
        best[i, : order.size], found[i, : order.size] = (
            row[order],
            np.array(candidates, dtype=np.int64)[order],
        )
    return best, found


def check_against(
    index: BinaryFlatIndex | FloatFlatIndex,
    stored: dict[int, np.ndarray],
    rng: np.random.Generator,
    make: object,
) -> None:
    assert len(index) == len(stored)
    assert sorted(index.keys().tolist()) == sorted(stored)
    for key, vector in stored.items():
        assert key in index
        np.testing.assert_array_equal(index.get(key), vector)
    queries = make(rng, 3)  # type: ignore[operator]
    some_keys = (
        [*rng.choice(list(stored), size=min(len(stored), 5), replace=False).tolist(), 10_000]
        if stored
        else []
    )
    for k in (1, 4, len(stored) + 2):
        for keys in (None, some_keys):
            got = index.hamming(queries, k, keys=keys) if isinstance(index, BinaryFlatIndex) else index.search(
                queries, k, keys=keys)
            expected = reference_search(index, stored, queries, k, keys)
            if isinstance(index, BinaryFlatIndex):  # search gives the same keys, scored 1 - d / bits
                scores, keys_found = index.search(queries, k, keys=keys)
                np.testing.assert_array_equal(keys_found, expected[1])
                want = np.where(expected[1] >= 0, 1 - expected[0] / index.n_bits, -np.inf).astype(np.float32)
                np.testing.assert_array_equal(scores, want)
            np.testing.assert_array_equal(got[1], expected[1])
            np.testing.assert_array_equal(got[0], expected[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("cls", "width", "make"), [(BinaryFlatIndex, 16, binary_vectors), (FloatFlatIndex, 6, float_vectors)]
)
def test_random_operations_match_a_reference_dict(
    rng: np.random.Generator, backend: str, cls: type, width: int, make: object
) -> None:
    index = cls(width, backend=backend)
    stored: dict[int, np.ndarray] = {}
    for step in range(40):
        if step % 3 == 2 and stored:
            keys = rng.choice(list(stored), size=rng.integers(1, len(stored) + 1), replace=False).tolist()
            keys += [-5, 99_999]  # unknown keys are ignored
            assert index.remove(np.array(keys)) == len(keys) - 2
            for key in keys:
                stored.pop(key, None)
        else:
            keys = rng.integers(
                0, 60, rng.integers(1, 12)
            )  # overlaps earlier keys and repeats within a batch
            vectors = make(rng, len(keys))  # type: ignore[operator]
            index.add(keys, vectors)
            for key, vector in zip(keys.tolist(), vectors, strict=True):
                stored[key] = vector  # the last vector of a repeated key wins
        check_against(index, stored, rng, make)


def test_capacity_doubles_on_growth_and_shrinks_after_removals(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, capacities = BinaryFlatIndex(64), []
    resize = index._resize
    def spy(capacity: int) -> None:
        capacities.append(capacity)
        resize(capacity)

    monkeypatch.setattr(index, "_resize", spy)
    codes = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    for key, code in enumerate(codes):
        index.add([key], code[None])
    assert capacities == [16 * 2**i for i in range(9)]  # a reallocation per doubling, not per add
    assert index.remove(np.arange(2990)) == 2990
    assert capacities[-1] == 20 and len(index) == 10
    np.testing.assert_array_equal(index.search(codes[2990:], 1)[1][:, 0], np.arange(2990, 3000))
    np.testing.assert_array_equal(index.get(2995), codes[2995])


def test_remove_everything_then_search_pads(rng: np.random.Generator) -> None:
    index = FloatFlatIndex(6)
    index.add(np.arange(10), float_vectors(rng, 10))
    assert index.remove(np.arange(20)) == 10 and len(index) == 0 and index.keys().size == 0
    scores, keys = index.search(float_vectors(rng, 2), 3)
    assert (keys == -1).all() and (scores == -np.inf).all()
    index.add([7], float_vectors(rng, 1))
    assert index.keys().tolist() == [7]


def test_remove_swaps_the_last_row_into_the_hole(rng: np.random.Generator) -> None:
    index = BinaryFlatIndex(16)
    codes = binary_vectors(rng, 5)
    index.add([10, 11, 12, 13, 14], codes)
    assert index.remove([11]) == 1
    assert index.keys().tolist() == [10, 14, 12, 13]
    np.testing.assert_array_equal(index.get(14), codes[4])


def test_search_restricted_to_keys_returns_only_those(rng: np.random.Generator) -> None:
    index = BinaryFlatIndex(16)
    index.add(np.arange(100) * 3, binary_vectors(rng, 100))
    distances, keys = index.hamming(binary_vectors(rng, 4), 5, keys=np.array([3, 6, 7, 9]))
    assert set(keys[keys >= 0].tolist()) <= {3, 6, 9} and (keys[:, 3:] == -1).all()
    assert (distances[:, 3:] == PAD_DISTANCE).all()
    scores, _ = index.search(binary_vectors(rng, 4), 5, keys=np.array([3, 6, 7, 9]))
    assert (scores[:, 3:] == -np.inf).all()
    assert (index.search(binary_vectors(rng, 2), 2, keys=[])[1] == -1).all()


def test_float_index_accepts_float64_queries() -> None:
    index = FloatFlatIndex(2)
    index.add([10, 20], np.array([[1, 0], [0, 1]], dtype=np.float32))
    scores, keys = index.search(np.array([[0.6, 0.8]]), 2)
    assert keys.tolist() == [[20, 10]] and scores.dtype == np.float32
    np.testing.assert_allclose(scores, [[0.8, 0.6]])


def test_get_contains_and_repr() -> None:
    index = BinaryFlatIndex(8)
    index.add(np.array([5], dtype=np.uint32), np.array([[3]], dtype=np.uint8))
    assert 5 in index and np.int64(5) in index and 6 not in index and "5" not in index
    assert index.n_bits == 8 and FloatFlatIndex(3).dim == 3 and "1 vectors" in repr(index)
    with pytest.raises(ItemNotFoundError, match="key 6 is not in the index"):
        index.get(6)
    with pytest.raises(KeyError):
        index.get(6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: BinaryFlatIndex(12),
            "The 'n_bits' parameter of BinaryFlatIndex must be a positive multiple of 8.",
        ),
        (
            lambda: FloatFlatIndex(0),
            "The 'dim' parameter of FloatFlatIndex must be an integer >= 1. Got 0 instead.",
        ),
        (
            lambda: FloatFlatIndex(4, backend="cuda"),
            "The 'backend' parameter of FloatFlatIndex must be one of",
        ),
        (lambda: BinaryFlatIndex(16).add([1], np.zeros((1, 2), np.int64)), "must be a (1, 2) array of uint8"),
        (
            lambda: BinaryFlatIndex(16).add([1, 2], np.zeros((1, 2), np.uint8)),
            "must be a (2, 2) array of uint8",
        ),
        (
            lambda: FloatFlatIndex(4).add([[1]], np.zeros((1, 4))),
            "'keys' parameter of FloatFlatIndex must be a 1-D",
        ),
        (
            lambda: FloatFlatIndex(4).add([1.5], np.zeros((1, 4))),
            "'keys' parameter of FloatFlatIndex must be a 1-D",
        ),
        (
            lambda: FloatFlatIndex(4).search(np.zeros((1, 3)), 1),
            "'queries' parameter of FloatFlatIndex must be a (n, 4)",
        ),
        (
            lambda: FloatFlatIndex(4).search(np.zeros(4), 1),
            "'queries' parameter of FloatFlatIndex must be a (n, 4)",
        ),
        (
            lambda: FloatFlatIndex(4).search(np.zeros((1, 4)), 0),
            "The 'k' parameter of FloatFlatIndex must be an integer",
        ),
        (lambda: BinaryFlatIndex(8).remove([[1]]), "'keys' parameter of BinaryFlatIndex must be a 1-D"),
    ],
)
def test_bad_arguments_are_rejected(call: object, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        call()  # type: ignore[operator]
    assert message in str(caught.value)


def test_public_names_are_sorted() -> None:
    assert lookalike.index.__all__ == sorted(lookalike.index.__all__)
    for name in lookalike.index.__all__:
        assert getattr(lookalike.index, name) is not None


@pytest.mark.parametrize("far_key", [False, True])
def test_vectors_of_keys_stay_right_through_adds_upserts_and_removes(far_key: bool) -> None:
    """Key -> row goes through an array indexed by key while keys are small (a catalogue's), a dict after a key
    far past the count: both answer as a plain mapping does, after every kind of change."""
    rng = np.random.default_rng(3)
    index, truth = BinaryFlatIndex(16), {}
    for step in range(60):
        keys = rng.choice(300, size=int(rng.integers(1, 20)), replace=False)
        if step == 30 and far_key:
            keys = np.append(keys, 10**12)
        if rng.random() < 0.6:
            codes = rng.integers(0, 256, (len(keys), 2), dtype=np.uint8)
            index.add(keys, codes)
            truth.update({int(k): c for k, c in zip(keys, codes, strict=True)})
        else:
            index.remove(keys)
            for k in keys.tolist():
                truth.pop(k, None)
        ask = np.concatenate([rng.integers(-5, 320, 50), [10**12, -1]])
        got, present = index.vectors(ask)
        np.testing.assert_array_equal(present, [int(k) in truth for k in ask])
        for k, row, here in zip(ask.tolist(), got, present, strict=True):
            np.testing.assert_array_equal(row, truth[k] if here else np.zeros(2, np.uint8))
        assert len(index) == len(truth) and sorted(index.keys().tolist()) == sorted(truth)
    some = np.array(sorted(truth)[:5])
    np.testing.assert_array_equal(np.sort(index.search(np.zeros((1, 2), np.uint8), len(truth), keys=some).keys[0][:5]),
                                  some)
