"""The catalogue's stored vectors as a :class:`~lookalike.index.ReadableIndex` that holds none of them in memory.

A search by learned codes re-ranks its candidates by exact cosine on the float vectors. With the float index loaded
that costs nothing extra, but loading it means every float vector in memory: 1M items x 1280 floats are 5 GB,
read from the database before the first answer. :class:`StoredVectors` reads only the candidates' vectors, from
SQLite (its pages memory-mapped), when a search asks for them: memory stops growing with the catalogue, and a
catalogue opens in the time it takes to load its codes.

Measured (``benchmarks/catalog_scale.py``): since schema v4 (a rowid ``vectors`` table: a 5 KB vector is one page
and one overflow page, no longer a chain) ~8-15 us a vector, so a refine of 400 candidates adds ~3-6 ms to a search
(p50 5.6 ms at 100k items, 12 ms at 1M; 13 and 27 ms before).

The store is the one truth: a key removed meanwhile is simply absent (``vectors`` reports it missing), nothing
can go stale. Writes go through the catalogue, never through this view.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CatalogError, InvalidParameterError, ItemNotFoundError
from ..index import PAD_KEY, Neighbors, cosine_topk, hamming_topk
from ..index.kernels import PAD_ROW
from ..index.protocol import MAX_K, Metric
from ..validation import check_int
from .store import Store


def _keys(keys: Any) -> np.ndarray:
    array = np.asarray(keys)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise InvalidParameterError(f"StoredVectors: keys must be a 1-D array of integers. Got {array.ndim}-D "
                                    f"{array.dtype}.")
    return array.astype(np.int64, copy=False)


class StoredVectors:
    """Read-only view of one encoder's whole-image vectors in the store (see the module docstring)."""

    def __init__(self, store: Store, num: int, dim: int, dtype: np.dtype[Any], metric: Metric) -> None:
        self.store, self.num, self._dim, self.dtype, self._metric = store, num, dim, np.dtype(dtype), metric
        self.width = dim if metric == "cosine" else dim // 8

    def __repr__(self) -> str:
        return f"<StoredVectors of encoder {self.num}, {self._dim} {'dims' if self._metric == 'cosine' else 'bits'}>"

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return self.store.vector_count(self.num)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | np.integer) and bool(self.store.vectors_by_key(self.num, [int(key)]))

    def keys(self) -> np.ndarray:
        return self.store.vector_keys(self.num)

    def get(self, key: int) -> np.ndarray:
        blob = self.store.vectors_by_key(self.num, [int(key)]).get(int(key))
        if blob is None:
            raise ItemNotFoundError(f"key {key!r} has no stored vector of encoder {self.num}")
        return np.frombuffer(blob, dtype=self.dtype).copy()

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, present)`` of ``keys``: one read of the distinct real keys, zeros where absent."""
        keys = _keys(keys)
        wanted = np.unique(keys[keys != PAD_KEY])
        found = self.store.vectors_by_key(self.num, wanted.tolist())
        if not found:
            return np.zeros((len(keys), self.width), dtype=self.dtype), np.zeros(len(keys), dtype=bool)
        # One gather into the result (every fresh array costs page faults: ~2 ms per 2 MiB on this VM).
        have = np.fromiter(found, dtype=np.int64, count=len(found))
        rows = np.frombuffer(b"".join(found.values()), dtype=self.dtype).reshape(len(found), self.width)
        order = np.argsort(have)
        pos = np.minimum(np.searchsorted(have[order], keys), len(have) - 1)
        present = have[order][pos] == keys
        out = rows[order[pos]]
        if not present.all():
            out[~present] = 0
        return out, present

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        """Exact search streamed from the store a chunk at a time: memory bounded by the chunk, every vector
        read once per call (slow for a large catalogue: the exact path that loads the index is faster)."""
        k = check_int("k", k, 1, MAX_K, owner="StoredVectors")
        queries = np.asarray(queries)
        allowed = None if keys is None else set(_keys(keys).tolist())
        best_scores = np.full((len(queries), 0), -np.inf, np.float32)
        best_keys = np.full((len(queries), 0), PAD_KEY, np.int64)
        for chunk_keys, blobs in self.store.iter_vectors(self.num):
            rows = np.frombuffer(b"".join(blobs), dtype=self.dtype).reshape(len(chunk_keys), self.width)
            if allowed is not None:
                mask = np.fromiter((int(x) in allowed for x in chunk_keys), bool, count=len(chunk_keys))
                chunk_keys, rows = chunk_keys[mask], rows[mask]
                if not len(chunk_keys):
                    continue
            inner = min(k, len(chunk_keys))
            if self._metric == "cosine":
                scores, found = cosine_topk(queries, rows, inner)
            else:
                dist, found = hamming_topk(queries, rows, inner)
                scores = np.where(found != PAD_ROW, 1.0 - dist / np.float64(self._dim), -np.inf).astype(np.float32)
            got = np.where(found != PAD_ROW, chunk_keys[np.maximum(found, 0)], PAD_KEY)
            best_scores = np.concatenate([best_scores, scores], axis=1)
            best_keys = np.concatenate([best_keys, got], axis=1)
            order = np.lexsort((np.where(best_keys != PAD_KEY, best_keys, np.iinfo(np.int64).max),
                                -best_scores.astype(np.float64)), axis=1)[:, :k]
            best_scores = np.take_along_axis(best_scores, order, axis=1)
            best_keys = np.take_along_axis(best_keys, order, axis=1)
        out = Neighbors.empty(len(queries), k)
        out.scores[:, : best_scores.shape[1]] = best_scores
        out.keys[:, : best_keys.shape[1]] = best_keys
        return out

    def add(self, keys: Any, vectors: Any) -> None:
        raise CatalogError("StoredVectors is a read-only view: write through the catalogue")

    def remove(self, keys: Any) -> int:
        raise CatalogError("StoredVectors is a read-only view: write through the catalogue")
