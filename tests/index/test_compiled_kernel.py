"""The compiled Hamming scan (lookalike/index/_hamming.c): built, and identical to the brute-force reference in
every flavour this CPU can run (AVX2, POPCNT, portable C), across widths, tile and thread boundaries, subsets
and heavy ties."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import _compiled_topk, kernels
from lookalike.index.kernels import hamming_topk
from tests.index.test_kernels import assert_same, hamming_reference, random_codes

_HAMMING = _compiled_topk._HAMMING


def test_the_compiled_kernel_is_built_and_auto_uses_it() -> None:
    # make install builds it (setup.py); a failed build must fail here, not fall back quietly.
    assert _compiled_topk.available(), "lookalike/index/_hamming.c was not built: run `pip install -e .`"
    assert _compiled_topk.flavour() in ("avx2", "popcnt", "portable")
    assert kernels.auto_backend(True, 1, 10, 8) == "compiled"
    assert kernels.auto_backend(True, 1000, 10**6, 64) == "compiled"


FLAVOURS = _HAMMING.flavours() if _HAMMING is not None else ()


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Iterator[str]:
    best = _HAMMING.flavours()[0]
    _HAMMING.force(request.param)
    try:
        yield str(request.param)
    finally:
        _HAMMING.force(best)


@pytest.fixture(params=[(0, -1, 512), (5, 0, 512), (37, 0, 512), (0, -1, 1), (37, 0, 1)],
                ids=["default-tiles", "tiles-of-5-threaded", "tiles-of-37-threaded", "counting", "counting-threaded"])
def tiling(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Tile size, the threads' threshold, and the k from which selection counts distances (1: always)."""
    tile_rows, min_pairs, counting_k = request.param
    monkeypatch.setattr(_compiled_topk, "_TILE_ROWS", tile_rows)
    monkeypatch.setattr(_compiled_topk, "_MIN_THREADED_PAIRS", min_pairs)
    monkeypatch.setattr(_compiled_topk, "_COUNTING_K", counting_k)
    return tile_rows, min_pairs


@pytest.mark.parametrize("nbytes", [1, 3, 8, 13, 16, 32, 64, 72])
@pytest.mark.parametrize("nq", [1, 2, 3, 9, 33])
def test_every_flavour_matches_the_reference(flavour: str, tiling: tuple[int, int], nbytes: int, nq: int) -> None:
    rng = np.random.default_rng([nbytes, nq])
    codes, queries = random_codes(rng, 1203, nbytes), random_codes(rng, nq, nbytes)
    for k in (1, 10, 1300):
        assert_same(hamming_topk(queries, codes, k, backend="compiled"), hamming_reference(queries, codes, k))
    subset = rng.integers(0, 1203, 517)
    assert_same(hamming_topk(queries, codes, 10, subset=subset, backend="compiled"),
                hamming_reference(queries, codes, 10, subset))


@pytest.mark.parametrize("nbytes", [8, 16, 32, 64])
def test_heavy_ties_across_threads_keep_the_lower_row(flavour: str, tiling: tuple[int, int], nbytes: int) -> None:
    # Four distinct codes among 3001 rows: nearly every distance ties, so any slip in the order shows.
    rng = np.random.default_rng(nbytes)
    codes, queries = random_codes(rng, 3001, nbytes, distinct=4), random_codes(rng, 6, nbytes, distinct=3)
    for k in (1, 7, 800):
        assert_same(hamming_topk(queries, codes, k, backend="compiled"), hamming_reference(queries, codes, k))
        subset = np.arange(1, 3001, 3)
        assert_same(hamming_topk(queries, codes, k, subset=subset, backend="compiled"),
                    hamming_reference(queries, codes, k, subset))


def test_extreme_codes_and_unaligned_rows(flavour: str) -> None:
    # All-zero against all-one codes (distance = every bit), and rows that start off an 8-byte boundary.
    for nbytes in (8, 16, 32, 64):
        codes = np.zeros((300, nbytes), np.uint8)
        codes[::2] = 255
        queries = np.zeros((3, nbytes), np.uint8)
        assert_same(hamming_topk(queries, codes, 5, backend="compiled"), hamming_reference(queries, codes, 5))
        raw = np.random.default_rng(1).integers(0, 256, 300 * nbytes + 3, dtype=np.uint8)
        shifted = raw[3:].reshape(300, nbytes)  # a view whose rows start 3 bytes into the buffer
        assert shifted.ctypes.data % 8 != 0
        expected = hamming_reference(shifted[:4], shifted, 9)
        assert_same(hamming_topk(shifted[:4], shifted, 9, backend="compiled"), expected)


def test_the_extension_refuses_inconsistent_buffers() -> None:
    # The Python side checks shapes first; the C side still refuses what would read or write out of bounds.
    queries, codes = np.zeros((2, 8), np.uint8), np.zeros((5, 8), np.uint8)
    dist, rows = np.empty(2 * 3, np.int32), np.empty(2 * 3, np.int64)
    with pytest.raises(ValueError, match="must hold nq \\* k items"):
        _HAMMING.topk(queries, codes, 8, 4, None, dist, rows, 1)
    with pytest.raises(ValueError, match="whole number"):
        _HAMMING.topk(queries, codes, 3, 3, None, dist, rows, 1)
    with pytest.raises(ValueError, match="ascending, unique and inside codes"):
        _HAMMING.topk(queries, codes, 8, 3, np.array([0, 5], np.int64), dist, rows, 1)
    with pytest.raises(ValueError, match="ascending, unique and inside codes"):
        _HAMMING.topk(queries, codes, 8, 3, np.array([2, 1], np.int64), dist, rows, 1)
    with pytest.raises(TypeError):
        _HAMMING.topk(queries, codes, 8, 3, None, b"read-only", rows, 1)
    with pytest.raises(ValueError, match="unknown flavour"):
        _HAMMING.force("sse9")


def test_without_the_extension_auto_falls_back_and_compiled_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiled_topk, "_HAMMING", None)
    rng = np.random.default_rng(3)
    codes, queries = random_codes(rng, 500, 8), random_codes(rng, 4, 8)
    assert kernels.auto_backend(True, 4, 500, 8) in ("numpy", "faiss")
    assert_same(hamming_topk(queries, codes, 5), hamming_reference(queries, codes, 5))
    with pytest.raises(InvalidParameterError, match="'compiled' backend of hamming_topk is not built"):
        hamming_topk(queries, codes, 5, backend="compiled")
