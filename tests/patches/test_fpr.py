"""FPR@95 of descriptor distances against a brute-force reference, ties included, and the pair distances."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.evaluation import fpr_at_95
from lookalike.patches import PatchPairs
from lookalike.patches.runner import pair_distances


def brute_force_fpr95(distances: np.ndarray, is_match: np.ndarray) -> float:
    """Every candidate threshold, smallest first: accept pairs with distance <= t; the first t accepting at least
    95% of matching pairs gives the FPR (the fraction of non-matching pairs accepted)."""
    for t in sorted(set(distances.tolist())):
        accepted = distances <= t
        if 100 * np.count_nonzero(accepted & is_match) >= 95 * np.count_nonzero(is_match):
            return np.count_nonzero(accepted & ~is_match) / np.count_nonzero(~is_match)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(8))
def test_matches_the_brute_force_reference_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [40, 41, 200, 999, 20, 60, 500, 7][seed]
    is_match = rng.random(n) < 0.5
    is_match[:2] = True, False
    # Hamming-like integer distances over a few values: ties everywhere, at the threshold too
    distances = np.where(is_match, rng.integers(0, 6, n), rng.integers(3, 9, n)).astype(np.float64)
    assert fpr_at_95(distances, is_match) == brute_force_fpr95(distances, is_match)


def test_ties_at_the_threshold_count_as_accepted() -> None:
    # 20 matches: 19 at 0, one at 5; the 95% threshold is 0, and both non-matches tied at 0 are accepted
    distances = np.r_[np.zeros(19), 5, 0, 0, 1, 2]
    is_match = np.r_[np.ones(20, bool), np.zeros(4, bool)]
    assert fpr_at_95(distances, is_match) == brute_force_fpr95(distances, is_match) == 0.5


def test_pair_distances_hamming_and_l2_and_undescribed_patches() -> None:
    rng = np.random.default_rng(0)
    patches = np.zeros((6, 64, 64), np.uint8)
    pairs = PatchPairs("t", patches, np.array([0, 1, 2, 3]), np.array([1, 2, 3, 5]), np.array([1, 0, 1, 0], bool))
    bits = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    ok = np.array([True, True, True, True, True, False])
    got = pair_distances(bits, ok, pairs, "binary")
    ref = [np.unpackbits(bits[a] ^ bits[b]).sum() for a, b in zip(pairs.first, pairs.second, strict=True)]
    assert np.array_equal(got[:3], ref[:3]) and got[3] == max(ref[:3]) + 1
    floats = rng.random((6, 128)).astype(np.float32)
    got = pair_distances(floats, np.ones(6, bool), pairs, "float")
    np.testing.assert_allclose(got, np.linalg.norm(floats[pairs.first] - floats[pairs.second], axis=1), rtol=1e-6)
