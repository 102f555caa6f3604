"""The offline pair sets: seeded, balanced, and their correspondences really correspond."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.patches import PatchPairs, motorcycle_pairs, stereo_pairs, training_patches, warp_pairs
from lookalike.patches.warps import KINDS, TEST_PHOTOS, TRAIN_PHOTOS


def ncc(pairs: PatchPairs) -> np.ndarray:
    """Normalised cross-correlation of each pair's two patches."""
    a = pairs.patches[pairs.first].reshape(len(pairs), -1).astype(np.float64)
    b = pairs.patches[pairs.second].reshape(len(pairs), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


@pytest.fixture(scope="module", params=["motorcycle", "warps"])
def made(request: pytest.FixtureRequest) -> tuple[str, PatchPairs]:
    make = motorcycle_pairs if request.param == "motorcycle" else warp_pairs
    return request.param, make(300, 200, 0)


def test_balanced_and_well_formed(made: tuple[str, PatchPairs]) -> None:
    name, pairs = made
    assert pairs.name == name and len(pairs) == 500 and pairs.n_match == 300
    assert pairs.patches.shape == (600, 64, 64) and pairs.patches.dtype == np.uint8
    assert not np.any(pairs.first == pairs.second)
    assert pairs.small().shape == (600, 32, 32)


def test_matching_pairs_correlate_far_more_than_non_matching(made: tuple[str, PatchPairs]) -> None:
    _, pairs = made
    c = ncc(pairs)
    assert np.median(c[pairs.is_match]) > 0.6 and abs(np.median(c[~pairs.is_match])) < 0.15
    assert np.mean(c[pairs.is_match] > 0.3) > 0.8 > 0.2 > np.mean(c[~pairs.is_match] > 0.3)


def test_seeded(made: tuple[str, PatchPairs]) -> None:
    name, pairs = made
    make = motorcycle_pairs if name == "motorcycle" else warp_pairs
    again, other = make(300, 200, 0), make(300, 200, 1)
    assert np.array_equal(again.patches, pairs.patches) and np.array_equal(again.first, pairs.first)
    assert np.array_equal(again.second, pairs.second) and not np.array_equal(other.patches, pairs.patches)


def test_every_kind_of_warp_in_equal_shares() -> None:
    pairs = warp_pairs(600, 10, 0)
    kinds, counts = np.unique(pairs.kind[pairs.is_match], return_counts=True)
    assert sorted(kinds) == sorted(KINDS) and set(counts) == {100}
    assert np.ptp(np.unique(warp_pairs(601, 10, 0).kind[:601], return_counts=True)[1]) == 1


def test_stereo_pairs_follow_the_disparity_exactly() -> None:
    """A right image that is the left one shifted by a known disparity: every matching pair is pixel-identical."""
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (120, 200), dtype=np.uint8)
    d = 10
    right = np.zeros_like(left)
    right[:, :-d] = left[:, d:]  # the left point x shows at x - d in the right image
    disparity = np.full(left.shape, float(d), dtype=np.float32)
    disparity[:, :50] = np.inf  # unknown there: no point may come from it
    pairs = stereo_pairs(left, right, disparity, 200, 50, 0)
    m = pairs.is_match
    assert np.array_equal(pairs.patches[pairs.first[m]], pairs.patches[pairs.second[m]])
    assert not np.any([np.array_equal(a, b) for a, b in zip(pairs.patches[pairs.first[~m]],
                                                            pairs.patches[pairs.second[~m]], strict=True)])


def test_training_patches_come_from_other_photographs() -> None:
    assert not set(TEST_PHOTOS) & set(TRAIN_PHOTOS) and "motorcycle_left.png" not in TRAIN_PHOTOS
    patches = training_patches(200, seed=1)
    assert patches.shape == (200, 64, 64) and patches.dtype == np.uint8
    assert np.array_equal(patches, training_patches(200, seed=1))
    assert patches.reshape(200, -1).std(axis=1).min() > 5  # textured, not flat


def test_bad_counts() -> None:
    with pytest.raises(InvalidParameterError, match="n_match"):
        warp_pairs(0, 10)
    with pytest.raises(InvalidParameterError, match="seed"):
        motorcycle_pairs(10, 10, -1)
