"""Indexes built from other indexes: learned codes over float vectors, a projected space, exact re-scoring.

- :class:`HashedIndex`: float vectors in, binary codes stored; candidates ranked by the query's asymmetric score
  against the codes (or Hamming distance when the hasher cannot project);
- :class:`ProjectedIndex`: float vectors projected to a few dimensions that keep their inner products, exact top-k
  there;
- :class:`RefineIndex`: candidates from one index, re-scored exactly by the vectors of another (``Refine``).

They compose around existing indexes without copying them: the catalogue builds
``RefineIndex(HashedIndex(hasher, codes=its codes index), its float index, depth)`` per re-ranked query, and
duplicate detection ``RefineIndex(ProjectedIndex(128), the float index, depth)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.errors import InvalidParameterError, NotFittedError
from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.protocol import Metric, Neighbors, ReadableIndex, VectorIndex
from lookalike.validation import check_int

__all__ = ["HashedIndex", "ProjectedIndex", "RefineIndex", "projection"]

_GATHER = 1 << 22  # candidate vector elements gathered at once when re-scoring (16 MiB of float32)


def _float_queries(queries: Any, dim: int, owner: str) -> np.ndarray:
    array = np.asarray(queries)
    if array.ndim != 2 or array.shape[1] != dim or array.dtype.kind != "f":
        raise InvalidParameterError(f"The 'queries' parameter of {owner} must be a (n, {dim}) array of floats. "
                                    f"Got shape {array.shape}, dtype {array.dtype} instead.")
    return np.ascontiguousarray(array, dtype=np.float32)


class HashedIndex:
    """Binary codes of float vectors, searched with float queries (see the module docstring).

    Args:
        hasher: a :class:`lookalike.hashing.Hasher` (fitted, or fitted by :meth:`train`).
        codes: the Hamming index holding the codes (default: a new :class:`BinaryFlatIndex`); one that already
            holds codes of this hasher can be passed in, and is then shared, not copied.
    """

    def __init__(self, hasher: Any, codes: VectorIndex | None = None) -> None:
        self.hasher = hasher
        self.codes = codes if codes is not None else BinaryFlatIndex(int(hasher.n_bits))
        if self.codes.metric != "hamming":
            raise InvalidParameterError(f"HashedIndex needs a Hamming index for its codes. Got {self.codes.metric}.")
        self._dim: int | None = None

    @property
    def metric(self) -> Metric:
        return "cosine"

    @property
    def dim(self) -> int:
        dim = self._dim or getattr(self.hasher, "n_features_in_", None)
        if dim is None:
            raise NotFittedError("HashedIndex: the hasher is not fitted yet (call train)")
        return int(dim)

    @property
    def is_trained(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self.hasher))

    def train(self, vectors: Any) -> None:
        x = np.asarray(vectors, dtype=np.float32)
        self.hasher.fit(x)
        self._dim = int(x.shape[1])

    def __len__(self) -> int:
        return len(self.codes)

    def __contains__(self, key: object) -> bool:
        return key in self.codes

    def keys(self) -> np.ndarray:
        return self.codes.keys()

    def add(self, keys: Any, vectors: Any) -> None:
        self.codes.add(keys, np.ascontiguousarray(self.hasher.transform(vectors), dtype=np.uint8))

    def remove(self, keys: Any) -> int:
        return self.codes.remove(keys)

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        """Best codes by asymmetric score (``sum_j p_j (2 b_j - 1)``) when the codes index can, else by Hamming."""
        project = getattr(self.hasher, "project", None)
        if project is not None and isinstance(self.codes, BinaryFlatIndex):
            return self.codes.search_asymmetric(project(queries), k, keys=keys)
        return self.codes.search(np.ascontiguousarray(self.hasher.transform(queries), dtype=np.uint8), k, keys=keys)


def projection(sample: np.ndarray, dims: int) -> np.ndarray:
    """(d, dims) float32 orthonormal basis keeping the most of the inner products among ``sample`` rows (the top
    eigenvectors of their uncentred second moment, so ``x @ y ≈ (x @ P) @ (y @ P)`` for rows like them; uncentred,
    because the mean direction carries part of every cosine)."""
    x = np.asarray(sample, dtype=np.float64)
    dims = max(1, min(int(dims), x.shape[1]))
    _values, vectors = np.linalg.eigh(x.T @ x)
    return np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)


class ProjectedIndex:
    """Float vectors projected to ``dims`` dimensions (:func:`projection`, fitted by :meth:`train` on a sample),
    searched by exact inner product in that space (a candidate generator: scores are projected inner products)."""

    def __init__(self, dims: int = 128) -> None:
        self.dims = check_int("dims", dims, 1, 65_536, owner="ProjectedIndex")
        self.basis: np.ndarray | None = None
        self._flat: FloatFlatIndex | None = None

    @property
    def metric(self) -> Metric:
        return "cosine"

    @property
    def dim(self) -> int:
        if self.basis is None:
            raise NotFittedError("ProjectedIndex is not trained yet (call train)")
        return int(self.basis.shape[0])

    @property
    def is_trained(self) -> bool:
        return self.basis is not None

    def train(self, vectors: Any) -> None:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) < 1:
            raise InvalidParameterError(f"ProjectedIndex.train needs a (n, d) array, n >= 1. Got shape {x.shape}.")
        self.basis = projection(x, self.dims)
        self._flat = FloatFlatIndex(self.basis.shape[1])

    def _index(self) -> FloatFlatIndex:
        if self._flat is None:
            raise NotFittedError("ProjectedIndex is not trained yet (call train)")
        return self._flat

    def project(self, vectors: Any) -> np.ndarray:
        assert self.basis is not None
        return np.ascontiguousarray(_float_queries(vectors, self.dim, "ProjectedIndex") @ self.basis)

    def __len__(self) -> int:
        return 0 if self._flat is None else len(self._flat)

    def __contains__(self, key: object) -> bool:
        return self._flat is not None and key in self._flat

    def keys(self) -> np.ndarray:
        return np.empty(0, dtype=np.int64) if self._flat is None else self._flat.keys()

    def add(self, keys: Any, vectors: Any) -> None:
        self._index().add(keys, self.project(vectors))

    def remove(self, keys: Any) -> int:
        return 0 if self._flat is None else self._flat.remove(keys)

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        # the flat kernel computes inner products; on projected (unnormalised) rows they are what we rank by
        return self._index().search(self.project(queries), k, keys=keys)


class RefineIndex:
    """Candidates from ``candidates`` (``depth`` of them, default ``k_factor * k``), re-scored exactly by the
    vectors of ``refine`` and cut to the best ``k``: exact scores, ties by ascending key, -1 / -inf padded."""

    def __init__(self, candidates: VectorIndex, refine: ReadableIndex, depth: int | None = None,
                 k_factor: int = 4) -> None:
        if not isinstance(refine, ReadableIndex):
            raise InvalidParameterError(f"RefineIndex needs a refine index that hands its vectors back. Got "
                                        f"{type(refine).__name__}.")
        self.candidates, self.refine = candidates, refine
        self.depth = None if depth is None else check_int("depth", depth, 1, 10**9, owner="RefineIndex")
        self.k_factor = check_int("k_factor", k_factor, 1, 10**6, owner="RefineIndex")

    @property
    def metric(self) -> Metric:
        return self.refine.metric

    @property
    def dim(self) -> int:
        return self.refine.dim

    @property
    def is_trained(self) -> bool:
        return bool(getattr(self.candidates, "is_trained", True))

    def train(self, vectors: Any) -> None:
        train = getattr(self.candidates, "train", None)
        if train is not None:
            train(vectors)

    def __len__(self) -> int:
        return len(self.refine)

    def __contains__(self, key: object) -> bool:
        return key in self.refine

    def keys(self) -> np.ndarray:
        return self.refine.keys()

    def get(self, key: int) -> np.ndarray:
        return self.refine.get(key)

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.refine.vectors(keys)

    def add(self, keys: Any, vectors: Any) -> None:
        self.candidates.add(keys, vectors)
        self.refine.add(keys, vectors)

    def remove(self, keys: Any) -> int:
        self.candidates.remove(keys)
        return self.refine.remove(keys)

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        k = check_int("k", k, 1, 10**9, owner="RefineIndex")
        depth = max(self.depth if self.depth is not None else self.k_factor * k, k)
        _scores, pool = self.candidates.search(queries, depth, keys=keys)
        if self.refine.metric == "cosine":
            q = _float_queries(queries, self.refine.dim, "RefineIndex")
            exact = self._cosine(q, pool)
        else:
            exact = self._hamming(np.asarray(queries, dtype=np.uint8), pool)
        return _top(exact, pool, k)

    def _cosine(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        out = np.full(pool.shape, -np.inf, dtype=np.float32)
        step = max(1, _GATHER // max(1, pool.shape[1] * queries.shape[1]))
        for start in range(0, len(pool), step):
            block = pool[start : start + step]
            found, present = self.refine.vectors(block.reshape(-1))
            found = found.reshape(block.shape[0], block.shape[1], -1)
            scores = np.matmul(found, queries[start : start + step, :, None])[:, :, 0]
            out[start : start + step] = np.where(present.reshape(block.shape) & (block >= 0), scores, -np.inf)
        return out

    def _hamming(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        found, present = self.refine.vectors(pool.reshape(-1))
        found = found.reshape(pool.shape[0], pool.shape[1], -1)
        bits = np.bitwise_count(found ^ queries[:, None, :]).sum(axis=2)
        scores = (1.0 - bits / np.float64(self.refine.dim)).astype(np.float32)
        return np.where(present.reshape(pool.shape) & (pool >= 0), scores, -np.inf).astype(np.float32)


def _top(scores: np.ndarray, pool: np.ndarray, k: int) -> Neighbors:
    """Best ``k`` of each row by score, ties by ascending key, padded."""
    order = np.lexsort((np.where(pool >= 0, pool, np.iinfo(np.int64).max), -scores.astype(np.float64)), axis=1)
    top = order[:, :k]
    best = np.take_along_axis(scores, top, axis=1)
    keys = np.where(np.isfinite(best), np.take_along_axis(pool, top, axis=1), -1)
    out = Neighbors.empty(len(pool), k)
    out.scores[:, : best.shape[1]] = np.where(np.isfinite(best), best, -np.inf)
    out.keys[:, : keys.shape[1]] = keys
    return out
