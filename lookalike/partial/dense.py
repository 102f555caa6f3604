"""Dense verification: the query's own pixels found in a catalogue image by normalised cross-correlation.

Keypoint verification (:mod:`.verify`) needs corners: a crop of a clock face, a page margin or a plate's glaze
has a few dozen or none, and nothing verifies it, although the global search often ranks its source first
(BENCHMARKS.md, "Partial-image search"). For those queries :class:`~.retriever.PartialSearch` checks the global
search's first candidates here: is the query, at some scale, a region of the candidate?

1. *coarse*: the candidate in grey at ``COARSE_SIDE`` pixels on its long side, the query resized for each of
   ``SCALES`` (query pixels per candidate pixel, 0.5 to 2), OpenCV's ``TM_CCOEFF_NORMED`` (the Pearson correlation
   of the template and each window), windows flatter than ``MIN_STD`` grey levels left out (a flat window's
   correlation is meaningless: any flat template "matches" it);
2. *fine*: around the coarse peak, the same at up to ``FINE_SIDE`` pixels on the template's long side (the
   candidate at the matching resolution) and at the scale ±3%: a true crop correlates at 0.975 or more even after
   JPEG at quality 85, while unrelated pictures with smooth regions reach 0.95 at the coarse resolution;
3. accepted when the fine correlation is at least ``MIN_SCORE`` (0.97) and the correlation of the fine detail (what
   a Gaussian blur of ``DETAIL_SIGMA`` pixels removes) at least ``MIN_DETAIL`` (0.5): a smooth region of another
   picture (a sky) correlates at 0.97 too, but its detail does not. Both chosen on the validation crops of
   ``benchmarks/partial.py`` (plain, warped, and resized + JPEG crops): the most 10% crops at rank 1 among the
   settings with the fewest wrong results (0.95-0.99 x 0.1-0.5; a detail of 0.1 or 0.3 let one wrong image in).

It finds crops at the same orientation (resized, re-encoded); a rotated or perspective view is the keypoint
path's. Cost: about 10 ms per candidate on 2 cores (256-pixel images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["COARSE_SIDE", "DETAIL_SIGMA", "FINE_SIDE", "MIN_DETAIL", "MIN_SCORE", "MIN_STD", "SCALES", "DenseMatch",
           "dense_match", "grey"]

COARSE_SIDE = 256
FINE_SIDE = 256
SCALES = tuple(float(s) for s in np.geomspace(0.5, 2.0, 9))
MIN_SCORE = 0.97
MIN_DETAIL = 0.5
DETAIL_SIGMA = 1.5
MIN_STD = 2.0  # grey levels (0-255): flatter templates or windows are not compared
_FINE_STEPS = (0.97, 1.0, 1.03)


@dataclass(frozen=True)
class DenseMatch:
    """``score``: the fine correlation; ``box``: (x, y, w, h) of the matched region in the item array's pixels."""

    score: float
    box: tuple[float, float, float, float]
    detail: float = 0.0  # the high-pass correlation at the match (:func:`_detail`)


def grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """float32 grey levels (ITU-R 601 luma) of an RGB or grey image."""
    a = np.asarray(image.convert("L") if isinstance(image, Image.Image) else image, dtype=np.float32)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.ascontiguousarray(a)


def _resized(a: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(a, (max(1, w), max(1, h)), interpolation=cv2.INTER_AREA)


def _correlate(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``TM_CCOEFF_NORMED`` of ``template`` at every window of ``image``; -1 where the window is flat."""
    import cv2

    th, tw = template.shape
    r = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    mean = cv2.boxFilter(image, -1, (tw, th), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_REPLICATE)
    sq = cv2.boxFilter(image * image, -1, (tw, th), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_REPLICATE)
    var = (sq - mean * mean)[: r.shape[0], : r.shape[1]]
    r[~(var >= MIN_STD * MIN_STD) | ~np.isfinite(r)] = -1.0
    return r


def _peak(r: np.ndarray) -> tuple[float, int, int]:
    at = int(np.argmax(r))
    y, x = divmod(at, r.shape[1])
    return float(r[y, x]), x, y


def dense_match(query: np.ndarray, item: np.ndarray, *, min_score: float = MIN_SCORE,
                min_detail: float = MIN_DETAIL) -> DenseMatch | None:
    """Where grey ``query`` lies in grey ``item`` (both float32 (h, w) arrays), or None (see the module doc)."""
    qh, qw = query.shape
    ih, iw = item.shape
    if min(qh, qw) < 8 or float(query.std()) < MIN_STD:
        return None
    f = min(1.0, COARSE_SIDE / max(ih, iw))
    small = _resized(item, round(iw * f), round(ih * f))
    best: tuple[float, float, float, float] | None = None  # score, x, y (item pixels), scale
    for s in SCALES:
        tw, th = round(qw * f / s), round(qh * f / s)
        if min(tw, th) < 8 or tw > small.shape[1] or th > small.shape[0]:
            continue
        score, x, y = _peak(_correlate(small, _resized(query, tw, th)))
        if best is None or score > best[0]:
            best = (score, x / f, y / f, s)
    if best is None:
        return None
    _, x0, y0, s = best
    w, h = qw / s, qh / s  # the query's extent in item pixels at the coarse scale
    g = min(1.0, FINE_SIDE / max(w, h))
    image = _resized(item, round(iw * g), round(ih * g))
    found: DenseMatch | None = None
    for step in _FINE_STEPS:
        tw, th = round(w * step * g), round(h * step * g)
        margin = 4 + round(0.05 * max(tw, th)) + round(1 / f * g)  # the coarse peak's uncertainty, fine pixels
        xa, ya = max(0, round(x0 * g) - margin), max(0, round(y0 * g) - margin)
        window = image[ya : round(y0 * g) + th + margin, xa : round(x0 * g) + tw + margin]
        if min(tw, th) < 8 or window.shape[0] < th or window.shape[1] < tw:
            continue
        template = _resized(query, tw, th)
        score, x, y = _peak(_correlate(window, template))
        if found is None or score > found.score:
            found = DenseMatch(score, ((xa + x) / g, (ya + y) / g, tw / g, th / g),
                               _detail(window[y : y + th, x : x + tw], template))
    if found is None or found.score < min_score or found.detail < min_detail:
        return None
    return found


def _detail(window: np.ndarray, template: np.ndarray) -> float:
    """The correlation of the two after removing what a Gaussian blur (sigma 1.5 pixels) keeps: agreement of the
    fine detail, which a smooth region of another picture does not have."""
    import cv2

    a = window - cv2.GaussianBlur(window, (0, 0), DETAIL_SIGMA)
    b = template - cv2.GaussianBlur(template, (0, 0), DETAIL_SIGMA)
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm > 0 else 0.0
