"""A second backend behind the same protocol: faiss ``IndexIDMap2`` over a flat index (``"IDMap2,Flat"``).

Floats: ``IndexIDMap2(IndexFlatIP(dim))`` (cosine on L2-normalised rows); codes: ``IndexBinaryIDMap2(
IndexBinaryFlat(n_bits))``. Keys are faiss ids; an upsert is ``remove_ids`` then ``add_with_ids``; a key filter is
an ``IDSelectorBatch`` in the search parameters; vectors come back by ``reconstruct``. It exists to keep the seam
honest (the contract suite and the catalogue's tests run on it) and as the pattern for a server backend. Ties come
in faiss's own order; ``remove_ids`` rewrites the whole array (O(n) per call, unlike the flat index's swap-remove).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError, ItemNotFoundError
from lookalike.index.protocol import Metric, Neighbors
from lookalike.validation import Choice, Integer, check

__all__ = ["FaissIDMapIndex"]


def _faiss() -> Any:
    import faiss

    return faiss


class FaissIDMapIndex:
    """See the module docstring. ``dim``: dimensions (cosine) or bits (hamming, a multiple of 8)."""

    def __init__(self, dim: int, metric: Metric = "cosine") -> None:
        check("metric", metric, Choice(("cosine", "hamming")), owner="FaissIDMapIndex")
        check("dim", dim, Integer(8, multiple_of=8) if metric == "hamming" else Integer(1), owner="FaissIDMapIndex")
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

    def keys(self) -> np.ndarray:
        return np.array(sorted(self._keys), dtype=np.int64)

    def _check_keys(self, keys: Any) -> np.ndarray:
        array = np.asarray(keys)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise InvalidParameterError(f"The 'keys' parameter of FaissIDMapIndex must be a 1-D sequence of integer "
                                        f"keys. Got {array.ndim}-D {array.dtype} values instead.")
        return array.astype(np.int64, copy=False)

    def _check_vectors(self, name: str, vectors: Any, rows: int | None) -> np.ndarray:
        array = np.asarray(vectors)
        kind_ok = array.dtype == self._dtype or (self._dtype.kind == "f" and array.dtype.kind == "f")
        if not (array.ndim == 2 and array.shape[1] == self._width and (rows is None or len(array) == rows)
                and kind_ok):
            raise InvalidParameterError(
                f"The {name!r} parameter of FaissIDMapIndex must be a ({'n' if rows is None else rows}, "
                f"{self._width}) array of {self._dtype.name}. Got shape {array.shape}, dtype {array.dtype} instead.")
        return np.ascontiguousarray(array, dtype=self._dtype)

    def add(self, keys: Any, vectors: Any) -> None:
        keys = self._check_keys(keys)
        vectors = self._check_vectors("vectors", vectors, len(keys))
        unique, last = np.unique(keys[::-1], return_index=True)  # a key repeated in one call: its last vector
        keys, vectors = unique, vectors[len(keys) - 1 - last]
        self.remove(keys)
        if len(keys):
            self._index.add_with_ids(vectors, keys)
            self._keys.update(keys.tolist())

    def remove(self, keys: Any) -> int:
        present = [k for k in np.unique(self._check_keys(keys)).tolist() if k in self._keys]
        if present:
            self._index.remove_ids(np.array(present, dtype=np.int64))
            self._keys.difference_update(present)
        return len(present)

    def get(self, key: int) -> np.ndarray:
        if key not in self:
            raise ItemNotFoundError(f"key {key!r} is not in the index")
        return np.asarray(self._index.reconstruct(int(key)), dtype=self._dtype).copy()

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        wanted = self._check_keys(keys)
        present = np.array([int(k) in self._keys for k in wanted.tolist()], dtype=bool)
        out = np.zeros((len(wanted), self._width), dtype=self._dtype)
        for i in np.flatnonzero(present).tolist():
            out[i] = self._index.reconstruct(int(wanted[i]))
        return out, present

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        check("k", k, Integer(1), owner="FaissIDMapIndex")
        queries = self._check_vectors("queries", queries, None)
        faiss = _faiss()
        out = Neighbors.empty(len(queries), int(k))
        wanted = None if keys is None else [x for x in self._check_keys(keys).tolist() if x in self._keys]
        n = len(self._keys) if wanted is None else len(set(wanted))
        if not n or not len(queries):
            return out
        depth = min(int(k), n)
        params = None
        if wanted is not None:
            selector = faiss.IDSelectorBatch(np.array(sorted(set(wanted)), dtype=np.int64))
            params = (faiss.SearchParameters if self._metric == "cosine" else faiss.SearchParameters)(sel=selector)
        values, found = self._index.search(queries, depth, params=params)
        if self._metric == "cosine":
            scores = values.astype(np.float32)
        else:
            scores = (1.0 - values / np.float64(self._dim)).astype(np.float32)
        valid = found >= 0
        out.scores[:, :depth] = np.where(valid, scores, -np.inf)
        out.keys[:, :depth] = np.where(valid, found, -1)
        return out
