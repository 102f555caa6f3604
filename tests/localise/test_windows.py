"""Crops, their features, IoU, box targets and the averaging rule, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.images import Box
from lookalike.localise.config import LocaliserConfig
from lookalike.localise.windows import (
    average_boxes,
    crop_cells,
    crop_coords,
    crop_features,
    decode_offsets,
    encode_offsets,
    integral,
    iou,
    to_pixels,
)


def test_the_averaging_rule_on_a_hand_computed_example() -> None:
    p = np.array([0.9, 0.85, 0.3, 0.95])
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.2, 0.2, 0.6, 0.8], [0.0, 0.0, 1.0, 1.0], [0.3, 0.1, 0.7, 0.7]])
    box, score, n = average_boxes(p, boxes, threshold=0.8, min_score=0.1)
    # the three crops at >= 0.8: x0 (0.1 + 0.2 + 0.3) / 3, y0 (0.2 + 0.2 + 0.1) / 3, x1 (0.5 + 0.6 + 0.7) / 3, ...
    assert box == pytest.approx([0.2, 0.5 / 3, 0.6, 2.1 / 3])
    assert (score, n) == (0.95, 3)


def test_no_crop_passes_the_best_stands_alone_and_nothing_below_min_score() -> None:
    boxes = np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]])
    box, score, n = average_boxes(np.array([0.3, 0.6]), boxes, 0.8, 0.1)
    assert box == pytest.approx([0.5, 0.5, 0.9, 0.9]) and (score, n) == (0.6, 0)
    box, score, n = average_boxes(np.array([0.05, 0.02]), boxes, 0.8, 0.1)
    assert box is None and score == pytest.approx(0.05) and n == 0
    assert average_boxes(np.empty(0), np.empty((0, 4)), 0.8, 0.1) == (None, 0.0, 0)


def test_crops_cover_the_grid_within_the_aspect_limit() -> None:
    cfg = LocaliserConfig(layer="head", size=128, max_aspect=2.0)  # 4 x 4 cells
    cells = crop_cells(cfg)
    w, h = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    assert (np.maximum(w, h) <= 2 * np.minimum(w, h)).all()
    assert cells.min() >= 0 and cells[:, 2:].max() <= 4
    assert [0, 0, 4, 4] in cells.tolist() and [0, 0, 1, 4] not in cells.tolist()
    assert len({tuple(c) for c in cells.tolist()}) == len(cells)
    assert crop_coords(np.array([[1, 0, 3, 4]]), 4).tolist() == [[0.25, 0.0, 0.75, 1.0]]


def test_crop_features_are_the_means_inside_and_around() -> None:
    cfg = LocaliserConfig(layer="stage5", size=64, context=1)  # 112 channels, 4 x 4 cells
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 112, 4, 4)).astype(np.float32)
    ii = integral(maps)
    cells = np.array([[1, 1, 3, 2], [0, 0, 4, 4]])
    feats = crop_features(ii, np.array([1, 0]), cells, cfg)
    assert feats.shape == (2, 2 * 112 + 4)
    np.testing.assert_allclose(feats[0, :112], maps[1, :, 1:2, 1:3].mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(feats[0, 112:224], maps[1, :, 0:3, 0:4].mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(feats[1, 112:224], maps[0].mean(axis=(1, 2)), atol=1e-5)  # clipped to the map
    np.testing.assert_allclose(feats[0, 224:], [0.25, 0.25, 0.75, 0.5])


def test_iou_and_offsets() -> None:
    a = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 1.0, 1.0]])
    np.testing.assert_allclose(iou(a, np.array([0.0, 0.0, 0.5, 0.5])), [1.0, 0.0625 / 0.4375, 0.0])
    truth = np.array([0.1, 0.2, 0.4, 0.9])
    t = encode_offsets(a, truth)
    np.testing.assert_allclose(t[0], [0.2, 0.4, -0.2, 0.8], atol=1e-6)
    np.testing.assert_allclose(decode_offsets(a, t), np.tile(truth, (3, 1)), atol=1e-6)


def test_pixel_boxes_are_clipped_and_at_least_the_minimum_region() -> None:
    assert to_pixels(np.array([0.1, 0.2, 0.5, 0.6]), 200, 100) == Box(20, 20, 80, 40)
    assert to_pixels(np.array([-0.5, -0.1, 1.4, 1.2]), 200, 100) == Box(0, 0, 200, 100)
    small = to_pixels(np.array([0.5, 0.5, 0.51, 0.5]), 200, 100)
    assert small.w == 16 and small.h == 16 and small.x + small.w <= 200
    assert to_pixels(np.array([0.99, 0.99, 1.0, 1.0]), 200, 100) == Box(184, 84, 16, 16)
    assert to_pixels(np.array([np.nan, 0.0, 1.0, np.inf]), 10, 10) == Box(0, 0, 10, 10)
