"""Geometric verification: match a query's descriptors to one catalogue image's, fit a homography by RANSAC and
turn it into the two boxes.

Matches are mutual-free nearest neighbours with Lowe's ratio test (the best Hamming distance below ``RATIO`` times
the second best, and at most ``MAX_DISTANCE`` bits of 256), or the putative pairs the caller gives (the index's
own neighbours). Two models are fitted query → catalogue, each with a reprojection threshold of ``REPROJECTION``
(1% of the catalogue decode's long side, at least 3 px): a similarity (rotation, scale, shift:
``cv2.estimateAffinePartial2D`` by RANSAC, whose 2-point samples find a crop's few consistent matches among many
wrong ones) and a homography (``cv2.findHomography(..., USAC_DEFAULT)``: PROSAC sampling, SPRT early exit, local
optimisation; a plain RANSAC took 10-40 ms per candidate, USAC under 1 ms). The homography is kept when it explains
at least ``EXTRA_INLIERS`` more matches than the similarity (its 4 extra degrees of freedom must earn their keep: a
photograph of a printed page, a screen at an angle); otherwise the similarity. On the validation crops of
``benchmarks/partial.py`` the similarity first lifted 10% crops' recall@1 (BENCHMARKS.md). A fit is kept when it has
at least ``min_inliers`` inliers and is not degenerate (positive determinant, scale between 1/32 and 32, the mapped
query frame convex, the matrix not singular). The catalogue box is the query frame mapped into the catalogue image,
its bounding box clipped to the image; the query box is the catalogue frame mapped back into the query, clipped the
same way.

Two checks then reject the chance fits that RANSAC finds among many putative matches (the index gives a few hundred
per candidate, not ratio-tested): a match counts as an inlier only when it is within the threshold both ways — in
the catalogue image (``REPROJECTION`` of its long side) and, mapped back, in the query (``REPROJECTION`` of the
query's long side) — so a model that shrinks the whole query onto a few catalogue pixels, where any match is
"near", counts almost nothing; and the inliers' convex hull in the query must cover at least ``MIN_SPREAD`` of the
query box (the part of the query that lies on the item), so a dense cluster of keypoints that agree by chance on
one spot does not pass for a match. Chosen on the validation crops of ``benchmarks/partial.py`` (never its reported
ones) with a development script over every candidate's fit: at teblid:4000 / nprobe 8 the loosest rule that left
no wrong result above 10 inliers (wrong results among the top 5 of 152 queries: 5 -> 0, 10% recall@1 0.84 ->
0.83); the benchmark's *wrong* column (BENCHMARKS.md, "Partial-image search") shows what remains, at most 1 query
in 76.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .features import Keypoints, LocalFeatures, _cv2

__all__ = ["MIN_SPREAD", "Verified", "match", "spread", "verify"]

RATIO = 0.8
MAX_DISTANCE = 80
REPROJECTION = 0.01
EXTRA_INLIERS = 4
MAX_CONDITION = 1e10  # a model's 2-norm condition number above this is treated as singular
MIN_SPREAD = 0.02  # the inliers' hull over the query box: see the module doc


@dataclass(frozen=True)
class Verified:
    """One geometric match: ``inliers`` of ``matches``, the homography query → catalogue (in the two decodes'
    pixels) and the two boxes as (x0, y0, x1, y1) floats in those pixels."""

    inliers: int
    matches: int
    homography: np.ndarray  # 3x3; a similarity's last row is (0, 0, 1)
    box: tuple[float, float, float, float]
    query_box: tuple[float, float, float, float]


def match(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query row, ref row) pairs passing the ratio test, by brute-force Hamming distance."""
    if len(query) == 0 or len(ref) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cv2 = _cv2()
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query, ref, k=2)
    qi, ri = [], []
    for pair in pairs:
        if len(pair) == 2 and pair[0].distance <= MAX_DISTANCE and pair[0].distance < RATIO * pair[1].distance:
            qi.append(pair[0].queryIdx)
            ri.append(pair[0].trainIdx)
    return np.array(qi, np.int64), np.array(ri, np.int64)


def _threshold(frame: LocalFeatures | Keypoints) -> float:
    """The reprojection threshold in a frame's pixels: ``REPROJECTION`` of its long side, at least 3 px."""
    return max(3.0, REPROJECTION * max(frame.width, frame.height))


def _corners(w: float, h: float) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def _project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def _clip_box(pts: np.ndarray, w: float, h: float) -> tuple[float, float, float, float]:
    x0, y0 = np.clip(pts.min(axis=0), 0, [w, h])
    x1, y1 = np.clip(pts.max(axis=0), 0, [w, h])
    return float(x0), float(y0), float(x1), float(y1)


def _sane(h: np.ndarray, query: LocalFeatures) -> bool:
    if not np.all(np.isfinite(h)) or np.linalg.cond(h) > MAX_CONDITION:  # singular: maps the frame onto a line
        return False
    det = float(np.linalg.det(h[:2, :2]))
    if not 1 / 1024 < det < 1024:
        return False
    corners = _corners(query.width, query.height)
    p = np.hstack([corners, np.ones((4, 1))]) @ h.T
    if np.any(p[:, 2] <= 1e-9):  # the query frame crosses the horizon
        return False
    q = p[:, :2] / p[:, 2:3]
    edges = np.roll(q, -1, axis=0) - q
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


def verify(query: LocalFeatures, ref: LocalFeatures | Keypoints, *, min_inliers: int = 8, seed: int = 0,
           matches: np.ndarray | None = None) -> Verified | None:
    """The model (similarity or homography, see the module doc) from ``query`` to ``ref``, or None when there is
    no sane one with ``min_inliers``.
    ``matches``: (m, 2) putative (query row, ref row) pairs (the index's); default: :func:`match`'s, which needs
    ``ref``'s descriptors (a :class:`LocalFeatures`)."""
    if matches is None:
        if not isinstance(ref, LocalFeatures):
            raise TypeError("verify without matches needs the reference's descriptors (LocalFeatures)")
        qi, ri = match(query.desc, ref.desc)
    else:
        qi, ri = matches[:, 0], matches[:, 1]
    if len(qi) < max(4, min_inliers):
        return None
    cv2 = _cv2()
    cv2.setRNGSeed(seed)
    src = query.xy[qi].astype(np.float32)
    dst = ref.xy[ri].astype(np.float32)
    threshold = _threshold(ref)
    fits: list[tuple[int, int, np.ndarray]] = []  # (score, inliers, model) of each sane fit
    m, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                                          maxIters=2000, confidence=0.995)
    if m is not None and mask is not None:
        fits.append((int(mask.sum()), int(mask.sum()), np.vstack([m, [0.0, 0.0, 1.0]])))
    fits = [f for f in fits if f[1] >= min_inliers and _sane(f[2], query)]
    if not fits or fits[0][1] + EXTRA_INLIERS < len(qi):  # else no homography could win (ties keep the similarity)
        h, mask = cv2.findHomography(src, dst, cv2.USAC_DEFAULT, threshold, maxIters=2000, confidence=0.995)
        if h is not None and mask is not None and int(mask.sum()) >= min_inliers and _sane(h, query):
            fits.append((int(mask.sum()) - EXTRA_INLIERS, int(mask.sum()), h))  # the handicap: see the module doc
    if not fits:
        return None
    _score, _inliers, h = max(fits, key=lambda f: f[0])  # the similarity on a tie (it comes first)
    box = _clip_box(_project(h, _corners(query.width, query.height)), ref.width, ref.height)
    back: Any = np.linalg.inv(h)
    query_box = _clip_box(_project(back, _corners(ref.width, ref.height)), query.width, query.height)
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    both = ((np.linalg.norm(_project(h, src.astype(np.float64)) - dst, axis=1) < threshold)
            & (np.linalg.norm(_project(back, dst.astype(np.float64)) - src, axis=1)
               < _threshold(query)))
    inliers = min(len(np.unique(qi[both])), len(np.unique(ri[both])))  # one-to-one, whatever the matches
    if inliers < min_inliers or spread(src[both], query_box) < MIN_SPREAD:
        return None
    return Verified(inliers, len(qi), h, box, query_box)


def spread(points: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """The area of the points' convex hull over the area of ``box`` (x0, y0, x1, y1): 0 for fewer than 3."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    if len(points) < 3 or area <= 0:
        return 0.0
    hull = _cv2().convexHull(np.ascontiguousarray(points, dtype=np.float32))
    return float(_cv2().contourArea(hull)) / area
