"""Geometric verification on known transforms: a crop's few true matches among many wrong ones (the similarity
model), a perspective view (the homography earns its extra freedom), and nothing for matches that agree on no
transform."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.partial.features import LocalFeatures
from lookalike.partial.verify import verify


def _features(xy: np.ndarray, w: int, h: int) -> LocalFeatures:
    return LocalFeatures("teblid", w, h, xy.astype(np.float32), np.zeros((len(xy), 32), np.uint8))


def _pairs(n: int) -> np.ndarray:
    return np.stack([np.arange(n), np.arange(n)], axis=1)


def test_a_crop_with_few_true_matches_among_many_wrong_ones_is_found_with_its_box() -> None:
    rng = np.random.default_rng(0)
    # the query is the region x 300-460, y 200-320 of a 1000 x 800 image, scaled by 1.5 (a 240 x 180 query)
    true_q = rng.uniform([0, 0], [240, 180], (14, 2))
    true_r = true_q / 1.5 + [300, 200]
    wrong_q = rng.uniform([0, 0], [240, 180], (180, 2))
    wrong_r = rng.uniform([0, 0], [1000, 800], (180, 2))
    query = _features(np.vstack([true_q, wrong_q]), 240, 180)
    ref = _features(np.vstack([true_r, wrong_r]), 1000, 800)
    v = verify(query, ref, min_inliers=10, matches=_pairs(194))
    assert v is not None
    assert v.inliers >= 14 and v.matches == 194
    np.testing.assert_allclose(v.homography[2], [0, 0, 1])  # the similarity was kept
    np.testing.assert_allclose(v.box, (300, 200, 460, 320), atol=3)
    np.testing.assert_allclose(v.query_box, (0, 0, 240, 180), atol=3)


def test_a_perspective_view_keeps_the_homography() -> None:
    rng = np.random.default_rng(1)
    h = np.array([[0.8, 0.15, 120.0], [-0.05, 0.9, 80.0], [0.0006, 0.0004, 1.0]])
    q = rng.uniform([0, 0], [400, 300], (120, 2))
    p = np.hstack([q, np.ones((120, 1))]) @ h.T
    r = p[:, :2] / p[:, 2:3]
    v = verify(_features(q, 400, 300), _features(r, 1000, 800), min_inliers=10, matches=_pairs(120))
    assert v is not None and v.inliers >= 110
    assert abs(v.homography[2, 0]) > 1e-4  # a perspective row, not a similarity's


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_that_agree_on_no_transform_verify_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = rng.uniform([0, 0], [240, 180], (150, 2))
    r = rng.uniform([0, 0], [1000, 800], (150, 2))
    assert verify(_features(q, 240, 180), _features(r, 1000, 800), min_inliers=10, matches=_pairs(150)) is None


def test_a_low_contrast_crop_still_has_keypoints_to_match() -> None:
    """FAST's threshold 5 (features.FAST_THRESHOLD) finds corners on a clock's plain face, where 12 found 11."""
    from PIL import Image
    from skimage import data

    from lookalike.partial.features import Extractor

    crop = data.clock()[100:260, 150:350]
    assert len(Extractor("teblid", 1000).describe(Image.fromarray(crop))) >= 60




def test_a_homography_that_collapses_the_frame_onto_a_line_is_not_sane() -> None:
    """RANSAC's homography from a run where a distractor's few points took most query points: rank 2 (it maps the
    query frame onto a line) with a sane-looking upper 2x2; inverting it for the query box raised LinAlgError."""
    import importlib

    module = importlib.import_module("lookalike.partial.verify")  # the name `verify` is the function
    h = np.array([[5.1161201362059916e-01, -3.7632074730910769e-01, 1.1809159596544059e02],
                  [4.3623221214616986e-01, -3.0757755469487374e-01, 9.7129605566756709e01],
                  [4.4472759945682113e-03, -3.1722084332313177e-03, 1.0]])  # det 0.0 in float64
    query = _features(np.zeros((1, 2)), 256, 256)
    assert not module._sane(h, query)
    assert module._sane(np.diag([2.0, 2.0, 1.0]), query)
