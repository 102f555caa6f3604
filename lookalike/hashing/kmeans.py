"""K-means hashing (He, Wen & Sun, CVPR 2013): affinity-preserving k-means in product subspaces."""

from __future__ import annotations

import numpy as np

from .base import _CHUNK_ROWS, Hasher, Integer, OneOf, Real, centred_dot
from .pca import principal_components

__all__ = ["KMeansHashing", "balanced_partition"]

_MM_STEPS = 20  # majorise-minimise steps per centre update; they stop early once the centre settles


def balanced_partition(variances: np.ndarray, n_subspaces: int) -> np.ndarray:
    """Split dimensions (by decreasing variance) into ``n_subspaces`` equal groups with balanced products of
    variances: each dimension in turn joins the non-full group whose sum of log-variances is smallest.

    Returns the dimension indices grouped by subspace (group 0 first), each group in decreasing variance. This is
    the eigenvalue allocation of the authors' code (from Ge, He, Ke & Sun, "Optimized Product Quantization").
    """
    logs = np.log(np.asarray(variances, dtype=np.float64) + 1e-20)
    logs = logs - logs.min() + 1  # all positive, so a group's sum grows with each dimension it takes
    size = len(logs) // n_subspaces
    groups: list[list[int]] = [[] for _ in range(n_subspaces)]
    sums = np.zeros(n_subspaces)
    current = 0
    for dim in range(size * n_subspaces):
        groups[current].append(dim)
        sums[current] = np.inf if len(groups[current]) == size else sums[current] + logs[dim]
        current = int(np.argmin(sums))
    return np.array([d for group in groups for d in group], dtype=np.int64)


class KMeansHashing(Hasher):
    """Product k-means whose ``2**b`` centre indices are codes: Hamming distance between indices mimics the
    distance between centres.

    Fitting: PCA (all of the top ``M·⌊n_features/M⌋`` directions, ``M = n_bits / bits_per_subspace``), split by
    :func:`balanced_partition` into M subspaces. In each, ``k = 2**b`` centres start on the vertices of a hypercube
    spanned by the subspace's top b directions, scaled to the data (PCA hashing); then ``n_iter`` rounds of (a)
    assign every point to its nearest centre and (b) update each centre in turn to minimise the paper's Eqn. (8),
    ``E_quan + 2 λ E_aff`` with ``E_aff = Σ_i n_i n_j (‖c_i − c_j‖ − d_h(i, j))² / n²`` and ``d_h(i, j) = 2 s
    √hamming(i, j)``. The authors minimise (8) with a quasi-Newton solver; here a majorise-minimise (SMACOF-style)
    fixed point, which lowers (8) at every step. Bits of subspace m are the nearest centre's index, most
    significant bit first; ``project`` returns, per bit, the squared distance to the nearest centre whose index
    has that bit 0 minus that to the nearest whose index has it 1 (positive ⇔ bit 1). Needs
    ``n_bits <= n_features``.

    The PCA uses all the data; the k-means, a random subset of ``max_samples`` points drawn from ``random_state``
    (the authors' demo has the same option and recommends all points; the default bounds the fit to seconds).
    With at most ``max_samples`` points the fit is deterministic.

    Learned attributes:
        components_: (M·d, n_features) float32, PCA directions grouped by subspace (d = ⌊n_features / M⌋).
        centers_: (M, 2**b, d) float32, the centres of each subspace in its PCA coordinates.
        quantization_error_: (n_iter + 1,) float64, mean squared distance to the assigned centre at each
            assignment step (the last after the final update).

    Reference: K. He, F. Wen, J. Sun, "K-means Hashing: an Affinity-Preserving Quantization Method for Learning
    Binary Compact Codes", CVPR 2013 (and the authors' trainKMH.m).
    """

    name = "kmh"
    _constraints = {
        "bits_per_subspace": OneOf((1, 2, 4, 8)),
        "n_iter": Integer(0),
        "affinity_weight": Real(0.0),
        "max_samples": Integer(2),
    }
    _learned = ("components_", "centers_", "quantization_error_")

    def __init__(
        self,
        n_bits: int = 64,
        *,
        bits_per_subspace: int = 4,
        n_iter: int = 50,
        affinity_weight: float = 10.0,
        max_samples: int = 20_000,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.bits_per_subspace = bits_per_subspace
        self.n_iter = n_iter
        self.affinity_weight = affinity_weight
        self.max_samples = max_samples
        self.random_state = random_state

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str]:
        return n_features, "the number of features"

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        b, n_sub = self.bits_per_subspace, self.n_bits // self.bits_per_subspace
        dim = X.shape[1] // n_sub
        components, variances = principal_components(X, mean, n_sub * dim)
        components = components[balanced_partition(variances, n_sub)]
        if len(X) > self.max_samples:
            X = X[np.sort(rng.choice(len(X), self.max_samples, replace=False))]
        coords = _by_subspace(centred_dot(X, mean, components.T), n_sub)  # (M, n, d)
        norms = np.einsum("mnd,mnd->mn", coords, coords)
        centers, target = _hypercube_start(coords, b)
        errors = []
        for _ in range(self.n_iter):
            counts, sums, error = _assign(coords, norms, centers)
            errors.append(error)
            _update_centers(centers, counts / len(X), sums / len(X), target, self.affinity_weight)
        errors.append(_assign(coords, norms, centers)[2])
        self.components_ = components
        self.centers_ = centers.astype(np.float32)
        self.quantization_error_ = np.array(errors)

    def _project(self, X: np.ndarray) -> np.ndarray:
        n_sub, b = self.centers_.shape[0], self.bits_per_subspace
        has_bit = _index_bits(b).T.astype(bool)  # (b, k)
        out = np.empty((len(X), n_sub, b), dtype=np.float32)
        for start in range(0, len(X), _CHUNK_ROWS):
            coords = _by_subspace(centred_dot(X[start:start + _CHUNK_ROWS], self.mean_, self.components_.T), n_sub)
            norms = np.einsum("mnd,mnd->mn", coords, coords)
            # (k, M, n): a minimum over the leading axis is an elementwise minimum of slabs, fast in numpy
            dist = np.ascontiguousarray(_sq_distances(coords, norms, self.centers_).transpose(2, 0, 1))
            for t in range(b):
                off, on = dist[~has_bit[t]].min(axis=0), dist[has_bit[t]].min(axis=0)  # (M, n)
                out[start:start + coords.shape[1], :, t] = (off - on).T
        return out.reshape(len(X), self.n_bits)


def _hypercube_start(coords: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial centres (M, 2**b, d) at ``±s`` on each subspace's top b directions (PCA hashing's cells), with ``s``
    the mean absolute coordinate there, and the target distances (M, k, k) between centres, ``2 s √hamming``."""
    n_sub, _, dim = coords.shape
    bits = _index_bits(b)
    scale = np.abs(coords[:, :, :b]).mean(axis=(1, 2), dtype=np.float64)  # (M,)
    centers = np.zeros((n_sub, 2**b, dim))
    centers[:, :, :b] = scale[:, None, None] * (2 * bits - 1)  # the most significant index bit on the top direction
    hamming = bits @ (1 - bits).T + (1 - bits) @ bits.T
    return centers, 2 * scale[:, None, None] * np.sqrt(hamming)


def _index_bits(b: int) -> np.ndarray:
    """(2**b, b) float64: row i holds the bits of i, most significant first."""
    return ((np.arange(2**b)[:, None] >> np.arange(b - 1, -1, -1)) & 1).astype(np.float64)


def _by_subspace(coords: np.ndarray, n_sub: int) -> np.ndarray:
    """(n, M·d) → (M, n, d), contiguous, so that each subspace is one operand of a batched matrix product."""
    return np.ascontiguousarray(coords.reshape(len(coords), n_sub, -1).transpose(1, 0, 2))


def _sq_distances(coords: np.ndarray, norms: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(M, n, d) points with squared norms (M, n) against (M, k, d) centres → (M, n, k) squared distances."""
    centers = centers.astype(np.float32)
    sq = norms[:, :, None] - 2 * (coords @ centers.transpose(0, 2, 1)) + np.square(centers).sum(axis=2)[:, None]
    return np.maximum(sq, 0)


def _assign(coords: np.ndarray, norms: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Nearest centres: per subspace the counts (M, k), coordinate sums (M, k, d) and the mean squared error.

    Works on the transposed layout (M, d, n) so that the reductions over the k centres run across slabs.
    """
    n_sub, k, dim = centers.shape
    counts, sums, error = np.zeros((n_sub, k)), np.zeros((n_sub, k, dim)), 0.0
    c32 = centers.astype(np.float32)
    c_sq = np.square(c32).sum(axis=2)[:, :, None]
    for start in range(0, coords.shape[1], _CHUNK_ROWS):
        block = coords[:, start:start + _CHUNK_ROWS]  # (M, n, d)
        dist = c_sq - 2 * (c32 @ block.transpose(0, 2, 1)) + norms[:, None, start:start + _CHUNK_ROWS]  # (M, k, n)
        nearest = dist.argmin(axis=1)  # (M, n)
        error += float(np.maximum(dist.min(axis=1), 0).sum(dtype=np.float64))
        onehot = (nearest[:, None, :] == np.arange(k)[:, None]).astype(np.float32)  # (M, k, n)
        counts += onehot.sum(axis=2)
        sums += onehot @ block
    return counts, sums, error / coords.shape[1]


def _update_centers(
    centers: np.ndarray, share: np.ndarray, mean_sum: np.ndarray, target: np.ndarray, weight: float
) -> None:
    """Update each centre j in turn (in all subspaces at once), in place, to lower Eqn. (8) of the paper::

        f(c) = share_j ‖c‖² − 2 mean_sum_j · c + Σ_i w_i (‖c − c_i‖ − target_ij)²,   w_i = 2 λ share_i share_j

    (``share`` = n_i / n, ``mean_sum`` = Σ x / n). Majorising −‖c − c_i‖ by its tangent at the current c gives a
    quadratic whose minimiser is the update below; each step cannot raise f. Empty clusters keep their centre.
    """
    k = centers.shape[1]
    for j in range(k):
        w = 2 * weight * share * share[:, j : j + 1]  # (M, k)
        w[:, j] = 0.0
        denom = share[:, j] + w.sum(axis=1)  # (M,)
        movable = denom > 0
        for _ in range(_MM_STEPS):
            c = centers[:, j]  # (M, d)
            diff = c[:, None, :] - centers  # (M, k, d)
            norm = np.linalg.norm(diff, axis=2, keepdims=True)
            unit = np.divide(diff, norm, out=np.zeros_like(diff), where=norm > 0)
            pull = (w[:, :, None] * (centers + target[:, :, j : j + 1] * unit)).sum(axis=1)
            new = np.where(movable[:, None], (mean_sum[:, j] + pull) / np.where(movable, denom, 1)[:, None], c)
            moved = float(np.abs(new - c).max())
            centers[:, j] = new
            if moved <= 1e-7 * (1.0 + float(np.abs(new).max())):
                break
