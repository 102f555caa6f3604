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
- ``"auto"``: the faster of the two for the shape, as measured by ``benchmarks/search.py`` (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import InvalidParameterError

__all__ = ["BACKENDS", "PAD_DISTANCE", "PAD_ROW", "cosine_topk", "hamming_topk"]

BACKENDS = ("auto", "faiss", "numpy")
PAD_DISTANCE = int(np.iinfo(np.int32).max)
PAD_ROW = -1
_GATHER_BYTES = 1 << 26  # rows are read (subset rows copied) in chunks of at most this many bytes
_MIN_THREADED_PAIRS = 1 << 24  # below this many (query, row) pairs, threads cost more than they save
_FIRST_CHUNK = 2048  # a small first chunk keeps the partition that seeds the bounds cheap

_Result = tuple[np.ndarray, np.ndarray]
_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (owning process id, pool)
_POOL_LOCK = threading.Lock()


class _TopK:
    """The k smallest (key, row) pairs seen so far for each of nq queries; ties go to the lower row."""

    def __init__(self, nq: int, k: int, dtype: Any, pad: float) -> None:
        self.keys = np.full((nq, k), pad, dtype=dtype)
        self.rows = np.full((nq, k), PAD_ROW, dtype=np.int64)
        self.pad = pad

    def push(self, query: np.ndarray, keys: np.ndarray, rows: np.ndarray, *,
             in_row_order: bool = True) -> None:
        """Merge candidates given as three (m,) arrays: query position (ascending), key, database row.

        ``in_row_order``: each query's candidates come by ascending row and after every row it holds (as in a
        scan), so a stable sort on (query, key) settles ties. Held pads join the sort: real keys are smaller.
        """
        if not query.size:
            return
        k = self.keys.shape[1]
        first = np.concatenate([[True], query[1:] != query[:-1]])
        touched = query[first]
        group = np.concatenate([np.repeat(np.arange(touched.size), k), np.cumsum(first) - 1])
        all_keys = np.concatenate([self.keys[touched].ravel(), keys])
        all_rows = np.concatenate([self.rows[touched].ravel(), rows])
        order = np.arange(all_rows.size) if in_row_order else np.argsort(all_rows, kind="stable")
        order = order[np.argsort(_sort_key(group[order], all_keys[order]), kind="stable")]
        sizes = np.bincount(group, minlength=touched.size)
        rank = np.arange(order.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        best = order[rank < k]  # every group holds >= k entries, so this is k per group, in order
        self.keys[touched] = all_keys[best].reshape(-1, k)
        self.rows[touched] = all_rows[best].reshape(-1, k)

    def merge(self, other: _TopK) -> None:
        """Fold in another accumulator over the same queries and later rows of the database."""
        query = np.repeat(np.arange(self.keys.shape[0]), self.keys.shape[1])
        self.push(query, other.keys.ravel(), other.rows.ravel())


def _sort_key(group: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """One int64 per entry ordered as (group, key): a stable argsort of it is 5x faster than a lexsort."""
    if keys.dtype.kind == "f":
        bits = (keys + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into 0.0, which compares equal
        keys = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # float32 order as int32 order
    return (group.astype(np.int64) << 32) + keys.astype(np.int64) + (1 << 31)


class _HammingTiles:
    """Distances between packed-bit queries and codes, read as the widest word dividing a code."""

    threaded = True
    tile_pairs = 1 << 18  # best of 2**15..2**19 measured: 2 MiB of uint64 xor per tile
    max_query_block = 8  # the broadcast xor ran 2.5x slower per pair with 64 query rows than with 8

    def __init__(self, queries: np.ndarray, codes: np.ndarray) -> None:
        n_bits = codes.shape[1] * 8
        self.word = np.dtype(f"u{next(w for w in (8, 4, 2, 1) if codes.shape[1] % w == 0)}")
        self.queries, self.codes, self.row_bytes = queries.view(self.word), codes, codes.shape[1]
        self.key_dtype = np.dtype(np.uint8 if n_bits < 255 else np.uint16 if n_bits < 65535 else np.uint32)
        self.acc_dtype, self.pad, self.ceiling = np.dtype(np.int32), PAD_DISTANCE, n_bits + 1

    def chunk(self, rows: slice | np.ndarray) -> np.ndarray:
        return self.codes[rows].view(self.word)

    def scratch(self, size: int) -> np.ndarray:
        return np.empty(size, self.word)

    def keys(self, q0: int, q1: int, chunk: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
        """Fill ``out`` (q1 - q0, m) with distances to ``chunk`` (m, words), using scratch (>= out.size,)."""
        xor = scratch[: out.size].reshape(out.shape)
        for w in range(chunk.shape[1]):
            np.bitwise_xor(self.queries[q0:q1, w, None], chunk[None, :, w], out=xor)
            if w == 0:
                np.bitwise_count(xor, out=out)
            else:
                np.add(out, np.bitwise_count(xor, out=xor), out=out, casting="unsafe")


class _CosineTiles:
    """Negated inner products (smaller is better) between float32 queries and database rows."""

    threaded = False  # the matmul already runs on every core through BLAS
    tile_pairs = 1 << 22
    max_query_block = 1024

    def __init__(self, queries: np.ndarray, vectors: np.ndarray) -> None:
        self.queries, self.vectors, self.row_bytes = queries, vectors, vectors.shape[1] * 4
        self.key_dtype = self.acc_dtype = np.dtype(np.float32)
        self.pad = self.ceiling = np.inf

    def chunk(self, rows: slice | np.ndarray) -> np.ndarray:
        return self.vectors[rows]

    def scratch(self, size: int) -> np.ndarray:
        return np.empty(0, np.float32)

    def keys(self, q0: int, q1: int, chunk: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
        """Fill ``out`` (q1 - q0, m) with minus the inner products with ``chunk`` (m, dim)."""
        np.matmul(self.queries[q0:q1], chunk.T, out=out)
        np.negative(out, out=out)


_Tiles = _HammingTiles | _CosineTiles


def _scan(tiles: _Tiles, q0: int, q1: int, rows: slice | np.ndarray, k: int) -> _TopK:
    """Top k of queries [q0, q1) over database ``rows`` (a slice, or ascending row indices)."""
    acc = _TopK(q1 - q0, k, tiles.acc_dtype, tiles.pad)
    bq = -(-(q1 - q0) // -(-(q1 - q0) // tiles.max_query_block))  # equal blocks: no thin last tile
    n_rows = rows.stop - rows.start if isinstance(rows, slice) else rows.size
    width = max(min(tiles.tile_pairs // bq, n_rows, _GATHER_BYTES // tiles.row_bytes), 1)
    keys, mask, scratch = (np.empty(bq * width, tiles.key_dtype), np.empty(bq * width, np.bool_),
                           tiles.scratch(bq * width))
    for ids in _chunks(rows, width):
        chunk = tiles.chunk(ids)
        # Rows only grow during a scan, so a key equal to the current k-th best can no longer get in.
        bound = np.minimum(acc.keys[:, -1], tiles.ceiling).astype(tiles.key_dtype)[:, None]
        filling = acc.keys[:, -1] == acc.pad
        found = []
        for b0 in range(0, q1 - q0, bq):
            b1 = min(b0 + bq, q1 - q0)
            tile = keys[: (b1 - b0) * chunk.shape[0]].reshape(b1 - b0, chunk.shape[0])
            tiles.keys(q0 + b0, q0 + b1, chunk, tile, scratch)
            limit = _seed(bound[b0:b1], filling[b0:b1], tile, k) if filling[b0:b1].any() else bound[b0:b1]
            hits = np.flatnonzero(np.less(tile, limit, out=mask[: tile.size].reshape(tile.shape)))
            if hits.size:
                query, col = np.divmod(hits, tile.shape[1])
                row = col + ids.start if isinstance(ids, slice) else ids[col]
                found.append((query + b0, tile.ravel()[hits], row))
        if found:
            acc.push(*(np.concatenate(parts) for parts in zip(*found, strict=True)))
    return acc


def _chunks(rows: slice | np.ndarray, width: int) -> Iterator[slice | np.ndarray]:
    """Consecutive pieces of ``rows``, ``width`` long after a first one of at most _FIRST_CHUNK."""
    start, stop = (rows.start, rows.stop) if isinstance(rows, slice) else (0, rows.size)
    j0 = start
    while j0 < stop:
        j1 = min(stop, j0 + (min(width, _FIRST_CHUNK) if j0 == start else width))
        yield slice(j0, j1) if isinstance(rows, slice) else rows[j0:j1]
        j0 = j1


def _seed(bound: np.ndarray, filling: np.ndarray, tile: np.ndarray, k: int) -> np.ndarray:
    """Limits for queries still holding fewer than k rows: just above the tile's own k-th smallest key."""
    if tile.shape[1] <= k:  # while filling, the bound is the ceiling: every key gets through
        return bound
    kth = np.partition(tile[filling], k - 1, axis=1)[:, k - 1]
    bound = bound.copy()
    bound[filling, 0] = kth + 1 if tile.dtype.kind == "u" else np.nextafter(kth, np.float32(np.inf))
    return bound


def _numpy_search(tiles: _Tiles, nq: int, n: int, subset: np.ndarray | None, k: int) -> _TopK:
    """Split the work over the thread pool: by queries when there are many, else by database rows."""
    n_rows = n if subset is None else subset.size
    parts = _n_threads() if tiles.threaded and nq * n_rows >= _MIN_THREADED_PAIRS else 1
    by_queries = nq >= 8 * parts
    cuts = [(nq if by_queries else n_rows) * part // parts for part in range(parts + 1)]
    everything = slice(0, n) if subset is None else subset

    def task(part: int) -> _TopK:
        a, b = cuts[part], cuts[part + 1]
        if by_queries:
            return _scan(tiles, a, b, everything, k)
        return _scan(tiles, 0, nq, slice(a, b) if subset is None else subset[a:b], k)

    accs = list(_pool().map(task, range(parts))) if parts > 1 else [task(0)]
    if by_queries:
        accs[0].keys = np.concatenate([a.keys for a in accs])
        accs[0].rows = np.concatenate([a.rows for a in accs])
    else:
        for other in accs[1:]:
            accs[0].merge(other)
    return accs[0]


def _pool() -> ThreadPoolExecutor:
    """The shared worker threads, made on first use and again in a forked child (which inherits none)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(_n_threads(), thread_name_prefix="lookalike-topk"))
        return _POOL[1]


def _n_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _faiss() -> Any:
    # With the default OpenMP wait policy faiss ran 15-30x slower on a shared 2-core machine. The variable
    # only counts if it is set before faiss (and so its OpenMP runtime) first loads.
    if "faiss" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    return faiss


def _faiss_search(knn: Callable[[np.ndarray, np.ndarray, int], _Result], queries: np.ndarray,
                  base: np.ndarray, subset: np.ndarray | None, acc: _TopK) -> _TopK:
    """``knn`` on all of base (no copy) or on bounded gathered chunks of the subset; merged by (key, row)."""
    k = acc.keys.shape[1]
    if subset is None:
        keys, found = knn(queries, base, min(k, len(base)))
        if keys.shape[1] == k and _settled(keys, found):
            acc.keys[...], acc.rows[...] = keys, found
        else:
            _push_found(acc, keys, found, None)
        return acc
    step = max(_GATHER_BYTES // (base.shape[1] * base.itemsize), 1)
    for j0 in range(0, subset.size, step):
        rows = subset[j0 : j0 + step]
        _push_found(acc, *knn(queries, base[rows], min(k, rows.size)), rows)
    return acc


def _settled(keys: np.ndarray, found: np.ndarray) -> bool:
    """Whether every row of a result is already in (key, row) order, with no padding."""
    earlier, later = keys[:, :-1], keys[:, 1:]
    in_order = (earlier < later) | ((earlier == later) & (found[:, :-1] < found[:, 1:]))
    return bool(in_order.all() and (found >= 0).all())


def _push_found(acc: _TopK, keys: np.ndarray, found: np.ndarray, rows: np.ndarray | None) -> None:
    query, slot = np.nonzero(found >= 0)
    hits = found[query, slot]
    acc.push(query, keys[query, slot], hits if rows is None else rows[hits], in_row_order=False)


def _faiss_hamming(queries: np.ndarray, codes: np.ndarray, k: int) -> _Result:
    # knn_hamming's heap scans rows in ascending order and keeps the first of equal distances (the heavy-tie
    # tests check it), so only the order inside the result needs settling, which _TopK.push does.
    distances, found = _faiss().knn_hamming(queries, codes, k)
    return distances, found


def _faiss_cosine(queries: np.ndarray, vectors: np.ndarray, k: int) -> _Result:
    """faiss's top 2k: its heap keeps arbitrary rows among scores equal to the k-th, so the top k is certain
    only where the 2k-th score is lower than the k-th; the other queries are redone with numpy."""
    faiss = _faiss()
    wide = min(vectors.shape[0], 2 * k)
    scores, found = faiss.knn(queries, vectors, wide, metric=faiss.METRIC_INNER_PRODUCT)
    keys = np.negative(scores, out=scores)
    unsure = np.flatnonzero(keys[:, k - 1] >= keys[:, wide - 1]) if wide < len(vectors) else np.empty(0, int)
    if unsure.size:
        exact = _scan(_CosineTiles(queries[unsure], vectors), 0, len(unsure), slice(0, len(vectors)), k)
        keys[unsure, :k], found[unsure, :k], found[unsure, k:] = exact.keys, exact.rows, PAD_ROW
    return keys, found


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


def _topk(kernel: str, queries: Any, base: Any, k: Any, subset: Any, backend: Any) -> _TopK:
    hamming = kernel == "hamming_topk"
    queries, base, rows = _validate(kernel, queries, base, k, subset, backend)
    nq, n_rows = queries.shape[0], base.shape[0] if rows is None else rows.size
    acc = _TopK(nq, int(k), np.int32 if hamming else np.float32, PAD_DISTANCE if hamming else np.inf)
    if nq == 0 or n_rows == 0:
        return acc
    if backend == "auto":
        backend = _auto_backend(hamming, nq, n_rows, base.shape[1])
    if backend == "faiss":
        return _faiss_search(_faiss_hamming if hamming else _faiss_cosine, queries, base, rows, acc)
    tiles = _HammingTiles(queries, base) if hamming else _CosineTiles(queries, base)
    return _numpy_search(tiles, nq, base.shape[0], rows, int(k))


def _auto_backend(hamming: bool, nq: int, n_rows: int, width: int) -> str:
    """The faster backend for the shape, from ``benchmarks/search.py`` runs on a 2-core EPYC (BENCHMARKS.md).

    Hamming, 64-bit codes at 1M rows, queries/s numpy vs faiss: nq=1 664 vs 503 (faiss scans one query on one
    thread), nq=3 831 vs 944, nq=10 1001 vs 1388, nq=32 1816 vs 1646, nq=1000 2273 vs 1621. At 100k rows faiss
    led up to nq=100 and numpy at nq=1000; one query over 100k-300k rows was a tie within the noise. Wider
    codes cost numpy a pass per 64-bit word: at 128 and 256 bits it ran 0.4-0.6x and 0.2-0.25x faiss, so they
    always go to faiss. Cosine (1280-d at 100k and 1M, 128-d at 1M): faiss led only for 2-7 queries (its
    per-query scan on both cores); numpy led or tied at nq=1 (1.0-2.8x: BLAS gemv on both cores) and from
    nq=10 on (1.0-5x: faiss's blocked BLAS path is slow below ~1000 queries).
    """
    if not hamming:
        return "faiss" if 2 <= nq < 8 else "numpy"
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
