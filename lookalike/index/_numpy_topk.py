"""The ``"numpy"`` backend of :mod:`lookalike.index.kernels`: the top-k accumulator, tiles, scan and threads.

:class:`_TopK` keeps the k best (key, row) pairs per query; :class:`_HammingTiles` and :class:`_CosineTiles`
compute keys for a (query block x database chunk) tile; :func:`_scan` runs tiles over rows with a running
k-th-best bound; :func:`_numpy_search` splits a search over a shared, fork-safe thread pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# The pads are public as lookalike.index.kernels.PAD_DISTANCE and PAD_ROW.
PAD_DISTANCE = int(np.iinfo(np.int32).max)
PAD_ROW = -1
_GATHER_BYTES = 1 << 26  # rows are read (subset rows copied) in chunks of at most this many bytes
_MIN_THREADED_PAIRS = 1 << 24  # below this many (query, row) pairs, threads cost more than they save
_FIRST_CHUNK = 2048  # a small first chunk keeps the partition that seeds the bounds cheap

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


def n_threads() -> int:
    """Threads a search may use: the cores this process may run on (tests shrink it through _n_threads)."""
    return _n_threads()


def _n_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
