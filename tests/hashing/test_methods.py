"""What each method promises: its paper's property, checked on small seeded data, plus a retrieval sanity check."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.hashing import ITQ, LSH, PCAH, KMeansHashing, SpectralHashing, SphericalHashing, get_hasher, kmeans
from lookalike.hashing.kmeans import balanced_partition
from lookalike.hashing.spectral import spectral_modes


def gaussian(seed: int, n: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * np.linspace(0.5, 2.0, dim) + 3.0).astype(np.float32)


@pytest.mark.parametrize("theta", [np.pi / 6, np.pi / 3, np.pi / 2, 2 * np.pi / 3, 5 * np.pi / 6])
def test_lsh_collision_rate_is_one_minus_angle_over_pi(theta: float) -> None:
    """Charikar 2002: a random hyperplane separates two vectors at angle θ with probability θ/π.

    4,096 independent bits on each of 20 pairs: the rate's standard deviation is below 0.008, so a tolerance of
    0.03 is about 4 sigma, and still tells 1 − θ/π from e.g. (1 + cos θ)/2 (0.08 apart at θ = π/3).
    """
    dim, rng = 48, np.random.default_rng(1)
    hasher = LSH(n_bits=4096, random_state=0).fit(gaussian(0, 100, dim))
    u = rng.standard_normal((20, dim))
    w = rng.standard_normal((20, dim))
    w -= (np.einsum("ij,ij->i", u, w) / np.einsum("ij,ij->i", u, u))[:, None] * u  # orthogonal to u
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    v = np.cos(theta) * u + np.sin(theta) * w
    # the angle is the one seen after centring, so place the pairs around the learned mean
    bu, bv = (np.unpackbits(hasher.transform(hasher.mean_ + x), axis=1) for x in (u, v))
    assert abs((bu == bv).mean() - (1 - theta / np.pi)) < 0.03


def test_pcah_bits_are_balanced_on_gaussian_data() -> None:
    train, test = gaussian(0, 2000, 32), gaussian(1, 2000, 32)
    hasher = PCAH(n_bits=16).fit(train)
    for X in (train, test):
        ones = np.unpackbits(hasher.transform(X), axis=1).mean(axis=0)
        assert np.all(np.abs(ones - 0.5) < 0.05), ones
    # orthonormal directions by decreasing variance
    np.testing.assert_allclose(hasher.components_ @ hasher.components_.T, np.eye(16), atol=1e-5)
    assert np.all(np.diff(hasher.explained_variance_) <= 0)


def test_pcah_directions_match_an_svd_of_the_centred_data() -> None:
    X = gaussian(2, 500, 20)
    _, s, vt = np.linalg.svd(X.astype(np.float64) - X.mean(axis=0, dtype=np.float64), full_matrices=False)
    hasher = PCAH(n_bits=8).fit(X)
    np.testing.assert_allclose(np.abs(hasher.components_ @ vt[:8].T), np.eye(8), atol=1e-4)
    np.testing.assert_allclose(hasher.explained_variance_, s[:8] ** 2 / (len(X) - 1), rtol=1e-4)


def test_itq_quantisation_loss_never_increases() -> None:
    """Each ITQ half-step minimises ||B − V R||² over B or over orthogonal R, so the loss is monotone."""
    X = gaussian(3, 1500, 40)
    for seed in range(3):
        hasher = ITQ(n_bits=24, n_iter=30, random_state=seed).fit(X)
        loss = hasher.quantization_loss_
        assert loss.shape == (31,)
        assert np.all(np.diff(loss) <= 1e-9 * loss[0]), np.diff(loss).max()
        assert loss[-1] < 0.97 * loss[0]  # and it does learn something
        np.testing.assert_allclose(hasher.rotation_ @ hasher.rotation_.T, np.eye(24), atol=1e-5)


def test_itq_with_no_iterations_is_pca_under_a_random_rotation() -> None:
    X = gaussian(4, 400, 16)
    itq, pcah = ITQ(n_bits=16, n_iter=0, random_state=0).fit(X), PCAH(n_bits=16).fit(X)
    assert itq.quantization_loss_.shape == (1,)
    np.testing.assert_allclose(itq.project(X), pcah.project(X) @ itq.rotation_, atol=1e-4)


def test_spectral_modes_match_a_hand_computed_case() -> None:
    """Box 3 x 1.1: frequencies kπ/3 (dimension 0) and kπ/1.1 (dimension 1); the 8 smallest, hand-sorted:
    π/3 (0,1), 2π/3 (0,2), π/1.1 (1,1), π (0,3), 4π/3 (0,4), 5π/3 (0,5), 2π/1.1 (1,2), 2π (0,6)."""
    expected = np.array([[1, 0], [2, 0], [0, 1], [3, 0], [4, 0], [5, 0], [0, 2], [6, 0]])
    np.testing.assert_array_equal(spectral_modes(np.array([3.0, 1.1]), 8), expected)
    # equal frequencies go to the lower dimension first (a stable sort, as in the authors' code)
    np.testing.assert_array_equal(spectral_modes(np.array([2.0, 1.0]), 8)[:4], [[1, 0], [2, 0], [0, 1], [3, 0]])


def test_spectral_hashing_fits_the_box_and_modes_of_the_principal_components() -> None:
    # a grid over [0, 3] x [0, 1.1]: its principal components are the axes, their ranges 3 and 1.1
    xs, ys = np.meshgrid(np.linspace(0, 3, 30), np.linspace(0, 1.1, 12))
    X = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float32)
    hasher = SpectralHashing(n_bits=8).fit(X)
    np.testing.assert_allclose(hasher.mx_ - hasher.mn_, [3.0, 1.1], rtol=1e-6)
    np.testing.assert_array_equal(hasher.modes_, [[1, 0], [2, 0], [0, 1], [3, 0], [4, 0], [5, 0], [0, 2], [6, 0]])
    # bit 0 (mode 1 along x) splits the box in half: sin(π/2 + π (x − mn)/R) > 0 for x in the first half
    bits = np.unpackbits(hasher.transform(X), axis=1)
    signed_x = (X - hasher.mean_) @ hasher.components_[0]
    np.testing.assert_array_equal(bits[:, 0], (signed_x - hasher.mn_[0]) < 1.5)


def test_spherical_hashing_spheres_each_hold_half_the_points() -> None:
    X = gaussian(5, 1000, 32)
    hasher = SphericalHashing(n_bits=32, random_state=0).fit(X)
    inside = np.unpackbits(hasher.transform(X), axis=1).astype(np.float64)
    np.testing.assert_array_equal(inside.sum(axis=0), 500)  # all 1,000 points trained: exactly half each
    assert hasher.n_iter_ < hasher.max_iter  # converged: pairwise overlaps near a quarter
    overlaps = (inside.T @ inside)[np.triu_indices(32, k=1)]
    assert np.abs(overlaps - 250).mean() <= 0.1 * 250 and overlaps.std() <= 0.15 * 250


def test_spherical_hashing_on_a_subsample_still_halves_the_whole_set() -> None:
    X = gaussian(6, 3000, 16)
    hasher = SphericalHashing(n_bits=16, max_samples=600, random_state=0).fit(X)
    fraction = np.unpackbits(hasher.transform(X), axis=1).mean(axis=0)
    assert np.all(np.abs(fraction - 0.5) < 0.06), fraction


def test_balanced_partition_matches_a_hand_computed_case() -> None:
    """Variances 8, 4, 2, 1 into 2 groups: 0 → group 0; 1 → group 1 (smaller sum); 2 → group 1, now full;
    3 → group 0. Products of variances 8·1 and 4·2: balanced."""
    np.testing.assert_array_equal(balanced_partition(np.array([8.0, 4.0, 2.0, 1.0]), 2), [0, 3, 1, 2])
    # an uneven split drops the weakest directions; groups keep decreasing variance inside
    assert balanced_partition(np.array([9.0, 5.0, 3.0, 2.0, 1.0]), 2).tolist() == [0, 3, 1, 2]


def test_kmh_without_iterations_is_pca_hashing_in_each_subspace() -> None:
    """Its start: 2**b centres on the ±s vertices of each subspace's top b directions, so the nearest centre's
    index is the sign pattern of those b coordinates."""
    X = gaussian(7, 800, 32)
    hasher = KMeansHashing(n_bits=16, bits_per_subspace=4, n_iter=0).fit(X)
    coords = ((X - hasher.mean_) @ hasher.components_.T).reshape(len(X), 4, 8)  # M = 4 subspaces of d = 8
    np.testing.assert_array_equal(hasher.transform(X), np.packbits(coords[:, :, :4].reshape(len(X), 16) > 0, axis=1))
    assert hasher.quantization_error_.shape == (1,)


def test_kmh_lowers_quantisation_error_and_keeps_bits_balanced() -> None:
    X = gaussian(8, 2000, 32)
    hasher = KMeansHashing(n_bits=16, n_iter=20).fit(X)
    assert hasher.quantization_error_[-1] < 0.99 * hasher.quantization_error_[0]
    ones = np.unpackbits(hasher.transform(X), axis=1).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.1), ones


def test_kmh_centre_update_reaches_a_stationary_point_of_the_papers_objective(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eqn. (8) for the centre updated last (the others no longer move): its gradient vanishes at the update."""
    rng = np.random.default_rng(0)
    n_sub, k, dim, weight = 2, 16, 6, 10.0
    centers = rng.standard_normal((n_sub, k, dim))
    share = rng.random((n_sub, k))
    share /= share.sum(axis=1, keepdims=True)
    mean_sum = rng.standard_normal((n_sub, k, dim)) * share[..., None]
    bits = kmeans._index_bits(4)
    target = np.broadcast_to(1.4 * np.sqrt(bits @ (1 - bits).T + (1 - bits) @ bits.T), (n_sub, k, k))
    monkeypatch.setattr(kmeans, "_MM_STEPS", 2000)
    kmeans._update_centers(centers, share, mean_sum, target, weight)

    def objective(c: np.ndarray, m: int, j: int = k - 1) -> float:
        w = 2 * weight * share[m] * share[m, j]
        w[j] = 0
        dist = np.linalg.norm(centers[m] - c, axis=1)
        return float(share[m, j] * c @ c - 2 * mean_sum[m, j] @ c + (w * (dist - target[m, :, j]) ** 2).sum())

    for m in range(n_sub):
        c, h = centers[m, k - 1], 1e-6
        grad = [(objective(c + h * e, m) - objective(c - h * e, m)) / (2 * h) for e in np.eye(dim)]
        assert np.abs(grad).max() < 1e-5, grad


def blobs(seed: int, n_blobs: int = 10, per_blob: int = 100, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: centres N(0, 1.5² I), points N(centre, I)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_blobs), per_blob)
    X = 1.5 * rng.standard_normal((n_blobs, dim))[labels] + rng.standard_normal((len(labels), dim))
    return X.astype(np.float32), labels


def neighbour_precision(codes: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean fraction of same-blob items among each item's k Hamming neighbours (itself excluded).

    Tie-aware: items at the k-th distance count with the fraction of them that fits in k, as if ties were broken
    at random, so the number depends only on the codes.
    """
    bits = np.unpackbits(codes, axis=1).astype(np.int32)
    dist = bits.shape[1] - (bits @ bits.T + (1 - bits) @ (1 - bits).T)
    np.fill_diagonal(dist, bits.shape[1] + 1)
    same = labels[:, None] == labels[None, :]
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
    closer, tied = dist < kth, dist == kth
    share = (k - closer.sum(axis=1)) / tied.sum(axis=1)
    return float((((closer & same).sum(axis=1) + share * (tied & same).sum(axis=1)) / k).mean())


def test_hamming_neighbours_come_mostly_from_the_same_blob() -> None:
    """On 10 blobs (chance 0.1) every method's 50 nearest codes at 16 bits are mostly same-blob, and ITQ's
    rotation helps PCA (Gong & Lazebnik's central claim): here about 1.0 against 0.8."""
    X, labels = blobs(0)
    precision = {name: neighbour_precision(get_hasher(name, n_bits=16, random_state=0).fit_transform(X), labels, 50)
                 for name in ("itq", "kmh", "lsh", "pcah", "sh", "sph")}
    assert all(p > 0.6 for p in precision.values()), precision
    assert precision["itq"] >= precision["pcah"], precision
