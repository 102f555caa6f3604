"""The index seam: one result type and the protocol every vector index implements.

An index maps int64 *keys* (the catalogue's item keys, never row numbers) to vectors and answers top-k queries.
Every index -- the in-memory flat ones, the composed ones (hashed candidates refined by exact scores, a projected
space refined the same way), a faiss- or Milvus-backed one -- returns :class:`Neighbors`, so the catalogue, rerank
and duplicate detection never look at which kind they hold.

Scores are "higher is better" for every metric:

==========  ====================================  =========================  ========================
metric      vectors                               score                      distance (``distances``)
==========  ====================================  =========================  ========================
cosine      (n, dim) float32, L2-normalised       cosine similarity          ``1 - score``
hamming     (n, n_bits / 8) uint8 packed bits     ``1 - hamming / n_bits``   Hamming distance in bits
==========  ====================================  =========================  ========================

Rows past the vectors searched are padded the same way for every index: key ``-1``, score ``-inf`` (so ``-1`` is
never a stored key). Ties are broken by the index's own deterministic order (for the flat indexes: ascending storage
row). ``k`` is at most :data:`MAX_K`: a result is ``nq x k`` whatever the index holds, so a huge ``k`` is refused
rather than allocated.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["MAX_K", "PAD_KEY", "PAD_SCORE", "Metric", "Neighbors", "ReadableIndex", "TrainableIndex", "VectorIndex",
           "distances"]

Metric = Literal["cosine", "hamming"]
PAD_KEY = -1
PAD_SCORE = float("-inf")
MAX_K = 1_000_000  # results per query any index returns at most


class Neighbors(NamedTuple):
    """Top-k answer of any index: ``scores`` (nq, k) float32, best first, and ``keys`` (nq, k) int64.

    Unpacks as ``scores, keys = index.search(queries, k)``. Padding: key -1, score -inf.
    """

    scores: np.ndarray
    keys: np.ndarray

    @classmethod
    def empty(cls, nq: int, k: int) -> Neighbors:
        return cls(np.full((nq, k), PAD_SCORE, dtype=np.float32), np.full((nq, k), PAD_KEY, dtype=np.int64))


def distances(scores: np.ndarray, metric: Metric, dim: int) -> np.ndarray:
    """Lower-is-better distances of ``scores``: ``1 - cosine``, or the Hamming distance in bits (``dim`` bits),
    float64, ``inf`` at padding."""
    s = np.asarray(scores, dtype=np.float64)
    out = 1.0 - s if metric == "cosine" else np.rint((1.0 - s) * dim)
    return np.where(np.isfinite(s), out, np.inf)


@runtime_checkable
class VectorIndex(Protocol):
    """What the catalogue needs of an index. Implementations need not be thread-safe: the catalogue serialises
    calls to one index (see :meth:`lookalike.catalog.Catalog.vector_index`)."""

    @property
    def metric(self) -> Metric:
        """``"cosine"`` or ``"hamming"``."""

    @property
    def dim(self) -> int:
        """Dimensions of the vectors (floats), or bits of the codes (binary)."""

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def keys(self) -> np.ndarray:
        """The keys held, (n,) int64, in the index's own order."""

    def add(self, keys: Any, vectors: Any) -> None:
        """Store ``vectors`` under ``keys``; a key already present gets the new vector (an upsert)."""

    def remove(self, keys: Any) -> int:
        """Forget ``keys`` (unknown keys are ignored); returns how many were removed."""

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        """The ``k`` best matches of each query, among ``keys`` when given (a metadata filter)."""


@runtime_checkable
class ReadableIndex(VectorIndex, Protocol):
    """An index that can hand its vectors back: rerank and duplicate detection read candidates' vectors."""

    def get(self, key: int) -> np.ndarray:
        """A copy of the vector of ``key``, (width,). Raises ItemNotFoundError when absent."""

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, present)``: (m, width) copies of the vectors of ``keys`` (zeros where absent) and an (m,)
        bool mask of the keys present."""


@runtime_checkable
class TrainableIndex(VectorIndex, Protocol):
    """An index that learns something from the data before it can hold vectors (a hasher, a projection)."""

    @property
    def is_trained(self) -> bool: ...

    def train(self, vectors: Any) -> None:
        """Learn from (n, dim) float vectors; the index stays empty."""
