"""``adapt``: codes adapted to the catalogue without labels (issue 16, part 3) — ITQ on a learned linear map of
the vectors onto their neighbour-smoothed versions.

The catalogue's own images carry structure that a hasher fitted on the raw vectors ignores: an item's nearest
neighbours mostly show the same kind of thing, so averaging each vector with its ``k`` nearest neighbours (database
-side augmentation, Arandjelović & Zisserman, "Three things everyone should know to improve object retrieval", CVPR
2012) denoises it. Smoothing needs the neighbours of every query too, which a code search is meant to avoid; so
this hasher *learns* the smoothing instead: a ridge regression ``W`` from each centred vector to its smoothed one,
shrunk towards the identity (``ridge``), applied to any vector alike — database items, new items and queries — as
``f(x) = normalize((x - mu) W + mu)``; then ITQ (Gong & Lazebnik 2011) on ``f(X)``. No label is read.

Fit cost: an exact k-NN graph of up to ``sample`` rows (faiss inner products, in blocks) and one (d, d) solve;
50,000 efficientnet-lite0 rows took 53 s for the graph on 2 busy cores. :func:`knn_graph` keeps the last graph it
computed (keyed by a digest of the vectors and ``k``), so fitting several code lengths on the same vectors, or the
``bingan-head`` options built on it, computes it once. The defaults (k 30, ridge 0.01) were chosen
on a validation split of Fashion-MNIST's training vectors, by the mean mAP@1000 at 16, 32 and 64 bits of k in
{5, 10, 30} x ridge in {0.01, 0.1, 1} (``benchmarks/adapt_select.py``; BENCHMARKS.md, "Codes adapted to the
catalogue"); every setting beat ITQ there at every length.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .base import Hasher, Integer, Real, centred_dot
from .pca import ITQ, rotated_projection

__all__ = ["AdaptedITQ", "knn_graph", "map_vectors", "smoothed", "smoothing_map", "unit_rows"]

_BLOCK = 4096  # query rows of the k-NN graph at a time
_LAST_GRAPH: dict[tuple[str, tuple[int, ...], int], np.ndarray] = {}  # at most one entry: the last graph made


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows left as they are)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def knn_graph(U: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's ``k`` nearest other rows of unit ``U`` by inner product (exact, ties by
    index); a row is never its own neighbour. The last graph made is kept and returned again (a copy) for the
    same ``U`` and ``k``."""
    import faiss

    U = np.ascontiguousarray(U, dtype=np.float32)
    key = (hashlib.blake2b(U.data, digest_size=16).hexdigest(), U.shape, k)
    if key in _LAST_GRAPH:
        return _LAST_GRAPH[key].copy()
    n = len(U)
    index = faiss.IndexFlatIP(U.shape[1])
    index.add(U)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _BLOCK):
        _, found = index.search(U[start:start + _BLOCK], k + 1)
        rows = np.arange(start, start + len(found))[:, None]
        own = found == rows  # usually column 0; a duplicate row may come first
        own[~own.any(axis=1), -1] = True  # not found among the k + 1: drop the farthest instead
        out[start:start + len(found)] = found[~own].reshape(len(found), k)
    _LAST_GRAPH.clear()
    _LAST_GRAPH[key] = out.copy()
    return out


def smoothed(U: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Each unit row averaged with its neighbours' rows, re-normalised. Sums one neighbour column at a time: the
    temporary is one (n, d) gather, not the (n, k, d) of ``U[neighbours]`` (15 GB for k 30 of 60,000 rows of
    2,064 dimensions)."""
    total = np.array(U, dtype=np.float32)
    for column in np.asarray(neighbours).T:
        total += U[column]
    return unit_rows(total / (neighbours.shape[1] + 1))


def smoothing_map(U: np.ndarray, neighbours: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """``(W, mu)``: the ridge regression of unit rows ``U`` (centred by ``mu``) onto their :func:`smoothed` rows,
    shrunk towards the identity by ``ridge`` (> 0) times the mean variance per feature."""
    target = smoothed(U, neighbours)
    mu = U.mean(axis=0, dtype=np.float64)
    centred = (U - mu).astype(np.float64)
    gram = centred.T @ centred
    scale = float(np.trace(gram)) / gram.shape[0]  # the mean variance per feature (0: every row the same)
    shrink = ridge * (scale if scale > 0 else 1.0) * np.eye(gram.shape[0])  # ridge > 0: always solvable
    W = np.linalg.solve(gram + shrink, centred.T @ (target - mu) + shrink)
    return W.astype(np.float32), mu.astype(np.float32)


def map_vectors(X: np.ndarray, W: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``normalize((normalize(X) - mu) W + mu)``: rows of ``X`` through a :func:`smoothing_map` ``(W, mu)``."""
    return unit_rows(centred_dot(unit_rows(np.asarray(X, dtype=np.float32)), mu, W) + mu)


class AdaptedITQ(Hasher):
    """ITQ on a learned neighbour-smoothing map of the vectors (see the module docstring).

    Args:
        n_bits: code length (multiple of 8, at most the number of features).
        k: neighbours each training vector is smoothed with.
        ridge: shrinkage of the map towards the identity, relative to the data's mean variance per feature.
        sample: at most this many training rows make the k-NN graph and the fit (a seeded sample beyond).
        n_iter: ITQ iterations. random_state: seeds the sample and ITQ's initial rotation.

    Learned attributes: ``map_`` (d, d) float32, ``map_mean_`` (d,), ``itq_mean_`` (d,), ``components_`` and
    ``rotation_`` (ITQ's, on the mapped vectors), ``quantization_loss_``.
    """

    name = "adapt"
    _constraints = {"k": Integer(1, 1000), "ridge": Real(0.0, False, 1e6), "sample": Integer(2), "n_iter": Integer(0)}
    _learned = ("map_", "map_mean_", "itq_mean_", "components_", "rotation_", "quantization_loss_")

    def __init__(self, n_bits: int = 64, *, k: int = 30, ridge: float = 0.01, sample: int = 60_000, n_iter: int = 50,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.k = k
        self.ridge = ridge
        self.sample = sample
        self.n_iter = n_iter
        self.random_state = random_state

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str]:
        return n_features, "the number of features"

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        rows = X if len(X) <= self.sample else X[np.sort(rng.choice(len(X), self.sample, replace=False))]
        U = unit_rows(rows.astype(np.float32))
        k = min(self.k, len(U) - 1)
        self.map_, self.map_mean_ = smoothing_map(U, knn_graph(U, k), self.ridge)
        itq = ITQ(self.n_bits, n_iter=self.n_iter, random_state=rng).fit(self.mapped(U))
        self.itq_mean_, self.components_, self.rotation_ = itq.mean_, itq.components_, itq.rotation_
        self.quantization_loss_ = itq.quantization_loss_

    def mapped(self, X: np.ndarray) -> np.ndarray:
        """``f(X)``: unit rows of the learned smoothing map (the space the codes quantise)."""
        return map_vectors(X, self.map_, self.map_mean_)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return centred_dot(self.mapped(X), self.itq_mean_, rotated_projection(self))
