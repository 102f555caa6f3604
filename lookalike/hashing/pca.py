"""PCA hashing (PCAH) and iterative quantisation (ITQ, Gong & Lazebnik 2011): both start from the top principal
directions, found by an eigendecomposition of the (n_features, n_features) covariance rather than an SVD of X."""

from __future__ import annotations

import weakref

import numpy as np

from .base import _CHUNK_ROWS, Hasher, Integer, centred_dot

__all__ = ["ITQ", "PCAH", "principal_components", "rotated_projection"]


def principal_components(X: np.ndarray, mean: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``n_components`` principal directions of float32 ``X`` around ``mean``.

    Returns (components (n_components, n_features) float32 with orthonormal rows, by decreasing variance;
    variances (n_components,) float64). The covariance is accumulated in float64 from float32 blocks of centred
    rows; each direction's sign is fixed so its largest-magnitude entry is positive (deterministic output).
    """
    d = X.shape[1]
    cov = np.zeros((d, d), dtype=np.float64)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        block = X[start:start + _CHUNK_ROWS] - mean
        cov += block.T @ block
    cov /= X.shape[0] - 1
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:n_components]
    components = vectors[:, order].T
    signs = np.sign(components[np.arange(n_components), np.argmax(np.abs(components), axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return components.astype(np.float32), np.maximum(values[order], 0.0)


class PCAH(Hasher):
    """Sign of the centred data's projection on its top ``n_bits`` principal directions.

    Needs ``n_bits <= n_features``. Deterministic: ``random_state`` is accepted for a uniform interface and unused.

    Learned attributes:
        components_: (n_bits, n_features) float32, principal directions by decreasing variance.
        explained_variance_: (n_bits,) float64, the variance along each.

    Reference: the PCA baseline of Y. Weiss, A. Torralba, R. Fergus, "Spectral Hashing", NIPS 2008, and of
    Gong & Lazebnik 2011 (below).
    """

    name = "pcah"
    _learned = ("components_", "explained_variance_")

    def __init__(self, n_bits: int = 64, *, random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.random_state = random_state

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str]:
        return n_features, "the number of features"

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        self.components_, self.explained_variance_ = principal_components(X, mean, self.n_bits)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return centred_dot(X, self.mean_, self.components_.T)


class ITQ(Hasher):
    """Iterative quantisation: PCA to ``n_bits`` dimensions, then the rotation that best fits the hypercube.

    Alternates ``B = sign(V R)`` and the orthogonal Procrustes solution ``R = argmin ||B − V R||_F`` (an SVD of
    the (n_bits, n_bits) matrix Bᵀ V), starting from a random orthogonal ``R`` drawn from ``random_state``. Each
    half-step can only lower the quantisation loss ``||B − V R||_F²``, so ``quantization_loss_`` never increases.
    Needs ``n_bits <= n_features``.

    Learned attributes:
        components_: (n_bits, n_features) float32, the PCA directions (as :class:`PCAH`).
        rotation_: (n_bits, n_bits) float32, orthogonal; ``project(X) = (X − mean_) @ components_.T @ rotation_``.
        quantization_loss_: (n_iter + 1,) float64, the loss of the initial rotation then after each iteration.

    Example::

        codes = ITQ(n_bits=64, random_state=0).fit(X).transform(X)

    Reference: Y. Gong, S. Lazebnik, "Iterative quantization: a Procrustean approach to learning binary codes",
    CVPR 2011.
    """

    name = "itq"
    _constraints = {"n_iter": Integer(0)}
    _learned = ("components_", "rotation_", "quantization_loss_")

    def __init__(
        self, n_bits: int = 64, *, n_iter: int = 50, random_state: int | np.random.Generator | None = None
    ) -> None:
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str]:
        return n_features, "the number of features"

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        components, _ = principal_components(X, mean, self.n_bits)
        V = centred_dot(X, mean, components.T)
        norm = float(np.square(V, dtype=np.float64).sum())
        R = _random_rotation(self.n_bits, rng)
        B, losses = _quantise(V, R, norm)
        history = [losses]
        for _ in range(self.n_iter):
            U, _, Wt = np.linalg.svd((B.T @ V).astype(np.float64))
            R = Wt.T @ U.T  # maximises trace(Bᵀ V R) over orthogonal R
            B, losses = _quantise(V, R, norm)
            history.append(losses)
        self.components_ = components
        self.rotation_ = R.astype(np.float32)
        self.quantization_loss_ = np.array(history)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return centred_dot(X, self.mean_, rotated_projection(self))


def rotated_projection(hasher: Hasher) -> np.ndarray:
    """``components_.T @ rotation_`` of a fitted ITQ-style hasher, (d, n_bits), made once per fit (and per refit).
    Made per call, that (d x c x c) product started numpy's BLAS threads on every query, whose spinning afterwards
    took the cores from the Hamming scan and the re-rank's reads: a 1M-item catalogue's search went from 15 ms to 9
    (benchmarks/catalog_scale.py)."""
    components, rotation = hasher.components_, hasher.rotation_  # type: ignore[attr-defined]
    cached = _ROTATED.get(hasher)
    if cached is None or cached[0] is not components or cached[1] is not rotation:
        cached = (components, rotation, np.ascontiguousarray(components.T @ rotation, dtype=np.float32))
        _ROTATED[hasher] = cached
    return cached[2]


_ROTATED: weakref.WeakKeyDictionary[Hasher, tuple[np.ndarray, np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


def _random_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal (n, n) matrix: QR of a Gaussian matrix with the signs of R's diagonal folded in."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _quantise(V: np.ndarray, R: np.ndarray, norm: float) -> tuple[np.ndarray, float]:
    """The nearest hypercube vertices ``B = sign(V R)`` and the loss ``||B − V R||_F²``, given ``norm = ||V||_F²``.

    With B = sign(Z) the loss is ``n·c − 2 Σ|Z| + ||Z||²`` and ``||Z|| = ||V||`` for orthogonal R; using that
    identity keeps float32 rounding of Z out of the squared term. The matrix products run in float32 (the fit's
    cost), the sums in float64.
    """
    Z = V @ R.astype(np.float32)
    B = np.copysign(np.float32(1.0), Z)
    return B, float(Z.size + norm - 2 * np.abs(Z).sum(dtype=np.float64))
