"""Crops on the feature map, their features, IoU, box targets and the box-averaging rule (numpy, no torch).

A *crop* is a rectangle of whole cells of the backbone's feature map (TiefVision convolves the whole image once
and reads every crop's encoding off the map, as if each crop had been cut out and encoded): cells ``(c0, r0, c1,
r1)``, end exclusive, every such rectangle whose sides differ by at most ``max_aspect``. A crop's feature is the
map's mean inside it, the mean over the crop grown by ``context`` cells a side (clipped to the map) and its
coordinates ``(x0, y0, x1, y1)`` as shares of the image's width and height; means come from an integral image, so
all crops of an image cost one pass. Training and inference both build features here.

Boxes are ``(x0, y0, x1, y1)`` shares of the image's sides. The regressor predicts the true box relative to the
crop: ``t = ((X0 - x0) / w, (Y0 - y0) / h, (X1 - x1) / w, (Y1 - y1) / h)`` for a crop of width w and height h.
"""

from __future__ import annotations

import math

import numpy as np

from ..images import MIN_REGION, Box
from .config import LocaliserConfig

__all__ = ["average_boxes", "crop_cells", "crop_coords", "crop_features", "decode_offsets", "encode_offsets",
           "integral", "iou", "to_pixels"]


def crop_cells(cfg: LocaliserConfig) -> np.ndarray:
    """(m, 4) int64 cells ``(c0, r0, c1, r1)`` of every crop on the config's grid."""
    g = cfg.grid
    out = [(c0, r0, c0 + w, r0 + h)
           for h in range(1, g + 1) for w in range(1, g + 1) if max(w, h) <= cfg.max_aspect * min(w, h)
           for r0 in range(g - h + 1) for c0 in range(g - w + 1)]
    return np.array(out, dtype=np.int64)


def crop_coords(cells: np.ndarray, grid: int) -> np.ndarray:
    """(m, 4) float32 boxes of the crops as shares of the image's sides."""
    return (np.asarray(cells, dtype=np.float32) / grid).astype(np.float32)


def integral(maps: np.ndarray) -> np.ndarray:
    """Feature maps (n, C, g, g) → integral images (n, g + 1, g + 1, C) float32, channels last."""
    maps = np.asarray(maps, dtype=np.float64)
    n, c, gh, gw = maps.shape
    out = np.zeros((n, gh + 1, gw + 1, c), dtype=np.float64)
    out[:, 1:, 1:, :] = maps.transpose(0, 2, 3, 1).cumsum(axis=1).cumsum(axis=2)
    return out.astype(np.float32)


def _mean(ii: np.ndarray, img: np.ndarray, cells: np.ndarray) -> np.ndarray:
    c0, r0, c1, r1 = (cells[:, i] for i in range(4))
    total = ii[img, r1, c1] - ii[img, r0, c1] - ii[img, r1, c0] + ii[img, r0, c0]
    return total / ((c1 - c0) * (r1 - r0))[:, None].astype(np.float32)


def crop_features(ii: np.ndarray, img: np.ndarray, cells: np.ndarray, cfg: LocaliserConfig) -> np.ndarray:
    """(b, 2C + 4) float32 features of crops ``cells[i]`` of images ``img[i]`` of the integral images ``ii``."""
    img, cells = np.asarray(img, dtype=np.int64), np.asarray(cells, dtype=np.int64)
    g = ii.shape[1] - 1
    grown = np.concatenate([np.maximum(cells[:, :2] - cfg.context, 0), np.minimum(cells[:, 2:] + cfg.context, g)],
                           axis=1)
    return np.concatenate([_mean(ii, img, cells), _mean(ii, img, grown), crop_coords(cells, g)],
                          axis=1).astype(np.float32)


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each (x0, y0, x1, y1) row of ``boxes`` with ``box``."""
    boxes, box = np.asarray(boxes, dtype=np.float64), np.asarray(box, dtype=np.float64)
    w = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = w * h
    union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def encode_offsets(crops: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The regression targets of ``box`` relative to each crop (module docstring)."""
    crops = np.asarray(crops, dtype=np.float32)
    size = np.concatenate([crops[:, 2:] - crops[:, :2]] * 2, axis=1)
    return ((np.asarray(box, dtype=np.float32)[None, :] - crops) / size).astype(np.float32)


def decode_offsets(crops: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops, dtype=np.float32)
    size = np.concatenate([crops[:, 2:] - crops[:, :2]] * 2, axis=1)
    return (crops + np.asarray(offsets, dtype=np.float32) * size).astype(np.float32)


def average_boxes(p: np.ndarray, boxes: np.ndarray, threshold: float, min_score: float
                  ) -> tuple[np.ndarray | None, float, int]:
    """TiefVision's rule: (the mean of the boxes of the crops with ``p >= threshold``, the best p, how many).

    When no crop reaches ``threshold``, the best crop's box stands alone (count 0) if its p is at least
    ``min_score``; below that nothing looks like an object and the box is None.
    """
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return None, 0.0, 0
    best = int(np.argmax(p))
    trusted = p >= threshold
    if trusted.any():
        return np.asarray(boxes, dtype=np.float64)[trusted].mean(axis=0), float(p[best]), int(trusted.sum())
    if p[best] >= min_score:
        return np.asarray(boxes[best], dtype=np.float64), float(p[best]), 0
    return None, float(p[best]), 0


def to_pixels(box: np.ndarray, width: int, height: int) -> Box:
    """A (x0, y0, x1, y1) share box → the pixel :class:`Box` it covers in a ``width`` x ``height`` image, clipped to
    the image and grown (about its centre) to at least :data:`MIN_REGION` pixels a side (or the image's side)."""
    x0, y0, x1, y1 = (float(v) if math.isfinite(float(v)) else 0.0 for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    lo_x, hi_x = _span(x0 * width, x1 * width, width)
    lo_y, hi_y = _span(y0 * height, y1 * height, height)
    return Box(lo_x, lo_y, hi_x - lo_x, hi_y - lo_y)


def _span(lo: float, hi: float, side: int) -> tuple[int, int]:
    a = min(max(int(math.floor(lo)), 0), side)
    b = min(max(int(math.ceil(hi)), 0), side)
    need = min(MIN_REGION, side)
    if b - a < need:
        centre = (a + b) / 2 if b > a else min(max(lo, 0.0), float(side))
        a = int(min(max(round(centre - need / 2), 0), side - need))
        b = a + need
    return a, b
