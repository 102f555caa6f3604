"""The compiled inverted-file scan (``kernels.inverted_topk``) against an exact scan of the lists each query
probes, threads and ties included, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import _numpy_topk
from lookalike.index.kernels import PAD_DISTANCE, compiled_available, inverted_topk

pytestmark = pytest.mark.skipif(not compiled_available(), reason="the compiled extension is not built")


def make_lists(rng: np.random.Generator, sizes: list[int], nbytes: int, spread: float
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lists of codes near one base code (``spread``: the chance a bit differs, so small values make ties)."""
    base = rng.integers(0, 256, nbytes, dtype=np.uint8)
    codes = [base ^ np.packbits(rng.random((n, 8 * nbytes)) < spread, axis=1) for n in sizes]
    start = np.cumsum([0, *sizes])
    ids = [np.arange(a, b, dtype=np.int64) * 7 + 3 for a, b in zip(start[:-1], start[1:], strict=True)]
    return codes, ids


def tables(codes: list[np.ndarray], ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([c.ctypes.data if len(c) else 0 for c in codes], np.uint64),
            np.array([i.ctypes.data if len(i) else 0 for i in ids], np.uint64),
            np.array([len(c) for c in codes], np.int64))


def reference(queries: np.ndarray, lists: np.ndarray, codes: list[np.ndarray], ids: list[np.ndarray], k: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per query: its lists (each once) in ascending number, each in order, stably sorted by distance."""
    dist = np.full((len(queries), k), PAD_DISTANCE, np.int32)
    out = np.full((len(queries), k), -1, np.int64)
    for i, q in enumerate(queries):
        probed = sorted({int(n) for n in lists[i] if n >= 0})
        if not probed:
            continue
        c = np.concatenate([codes[n] for n in probed])
        d = np.unpackbits(c ^ q, axis=1).sum(1)
        order = np.argsort(d, kind="stable")[:k]
        dist[i, : len(order)], out[i, : len(order)] = d[order], np.concatenate([ids[n] for n in probed])[order]
    return dist, out


@pytest.mark.parametrize("nbytes", [8, 32, 5])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_equals_an_exact_scan_of_the_probed_lists(nbytes: int, threads: int, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    monkeypatch.setattr(_numpy_topk, "_n_threads", lambda: threads)
    rng = np.random.default_rng(nbytes * 10 + threads)
    sizes = [int(n) for n in rng.integers(0, 3000, 40)] + [0, 1, 9000]  # empty, tiny and large lists
    codes, ids = make_lists(rng, sizes, nbytes, 0.04)  # close codes: many equal distances
    queries = codes[-1][:1] ^ np.packbits(rng.random((300, 8 * nbytes)) < 0.04, axis=1)
    lists = rng.integers(-1, len(sizes), (300, 4))
    lists[::7, 1] = lists[::7, 0]  # a list named twice is read once
    for k in (1, 8, 40):
        got = inverted_topk(queries, lists, *tables(codes, ids), k)
        want = reference(queries, lists, codes, ids, k)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])  # ties too: the code met first


def test_no_queries_and_no_lists_probed() -> None:
    rng = np.random.default_rng(0)
    codes, ids = make_lists(rng, [5, 6], 32, 0.3)
    d, i = inverted_topk(np.zeros((0, 32), np.uint8), np.zeros((0, 2), np.int64), *tables(codes, ids), 3)
    assert d.shape == i.shape == (0, 3)
    d, i = inverted_topk(codes[0][:2], np.full((2, 2), -1), *tables(codes, ids), 3)
    assert (d == PAD_DISTANCE).all() and (i == -1).all()


def test_bad_arguments_are_refused() -> None:
    rng = np.random.default_rng(1)
    codes, ids = make_lists(rng, [5, 6], 32, 0.3)
    code_at, id_at, sizes = tables(codes, ids)
    q = codes[0][:2]
    ok = np.zeros((2, 2), np.int64)
    with pytest.raises(InvalidParameterError, match="outside the lists"):
        inverted_topk(q, np.full((2, 2), 2), code_at, id_at, sizes, 3)
    with pytest.raises(InvalidParameterError, match="outside the lists"):
        inverted_topk(q, np.full((2, 2), -2), code_at, id_at, sizes, 3)
    with pytest.raises(InvalidParameterError, match="no address"):
        inverted_topk(q, ok, np.zeros(2, np.uint64), id_at, sizes, 3)
    with pytest.raises(InvalidParameterError, match="negative size"):
        inverted_topk(q, ok, code_at, id_at, np.array([-1, 6]), 3)
    with pytest.raises(InvalidParameterError, match="one length"):
        inverted_topk(q, ok, code_at, id_at[:1], sizes, 3)
    with pytest.raises(InvalidParameterError, match="lists"):
        inverted_topk(q, ok[:1], code_at, id_at, sizes, 3)
    with pytest.raises(InvalidParameterError, match="lists"):
        inverted_topk(q, ok.astype(float), code_at, id_at, sizes, 3)
    with pytest.raises(InvalidParameterError, match="queries"):
        inverted_topk(q.astype(np.int16), ok, code_at, id_at, sizes, 3)
    for k in (0, True, 2.0):
        with pytest.raises(InvalidParameterError, match="k"):
            inverted_topk(q, ok, code_at, id_at, sizes, k)  # type: ignore[arg-type]
