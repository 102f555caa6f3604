"""Spherical hashing (Heo, Lee, He, Chang & Yoon, CVPR 2012)."""

from __future__ import annotations

import numpy as np

from .base import _CHUNK_ROWS, Hasher, Integer, Real

__all__ = ["SphericalHashing"]

_POINTS_PER_START = 5  # each centre starts at the mean of this many random training points


class SphericalHashing(Hasher):
    """Bit j is 1 when the point lies inside hypersphere j; ``n_bits`` spheres learned for balance and independence.

    Fitting, on a random subset of at most ``max_samples`` centred training points (m of them): each radius is
    set so its sphere holds exactly half the points (``o_i = m/2``); then each pair of spheres whose overlap
    ``o_ij`` differs from ``m/4`` pushes (too much overlap) or pulls (too little) the centres with force
    ``½ (o_ij − m/4)/(m/4) (c_i − c_j)``, averaged over the ``n_bits`` spheres. This repeats until the mean of
    ``|o_ij − m/4|`` is within ``epsilon_mean · m/4`` and the standard deviation of ``o_ij`` within
    ``epsilon_std · m/4`` (the paper's 10% and 15%), or for ``max_iter`` iterations. ``project`` returns
    ``radius − distance`` (positive inside).

    The paper ranks codes by its spherical Hamming distance ``|a xor b| / |a and b|``; lookalike's shared index
    uses plain Hamming distance for every hasher, so these codes are searched with plain Hamming too.

    Learned attributes:
        centers_: (n_bits, n_features) float32, sphere centres in centred coordinates (relative to ``mean_``).
        radii_: (n_bits,) float32.
        n_iter_: the number of centre updates made.

    Reference: J.-P. Heo, Y. Lee, J. He, S.-F. Chang, S.-E. Yoon, "Spherical Hashing", CVPR 2012.
    """

    name = "sph"
    _constraints = {
        "max_samples": Integer(2),
        "max_iter": Integer(0),
        "epsilon_mean": Real(0.0),
        "epsilon_std": Real(0.0),
    }
    _learned = ("centers_", "radii_")

    def __init__(
        self,
        n_bits: int = 64,
        *,
        max_samples: int = 10_000,
        max_iter: int = 100,
        epsilon_mean: float = 0.1,
        epsilon_std: float = 0.15,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.max_samples = max_samples
        self.max_iter = max_iter
        self.epsilon_mean = epsilon_mean
        self.epsilon_std = epsilon_std
        self.random_state = random_state

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        m = min(self.max_samples, X.shape[0])
        sample = X[np.sort(rng.choice(X.shape[0], m, replace=False))] - mean
        starts = np.argsort(rng.random((self.n_bits, m)), axis=1)[:, :_POINTS_PER_START]
        centers = sample[starts].mean(axis=1, dtype=np.float64)
        quarter = m / 4
        upper = np.triu_indices(self.n_bits, k=1)
        for iteration in range(self.max_iter + 1):
            dist = _distances(sample, centers)
            radii = _balanced_radii(dist)
            inside = (dist < radii).astype(np.float64)
            overlaps = inside.T @ inside
            pairs = overlaps[upper]
            converged = (np.abs(pairs - quarter).mean() <= self.epsilon_mean * quarter
                         and pairs.std() <= self.epsilon_std * quarter)
            if converged or iteration == self.max_iter:
                break
            pull = 0.5 * (overlaps - quarter) / quarter
            np.fill_diagonal(pull, 0.0)
            centers = centers + (pull.sum(axis=1)[:, None] * centers - pull @ centers) / self.n_bits
        self.centers_ = centers.astype(np.float32)
        self.radii_ = radii.astype(np.float32)
        self.n_iter_ = iteration

    def _project(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_bits), dtype=np.float32)
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            out[start:stop] = self.radii_ - _distances(X[start:stop] - self.mean_, self.centers_)
        return out


def _distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, n_centers) in float32 from ‖p‖² − 2 p·c + ‖c‖²."""
    centers = np.asarray(centers, dtype=np.float32)
    sq = np.einsum("ij,ij->i", points, points)[:, None] - 2 * (points @ centers.T) + np.square(centers).sum(axis=1)
    return np.sqrt(np.maximum(sq, 0.0))


def _balanced_radii(dist: np.ndarray) -> np.ndarray:
    """Per column, the midpoint between the (m/2)-th and next smallest distance: m // 2 points strictly inside."""
    half = dist.shape[0] // 2
    parts = np.partition(dist, [half - 1, half], axis=0)
    return (parts[half - 1] + parts[half]) / 2
