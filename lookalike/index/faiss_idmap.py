"""A second backend behind the same protocol: faiss ``IndexIDMap2`` over a flat index (``"IDMap2,Flat"``).

Floats: ``IndexIDMap2(IndexFlatIP(dim))`` (cosine on L2-normalised rows); codes: ``IndexBinaryIDMap2(
IndexBinaryFlat(n_bits))``. Keys are faiss ids; an upsert is ``remove_ids`` then ``add_with_ids``; a key filter is
an ``IDSelectorBatch`` in ``faiss.SearchParameters(sel=...)`` (faiss >= 1.7.3; written against 1.15); vectors come
back by ``reconstruct_batch`` (floats) or ``reconstruct`` (codes, which have no batch call). It exists to keep the
seam honest (the contract suite and the catalogue's tests run on it) and as the pattern for a server backend.

Ties: which of several equally scored vectors make the cut at the k-th place is faiss's choice (the earliest
stored, in faiss 1.15's flat scans; ``remove_ids`` compacts the array keeping the order); within the k returned,
equal scores are put in ascending key order here, so results are deterministic. ``remove_ids`` rewrites the whole
array (O(n) per call, unlike the flat index's swap-remove).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import ItemNotFoundError
from lookalike.index._checks import check_k, check_keys, check_matrix, check_new_keys, in_key_order
from lookalike.index.protocol import Metric, Neighbors
from lookalike.validation import Choice, Integer, check

__all__ = ["FaissIDMapIndex"]

_OWNER = "FaissIDMapIndex"


def _faiss() -> Any:
    import faiss

    return faiss


class FaissIDMapIndex:
    """See the module docstring. ``dim``: dimensions (cosine) or bits (hamming, a multiple of 8)."""

    def __init__(self, dim: int, metric: Metric = "cosine") -> None:
        check("metric", metric, Choice(("cosine", "hamming")), owner=_OWNER)
        check("dim", dim, Integer(1, multiple_of=8) if metric == "hamming" else Integer(1), owner=_OWNER)
        faiss = _faiss()
        self._metric: Metric = metric
        self._dim = int(dim)
        self._dtype: np.dtype[Any]
        if metric == "cosine":
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
            self._dtype, self._width = np.dtype(np.float32), self._dim
        else:
            self._index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(self._dim))
            self._dtype, self._width = np.dtype(np.uint8), self._dim // 8
        self._keys: set[int] = set()

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | np.integer) and int(key) in self._keys

    def __repr__(self) -> str:
        return f"<{_OWNER} {self._metric} {self._dim}, {len(self)} vectors>"

    def keys(self) -> np.ndarray:
        """The keys held, ascending."""
        return np.array(sorted(self._keys), dtype=np.int64)

    def _check_vectors(self, name: str, vectors: Any, rows: int | None) -> np.ndarray:
        return check_matrix(name, vectors, self._width, self._dtype, _OWNER, rows=rows)

    def add(self, keys: Any, vectors: Any) -> None:
        """Store ``vectors`` under ``keys``: an upsert; a key repeated within the call gets its last vector."""
        keys = check_new_keys(keys, _OWNER)
        vectors = self._check_vectors("vectors", vectors, len(keys))
        unique, last = np.unique(keys[::-1], return_index=True)
        keys, vectors = unique, np.ascontiguousarray(vectors[len(keys) - 1 - last])
        self.remove(keys)
        if len(keys):
            self._index.add_with_ids(vectors, keys)
            self._keys.update(keys.tolist())

    def remove(self, keys: Any) -> int:
        present = [k for k in np.unique(check_keys(keys, _OWNER)).tolist() if k in self._keys]
        if present:
            self._index.remove_ids(np.array(present, dtype=np.int64))
            self._keys.difference_update(present)
        return len(present)

    def get(self, key: int) -> np.ndarray:
        if key not in self:
            raise ItemNotFoundError(f"key {key!r} is not in the index")
        return np.asarray(self._index.reconstruct(int(key)), dtype=self._dtype).copy()

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        wanted = check_keys(keys, _OWNER)
        present = np.fromiter((k in self._keys for k in wanted.tolist()), dtype=bool, count=len(wanted))
        out = np.zeros((len(wanted), self._width), dtype=self._dtype)
        if not present.any():
            return out, present
        if self._metric == "cosine":
            out[present] = self._index.reconstruct_batch(np.ascontiguousarray(wanted[present]))
        else:
            for i in np.flatnonzero(present).tolist():
                out[i] = self._index.reconstruct(int(wanted[i]))
        return out, present

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        k = check_k(k, _OWNER)
        queries = self._check_vectors("queries", queries, None)
        out = Neighbors.empty(len(queries), k)
        wanted = None if keys is None else sorted({x for x in check_keys(keys, _OWNER).tolist() if x in self._keys})
        n = len(self._keys) if wanted is None else len(wanted)
        if not n or not len(queries):
            return out
        depth = min(k, n)
        params = None
        if wanted is not None:
            faiss = _faiss()
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.array(wanted, dtype=np.int64)))
        values, found = self._index.search(queries, depth, params=params)
        if self._metric == "cosine":
            scores = values.astype(np.float32)
        else:
            scores = (1.0 - values / np.float64(self._dim)).astype(np.float32)
        out.scores[:, :depth], out.keys[:, :depth] = in_key_order(scores, found)  # faiss lists ties in heap order
        return out
