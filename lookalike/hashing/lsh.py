"""Locality-sensitive hashing with random hyperplanes (Charikar, STOC 2002; "SimHash")."""

from __future__ import annotations

import numpy as np

from .base import Hasher, centred_dot

__all__ = ["LSH"]


class LSH(Hasher):
    """Sign of the projection of the centred data on ``n_bits`` Gaussian random directions.

    Two vectors at angle θ (after centring) agree on each bit with probability 1 − θ/π, so the Hamming distance
    estimates the angle; no training beyond the mean. Any ``n_bits`` that is a positive multiple of 8 works.

    Learned attributes:
        hyperplanes_: (n_bits, n_features) float32, rows drawn i.i.d. from N(0, I).

    Example::

        codes = LSH(n_bits=64, random_state=0).fit(X).transform(X)  # (n, 8) uint8

    Reference: M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC 2002.
    """

    name = "lsh"
    _learned = ("hyperplanes_",)

    def __init__(self, n_bits: int = 64, *, random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.random_state = random_state

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        self.hyperplanes_ = rng.standard_normal((self.n_bits, X.shape[1]), dtype=np.float32)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return centred_dot(X, self.mean_, self.hyperplanes_.T)
