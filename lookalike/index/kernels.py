"""Exact top-k search kernels: Hamming distance on packed bits, cosine similarity on float vectors.

Both return faiss's result shape, ``(values, rows)`` of shape (nq, k), best first, ties broken by ascending
row, so results are deterministic and identical across backends. Where fewer than k rows are searched the tail
is padded with row :data:`PAD_ROW` (-1) and :data:`PAD_DISTANCE` (int32 max, faiss's pad) or -inf (cosine).

Backends:

- ``"numpy"``: tiles of (query block x database chunk) from xor + ``np.bitwise_count`` (or a matmul). A
  running per-query bound, the current k-th best, keeps all but a few pairs of a tile out of the merge, so
  selection costs a comparison per pair. Large Hamming searches are split over a thread pool (ufuncs
  release the GIL); cosine leaves the threads to BLAS. Memory is bounded by the tile, never nq x n.
- ``"faiss"``: ``faiss.knn_hamming`` / ``faiss.knn`` on the caller's own array (no copy), ties settled after.
- ``"compiled"``: Hamming only, the C scan of ``_hamming.c`` built with the package (AVX2 or POPCNT chosen at
  import, its own threads); a cosine search asked of it takes ``"auto"``'s choice.
- ``"auto"``: the fastest for the shape, as measured by ``benchmarks/search.py`` (BENCHMARKS.md): the compiled
  scan for every Hamming search when it is built, else numpy or faiss by shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import InvalidParameterError
from lookalike.index import _compiled_topk, _numpy_topk
from lookalike.index._faiss_topk import _faiss_cosine, _faiss_hamming, _faiss_search, _Result
from lookalike.index._numpy_topk import (
    PAD_DISTANCE,
    PAD_ROW,
    _CosineTiles,
    _HammingTiles,
    _numpy_search,
    _TopK,
)

__all__ = ["BACKENDS", "PAD_DISTANCE", "PAD_ROW", "auto_backend", "compiled_available", "cosine_topk", "hamming_topk",
           "inverted_topk"]

BACKENDS = ("auto", "compiled", "faiss", "numpy")


def hamming_topk(queries: np.ndarray, codes: np.ndarray, k: int, *, subset: npt.ArrayLike | None = None,
                 backend: str = "auto") -> _Result:
    """The ``k`` rows of ``codes`` nearest to each query in Hamming distance.

    Args:
        queries: (nq, nbytes) uint8 packed bits.
        codes: (n, nbytes) uint8 database, searched in place when C-contiguous (copied otherwise).
        k: neighbours per query, >= 1; may exceed n (the result is padded).
        subset: optional 1-D integer row indices to restrict the search to (a metadata filter); returned rows
            are still rows of ``codes``. Order and duplicates do not matter.
        backend: ``"auto"``, ``"numpy"`` or ``"faiss"``; all return the same arrays.

    Returns:
        ``(distances, rows)``: (nq, k) int32 ascending and (nq, k) int64, ties by ascending row, padded with
        :data:`PAD_DISTANCE` and -1 where fewer than k rows are searched.

    Raises:
        InvalidParameterError: a wrong dtype or shape, widths that differ, k < 1, a row outside ``codes``,
            an unknown backend.

    Example:
        >>> codes = np.array([[0b1111], [0b0001], [0b0011]], dtype=np.uint8)
        >>> hamming_topk(codes[1:2], codes, k=2)
        (array([[0, 1]], dtype=int32), array([[1, 2]]))
    """
    acc = _topk("hamming_topk", queries, codes, k, subset, backend)
    return acc.keys, acc.rows


def cosine_topk(queries: np.ndarray, vectors: np.ndarray, k: int, *, subset: npt.ArrayLike | None = None,
                backend: str = "auto") -> _Result:
    """The ``k`` rows of ``vectors`` most similar to each query by cosine (the inner product of unit rows).

    Args:
        queries: (nq, dim) float32, rows L2-normalised, finite.
        vectors: (n, dim) float32 database, rows L2-normalised, searched in place when C-contiguous.
        k, subset, backend: as in :func:`hamming_topk`.

    Returns:
        ``(scores, rows)``: (nq, k) float32 descending and (nq, k) int64, ties by ascending row, padded with
        -inf and -1 where fewer than k rows are searched.

    Raises:
        InvalidParameterError: as in :func:`hamming_topk`.
    """
    acc = _topk("cosine_topk", queries, vectors, k, subset, backend)
    return np.negative(acc.keys, out=acc.keys), acc.rows


def compiled_available() -> bool:
    """Whether the compiled scan (``_hamming.c``) was built: :func:`inverted_topk` needs it."""
    return _compiled_topk.available()


def inverted_topk(queries: np.ndarray, lists: np.ndarray, code_at: np.ndarray, id_at: np.ndarray,
                  sizes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest codes of each query among the inverted lists it probes, by the compiled scan.

    Args:
        queries: (nq, nbytes) uint8 packed bits.
        lists: (nq, nprobe) integer list numbers per query (-1: none; a repeat is read once).
        code_at, id_at: (nlist,) uint64 addresses of each list's codes (``sizes[l]`` x nbytes uint8) and its int64
            ids, e.g. from faiss's ``ArrayInvertedLists`` (``int(invlists.get_codes(l))``), which must stay
            unchanged during the call; 0 for an empty list. The addresses are trusted, not checkable: one that
            does not hold ``sizes[l]`` codes reads memory it should not (a low-level kernel, for
            ``lookalike.partial.index``, which takes them from faiss itself).
        sizes: (nlist,) int64 codes per list.
        k: neighbours per query, >= 1.

    Returns:
        ``(distances, ids)``: (nq, k) int32 ascending and (nq, k) int64 ids, padded with :data:`PAD_DISTANCE` and
        -1; on equal distances the code met first (lists in ascending number, each in order). Each probed list is
        read once for all the queries that probe it, the lists shared among this process's cores.

    Raises:
        InvalidParameterError: the extension is not built, or an argument of the wrong shape or type.
    """
    ext = _compiled_topk.extension()
    if ext is None:
        raise InvalidParameterError("inverted_topk needs the compiled scan (lookalike/index/_hamming.c): reinstall "
                                    "the package with a C compiler present (`pip install -e .`).")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise _bad("inverted_topk", "k", "an integer >= 1", repr(k))
    queries = _matrix("inverted_topk", "queries", queries, np.uint8)
    lists = np.asarray(lists)
    if lists.ndim != 2 or lists.shape[0] != queries.shape[0] or (lists.size and lists.dtype.kind not in "iu"):
        raise _bad("inverted_topk", "lists", f"a ({queries.shape[0]}, nprobe) integer array", lists.shape)
    tables = [np.ascontiguousarray(a, dtype) for a, dtype in ((code_at, np.uint64), (id_at, np.uint64),
                                                              (sizes, np.int64))]
    if any(t.ndim != 1 or len(t) != len(tables[2]) for t in tables):
        raise _bad("inverted_topk", "code_at, id_at and sizes", "1-D arrays of one length", [t.shape for t in tables])
    distances = np.empty((queries.shape[0], int(k)), np.int32)
    ids = np.empty((queries.shape[0], int(k)), np.int64)
    try:
        ext.ivf_topk(queries, np.ascontiguousarray(lists, np.int64), *tables, queries.shape[1], int(k), distances,
                     ids, _numpy_topk.n_threads())
    except ValueError as err:
        raise InvalidParameterError(str(err)) from None
    return distances, ids


def _topk(kernel: str, queries: Any, base: Any, k: Any, subset: Any, backend: Any) -> _TopK:
    hamming = kernel == "hamming_topk"
    queries, base, rows = _validate(kernel, queries, base, k, subset, backend)
    nq, n_rows = queries.shape[0], base.shape[0] if rows is None else rows.size
    acc = _TopK(nq, int(k), np.int32 if hamming else np.float32, PAD_DISTANCE if hamming else np.inf)
    if nq == 0 or n_rows == 0:
        return acc
    if backend == "auto" or (backend == "compiled" and not hamming):
        backend = auto_backend(hamming, nq, n_rows, base.shape[1])
    if backend == "compiled":
        return _compiled_topk.compiled_search(queries, base, rows, int(k))
    if backend == "faiss":
        return _faiss_search(_faiss_hamming if hamming else _faiss_cosine, queries, base, rows, acc)
    tiles = _HammingTiles(queries, base) if hamming else _CosineTiles(queries, base)
    return _numpy_search(tiles, nq, base.shape[0], rows, int(k))


def auto_backend(hamming: bool, nq: int, n_rows: int, width: int) -> str:
    """The faster backend for the shape, from ``benchmarks/search.py`` runs on a 2-core EPYC (BENCHMARKS.md).

    Hamming, 64-bit codes at 1M rows, queries/s numpy vs faiss: nq=1 664 vs 503 (faiss scans one query on one
    thread), nq=3 831 vs 944, nq=10 1001 vs 1388, nq=32 1816 vs 1646, nq=1000 2273 vs 1621. At 100k rows faiss
    led up to nq=100 and numpy at nq=1000; one query over 100k-300k rows was a tie within the noise. Wider
    codes cost numpy a pass per 64-bit word: at 128 and 256 bits it ran 0.4-0.6x and 0.2-0.25x faiss, so they
    always go to faiss. Cosine (1280-d at 100k and 1M, 128-d at 1M): faiss led only for 2-7 queries (its
    per-query scan on both cores); numpy led or tied at nq=1 (1.0-2.8x: BLAS gemv on both cores) and from
    nq=10 on (1.0-5x: faiss's blocked BLAS path is slow below ~1000 queries).

    The compiled Hamming scan, where built, led faiss at every width and batch measured (BENCHMARKS.md, 2026-12-02:
    64-bit codes at 100k-1M rows 2.6-4.4x; 128-512 bits 1.4-2.1x), so it takes every Hamming search; the rules
    above remain for an installation without it.
    """
    if not hamming:
        return "faiss" if 2 <= nq < 8 else "numpy"
    if _compiled_topk.available():
        return "compiled"
    if width > 8:
        return "faiss"
    if nq == 1:
        return "numpy" if n_rows >= 500_000 else "faiss"
    return "numpy" if nq >= 16 and nq * n_rows >= 1 << 25 else "faiss"


def _validate(func: str, queries: Any, base: Any, k: Any, subset: Any, backend: Any) -> tuple[
        np.ndarray, np.ndarray, np.ndarray | None]:
    """Check the arguments of ``func``; return contiguous queries and base, and sorted unique subset rows."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise _bad(func, "backend", f"one of {', '.join(map(repr, BACKENDS))}", repr(backend))
    if backend == "compiled" and not _compiled_topk.available():
        raise InvalidParameterError(
            f"The 'compiled' backend of {func} is not built in this installation (lookalike/index/_hamming.c): "
            "reinstall the package with a C compiler present (`pip install -e .`), or use backend='auto'.")
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise _bad(func, "k", "an integer >= 1", repr(k))
    if k < 1:
        raise _bad(func, "k", ">= 1", k)
    name, dtype = ("codes", np.uint8) if func == "hamming_topk" else ("vectors", np.float32)
    queries, base = _matrix(func, "queries", queries, dtype), _matrix(func, name, base, dtype)
    if queries.shape[1] != base.shape[1]:
        raise _bad(func, "queries", f"{base.shape[1]} columns wide, like {name!r}", queries.shape[1])
    return queries, base, _subset(func, subset, base.shape[0])


def _matrix(func: str, name: str, array: Any, dtype: Any) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != 2 or array.shape[1] == 0:
        got = type(array).__name__
        if isinstance(array, np.ndarray):
            got = f"shape {array.shape}, dtype {array.dtype}"
        raise _bad(func, name, f"a 2-D numpy array of {np.dtype(dtype).name} with >= 1 column", got)
    return np.ascontiguousarray(array)


def _subset(func: str, subset: Any, n: int) -> np.ndarray | None:
    if subset is None:
        return None
    rows = np.asarray(subset)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise _bad(func, "subset", "a 1-D array of integer row indices", f"{rows.ndim}-D {rows.dtype} values")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise _bad(func, "subset", f"row indices in [0, {n})", f"values from {rows.min()} to {rows.max()}")
    rows = rows.astype(np.int64, copy=False)
    return rows if rows.size < 2 or bool((rows[1:] > rows[:-1]).all()) else np.unique(rows)


def _bad(func: str, name: str, expected: str, got: Any) -> InvalidParameterError:
    return InvalidParameterError(f"The {name!r} parameter of {func} must be {expected}. Got {got} instead.")
