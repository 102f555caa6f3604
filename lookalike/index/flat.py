"""In-memory exact indexes mapping int64 item keys (the catalogue's, not row numbers) to vectors.

Vectors live in one packed, C-contiguous array that the kernels of :mod:`lookalike.index.kernels` search in
place. It grows by doubling, so adding one vector at a time is amortised O(1); removing moves the last row
into the hole (swap-remove), so it costs O(removed), not O(n). Row order is therefore not insertion order,
and nothing outside this module sees rows: every result is in item keys.

Not thread-safe: callers that search while another thread writes must hold a lock (the catalogue does).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from lookalike.errors import InvalidParameterError, ItemNotFoundError
from lookalike.index._asymmetric import asymmetric_topk
from lookalike.index._checks import check_k, check_keys, check_matrix, check_new_keys
from lookalike.index.kernels import BACKENDS, PAD_DISTANCE, PAD_ROW, cosine_topk, hamming_topk
from lookalike.index.protocol import PAD_KEY, Metric, Neighbors
from lookalike.validation import Integer, check, parameter_error

__all__ = ["PAD_DISTANCE", "BinaryFlatIndex", "FloatFlatIndex"]


class _FlatIndex:
    """Keys <-> rows bookkeeping shared by the flat indexes; a subclass names its dtype and kernel."""

    _dtype: ClassVar[np.dtype[Any]]

    def __init__(self, width: int, backend: str) -> None:
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise self._bad("backend", f"one of {', '.join(map(repr, BACKENDS))}", repr(backend))
        self._backend = backend
        self._data = np.empty((0, width), dtype=self._dtype)  # rows [0, len) are live, the rest spare
        self._keys = np.empty(0, dtype=np.int64)
        self._row_of: dict[int, int] = {}
        # key -> row as an array indexed by key (-1: absent) while the keys are small non-negative integers (a
        # catalogue's are): a shortlist's 1,000 rows in ~10 us instead of ~1 ms of dict lookups. Dropped for good
        # once a key lands far past the count (then the dict answers).
        self._dense: np.ndarray | None = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | np.integer) and int(key) in self._row_of

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._data.shape[1]} columns, {len(self)} vectors>"

    def keys(self) -> np.ndarray:
        """The item keys held, (n,) int64, in row order (which removals shuffle)."""
        return self._keys[: len(self)].copy()

    def get(self, key: int) -> np.ndarray:
        """A copy of the vector stored for ``key``, (width,). Raises ItemNotFoundError when it is absent."""
        row = self._row_of.get(int(key)) if isinstance(key, int | np.integer) else None
        if row is None:
            raise ItemNotFoundError(f"key {key!r} is not in the index")
        return self._data[row].copy()

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, present)``: copies of the vectors of ``keys`` (zeros where absent) and the presence mask."""
        rows = self._rows(check_keys(keys, type(self).__name__))
        present = rows >= 0
        out = np.zeros((len(rows), self._data.shape[1]), dtype=self._dtype)
        out[present] = self._data[rows[present]]
        return out, present

    def add(self, keys: Any, vectors: Any) -> None:
        """Store ``vectors`` (m, width) under ``keys`` (m,); a key already present gets the new vector.

        When a key repeats within one call, its last vector wins. Key -1 (the padding key) is refused, and so are
        non-finite floats.
        """
        keys = check_new_keys(keys, type(self).__name__)
        vectors = self._check_vectors("vectors", vectors, rows=len(keys))
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):  # ascending keys (a load) need no copy
            unique, last = np.unique(keys[::-1], return_index=True)
            keys, vectors = unique, vectors[len(keys) - 1 - last]
        rows = self._rows(keys)
        old = rows >= 0
        if old.any():
            self._data[rows[old]] = vectors[old]
            self._rewritten(rows[old])
            keys, vectors = keys[~old], vectors[~old]
        self._append(keys, vectors)

    def remove(self, keys: Any) -> int:
        """Forget ``keys`` (m,); unknown keys are ignored. Returns how many were removed. O(m), not O(n)."""
        removed = 0
        for key in np.unique(check_keys(keys, type(self).__name__)).tolist():
            row = self._row_of.pop(key, None)
            if row is None:
                continue
            last = len(self._row_of)  # the last live row, now that the count dropped by one
            self._dropped(row, last)
            if self._dense is not None:
                self._dense[key] = -1
            if row != last:
                moved = int(self._keys[last])
                self._data[row], self._keys[row], self._row_of[moved] = self._data[last], moved, row
                if self._dense is not None:
                    self._dense[moved] = row
            removed += 1
        if len(self._keys) > 64 and 4 * len(self) < len(self._keys):  # give memory back, still amortised
            self._resize(2 * len(self))
        return removed

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in all, so that adding up to that many grows nothing (loading a catalogue's
        index in chunks otherwise doubled the arrays as it went: a transient old + new copy, then up to 2x slack)."""
        if rows > len(self._keys):
            self._resize(int(rows))

    def _append(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        start, stop = len(self), len(self) + len(keys)
        if stop > len(self._keys):
            self._resize(max(stop, 2 * len(self._keys), 16))
        self._data[start:stop], self._keys[start:stop] = vectors, keys
        self._row_of.update(zip(keys.tolist(), range(start, stop), strict=True))
        self._map_dense(keys, np.arange(start, stop))
        self._rewritten(np.arange(start, stop))

    # Hooks for an index that keeps structures over the rows (the multi-index hash tables): no-ops here.
    def _rewritten(self, rows: np.ndarray) -> None:
        """``rows`` now hold new vectors (appended, or overwritten by an upsert)."""

    def _dropped(self, row: int, last: int) -> None:
        """The vector at ``row`` is gone; the one at ``last`` (the last live row) moves into it unless equal."""

    def _resize(self, capacity: int) -> None:
        data = np.empty((capacity, self._data.shape[1]), dtype=self._dtype)
        data[: len(self)] = self._data[: len(self)]
        keys = np.empty(capacity, dtype=np.int64)
        keys[: len(self)] = self._keys[: len(self)]
        self._data, self._keys = data, keys

    def _topk(self, kernel: Any, queries: Any, k: Any, keys: Any, pad: float) -> tuple[np.ndarray, np.ndarray]:
        """``kernel``'s ``(values, keys)`` for checked arguments. The kernel is asked for no more than the rows
        searched (a k far above them would only sort padding); the rest is padded here with ``pad`` and -1."""
        k = check_k(k, type(self).__name__)
        queries = self._check_vectors("queries", queries, rows=None)
        rows = self._subset(keys)
        inner = self._inner_k(k, rows)
        values, found = kernel(queries, self._data[: len(self)], inner, subset=rows, backend=self._backend)
        return self._pad(values, found, k, pad)

    def _inner_k(self, k: int, rows: np.ndarray | None) -> int:
        return max(1, min(k, len(self) if rows is None else len(rows)))

    def _pad(self, values: np.ndarray, rows: np.ndarray, k: int, pad: float) -> tuple[np.ndarray, np.ndarray]:
        """Kernel rows as keys, and both padded to k columns."""
        if values.shape[1] < k:
            width = ((0, 0), (0, k - values.shape[1]))
            values = np.pad(values, width, constant_values=pad)
            rows = np.pad(rows, width, constant_values=PAD_ROW)
        return values, self._to_keys(rows)

    def _subset(self, keys: Any) -> np.ndarray | None:
        """The live rows of ``keys``, ascending and unique (None: no filter); unknown keys are dropped."""
        if keys is None:
            return None
        rows = self._rows(check_keys(keys, type(self).__name__))
        return np.unique(rows[rows >= 0])

    def _rows(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key, -1 where absent."""
        dense = self._dense
        if dense is None:
            return np.fromiter((self._row_of.get(k, -1) for k in keys.tolist()), dtype=np.int64, count=len(keys))
        out = np.full(len(keys), -1, dtype=np.int64)
        inside = (keys >= 0) & (keys < len(dense))
        out[inside] = dense[keys[inside]]
        return out

    def _map_dense(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Record new keys' rows in the dense map, growing it (by doubling) while the keys stay below ~4x the
        count, else giving it up."""
        if self._dense is None or not len(keys):
            return
        low, high = int(keys.min()), int(keys.max())
        if low < 0 or high >= 4 * len(self) + 4096:
            self._dense = None
            return
        if high >= len(self._dense):
            grown = np.full(max(high + 1, 2 * len(self._dense)), -1, dtype=np.int64)
            grown[: len(self._dense)] = self._dense
            self._dense = grown
        self._dense[keys] = rows

    def _to_keys(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, self._keys[np.maximum(rows, 0)] if len(self) else PAD_ROW, PAD_ROW)

    def _check_vectors(self, name: str, vectors: Any, rows: int | None) -> np.ndarray:
        return check_matrix(name, vectors, int(self._data.shape[1]), self._dtype, type(self).__name__, rows=rows)

    @classmethod
    def _bad(cls, name: str, expected: str, got: str) -> InvalidParameterError:
        return parameter_error(name, expected, got, owner=cls.__name__)


class FloatFlatIndex(_FlatIndex):
    """Exact cosine search over L2-normalised float32 vectors of ``dim`` columns.

    Example:
        >>> index = FloatFlatIndex(2)
        >>> index.add([10, 20], np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> index.search(np.array([[0.6, 0.8]], dtype=np.float32), k=1)
        Neighbors(scores=array([[0.8]], dtype=float32), keys=array([[20]]))
    """

    _dtype = np.dtype(np.float32)

    def __init__(self, dim: int, *, backend: str = "auto") -> None:
        super().__init__(int(check("dim", dim, Integer(1), owner="FloatFlatIndex")), backend)

    @property
    def dim(self) -> int:
        return int(self._data.shape[1])

    @property
    def metric(self) -> Metric:
        return "cosine"

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        """The ``k`` most similar vectors to each of ``queries`` (nq, dim), among ``keys`` if given.

        Returns ``Neighbors(scores, keys)``: (nq, k) float32 descending and (nq, k) int64, ties by row, padded
        with -inf and -1 when fewer than k vectors are searched.
        """
        return Neighbors(*self._topk(cosine_topk, queries, k, keys, -np.inf))


class BinaryFlatIndex(_FlatIndex):
    """Exact Hamming search over binary codes of ``n_bits`` bits, packed into ``n_bits / 8`` uint8 columns.

    Example:
        >>> index = BinaryFlatIndex(8)
        >>> index.add([10, 20], np.array([[0b1111], [0b0001]], dtype=np.uint8))
        >>> index.search(np.array([[0b0011]], dtype=np.uint8), k=2)
        Neighbors(scores=array([[0.875, 0.75 ]], dtype=float32), keys=array([[20, 10]]))
        >>> index.hamming(np.array([[0b0011]], dtype=np.uint8), k=2)
        (array([[1, 2]], dtype=int32), array([[20, 10]]))
    """

    _dtype = np.dtype(np.uint8)

    def __init__(self, n_bits: int, *, backend: str = "auto") -> None:
        check("n_bits", n_bits, Integer(1, multiple_of=8), owner="BinaryFlatIndex")
        super().__init__(int(n_bits) // 8, backend)

    @property
    def n_bits(self) -> int:
        return int(self._data.shape[1]) * 8

    @property
    def dim(self) -> int:
        """Bits of the codes (the protocol's ``dim`` of a Hamming index)."""
        return self.n_bits

    @property
    def metric(self) -> Metric:
        return "hamming"

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        """The ``k`` nearest codes to each of ``queries`` (nq, n_bits / 8) uint8, among ``keys`` if given.

        Returns ``Neighbors(scores, keys)``: scores ``1 - hamming / n_bits`` (nq, k) float32 descending, keys
        (nq, k) int64, ties by row, padded with -inf and -1 when fewer than k codes are searched.
        """
        distances, found = self.hamming(queries, k, keys=keys)
        scores = np.where(found != PAD_KEY, 1.0 - distances / np.float64(self.n_bits), -np.inf).astype(np.float32)
        return Neighbors(scores, found)

    def hamming(self, queries: Any, k: int, *, keys: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` with the raw distances: ``(distances, keys)``, (nq, k) int32 ascending, padded with
        :data:`~lookalike.index.kernels.PAD_DISTANCE` and -1."""
        distances, rows = self._nearest_rows(queries, k, keys)
        return distances, self._to_keys(rows)

    def _nearest_rows(self, queries: Any, k: Any, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`hamming` in rows: ``(distances, rows)``, (nq, k), padded with PAD_DISTANCE and PAD_ROW."""
        k = check_k(k, type(self).__name__)
        queries = self._check_vectors("queries", queries, rows=None)
        rows = self._subset(keys)
        distances, found = hamming_topk(queries, self._data[: len(self)], self._inner_k(k, rows), subset=rows,
                                        backend=self._backend)
        if found.shape[1] < k:
            width = ((0, 0), (0, k - found.shape[1]))
            distances = np.pad(distances, width, constant_values=PAD_DISTANCE)
            found = np.pad(found, width, constant_values=PAD_ROW)
        return distances, found

    def nearest_codes(self, queries: Any, k: int, *, keys: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The keys of :meth:`hamming`'s ``k`` nearest and their codes: ``(keys, codes)``, (nq, k) int64 and
        (nq, k, n_bits / 8) uint8, zero codes where padded (key -1). One gather by row: a shortlist's codes without
        looking each key up again (``vectors`` of 2,000 keys costs ~3 ms in Python; this ~50 us)."""
        _, found = self._nearest_rows(queries, k, keys)
        data = self._data[: len(self)]
        codes = data[np.maximum(found, 0)] if len(self) else np.zeros((*found.shape, data.shape[1]), np.uint8)
        codes[found < 0] = 0
        return self._to_keys(found), codes

    def within(self, queries: Any, radius: int, *, keys: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every code within Hamming distance ``radius`` of each query (among ``keys`` if given), by a scan.

        Returns one ``(distances, keys)`` pair per query: int32 ascending and int64, ties by row (as
        :meth:`hamming`). ``radius`` is 0 to ``n_bits``.
        """
        queries, radius, rows = self._radius_arguments(queries, radius, keys)
        data = self._data[: len(self)]
        step = max(1, (1 << 22) // max(1, data.shape[1]))  # rows per chunk: 4 MiB of codes
        out = []
        for query in queries:
            ds, rs = [], []
            for j0 in range(0, len(data) if rows is None else len(rows), step):
                part = slice(j0, j0 + step) if rows is None else rows[j0 : j0 + step]
                d = np.bitwise_count(np.bitwise_xor(data[part], query[None, :])).sum(axis=1, dtype=np.int32)
                hit = np.flatnonzero(d <= radius)
                ds.append(d[hit])
                rs.append(hit + j0 if rows is None else rows[j0 : j0 + step][hit])
            d = np.concatenate(ds) if ds else np.empty(0, np.int32)
            r = np.concatenate(rs) if rs else np.empty(0, np.int64)
            order = np.lexsort((r, d))
            out.append((d[order].astype(np.int32), self._to_keys(r[order].astype(np.int64))))
        return out

    def _radius_arguments(self, queries: Any, radius: Any, keys: Any) -> tuple[np.ndarray, int, np.ndarray | None]:
        queries = self._check_vectors("queries", queries, rows=None)
        radius = int(check("radius", radius, Integer(0, self.n_bits), owner=type(self).__name__))
        return queries, radius, self._subset(keys)

    def search_asymmetric(self, projections: Any, k: int, *, keys: Any = None) -> Neighbors:
        """The ``k`` codes best matching real-valued query ``projections`` (nq, n_bits), among ``keys`` if given.

        The score is ``sum_j p_j * (2 b_j - 1)``: the query is not binarised, so bits it is unsure about weigh
        little (see :mod:`lookalike.index._asymmetric`). Returns ``Neighbors(scores, keys)``: (nq, k) float32
        descending and (nq, k) int64, ties by row, padded with -inf and -1.
        """
        k = check_k(k, type(self).__name__)
        projections = check_matrix("projections", projections, self.n_bits, np.dtype(np.float32), type(self).__name__)
        rows = self._subset(keys)
        inner = self._inner_k(k, rows)
        scores, found = asymmetric_topk(projections, self._data[: len(self)], inner, subset=rows)
        return Neighbors(*self._pad(scores, found, k, -np.inf))
