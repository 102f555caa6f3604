"""Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008)."""

from __future__ import annotations

import numpy as np

from .base import Hasher, centred_dot
from .pca import principal_components

__all__ = ["SpectralHashing", "spectral_modes"]


def spectral_modes(ranges: np.ndarray, n_bits: int) -> np.ndarray:
    """The ``n_bits`` analytical eigenfunctions with the smallest eigenvalues, for a uniform box of side ``ranges``.

    Along a dimension of length ``R`` the one-dimensional Laplacian eigenfunctions are ``cos(k π x / R)`` with
    eigenvalue growing with ``(k π / R)²``. Candidates are the modes ``k = 1 .. ceil((n_bits + 1) R / max R) − 1``
    of each dimension (enough for any choice); they are sorted by ``k π / R`` with a stable sort (ties go to the
    lower dimension, then the lower k, as in the authors' code) and the constant mode is skipped.

    Returns (n_bits, len(ranges)) int64, one row per bit holding its k in its dimension's column, zero elsewhere
    (the layout of the authors' ``SHparam.modes``).
    """
    ranges = np.asarray(ranges, dtype=np.float64)
    max_mode = np.ceil((n_bits + 1) * ranges / ranges.max()).astype(np.int64)
    dims = np.repeat(np.arange(len(ranges)), np.maximum(max_mode - 1, 0))
    ks = np.concatenate([np.arange(1, m) for m in max_mode]).astype(np.int64)
    order = np.argsort(ks * np.pi / ranges[dims], kind="stable")[:n_bits]
    modes = np.zeros((n_bits, len(ranges)), dtype=np.int64)
    modes[np.arange(len(order)), dims[order]] = ks[order]
    return modes


class SpectralHashing(Hasher):
    """Threshold the smallest analytical eigenfunctions of a uniform box fitted to the principal components.

    Fitting: PCA to ``min(n_bits, n_features)`` directions; a box from the minimum to the maximum of the training
    data along each; the ``n_bits`` modes of :func:`spectral_modes`. Bit j, with mode k along component d, is
    ``sin(π/2 + k π (x_d − mn_d) / (mx_d − mn_d)) > 0`` where ``x_d`` is the centred point's coordinate on that
    component, which is what ``project`` returns before thresholding. Any ``n_bits`` that is a positive multiple
    of 8 works (several bits may use one component). Deterministic: ``random_state`` is accepted and unused.

    Learned attributes:
        components_: (n_components, n_features) float32, principal directions by decreasing variance.
        mn_, mx_: (n_components,) float64, the box (the data's range, widened by machine epsilon).
        modes_: (n_bits, n_components) int64, see :func:`spectral_modes`.

    Reference: Y. Weiss, A. Torralba, R. Fergus, "Spectral Hashing", NIPS 2008 (and the authors' trainSH.m).
    """

    name = "sh"
    _learned = ("components_", "mn_", "mx_", "modes_")

    def __init__(self, n_bits: int = 64, *, random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.random_state = random_state

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        components, _ = principal_components(X, mean, min(self.n_bits, X.shape[1]))
        coords = centred_dot(X, mean, components.T)
        eps = np.finfo(np.float64).eps
        self.components_ = components
        self.mn_ = coords.min(axis=0).astype(np.float64) - eps
        self.mx_ = coords.max(axis=0).astype(np.float64) + eps
        self.modes_ = spectral_modes(self.mx_ - self.mn_, self.n_bits)

    def _project(self, X: np.ndarray) -> np.ndarray:
        coords = centred_dot(X, self.mean_, self.components_.T)
        dims = np.argmax(self.modes_ != 0, axis=1)
        omegas = self.modes_[np.arange(self.n_bits), dims] * np.pi / (self.mx_ - self.mn_)[dims]
        phase = (coords[:, dims] - self.mn_[dims]) * omegas
        return np.sin(np.pi / 2 + phase).astype(np.float32)
