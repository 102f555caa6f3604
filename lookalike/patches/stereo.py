"""Patch pairs from a rectified stereo pair with ground-truth disparity: ``skimage.data.stereo_motorcycle()``.

The Middlebury 2014 *Motorcycle* pair (500×741, shipped with scikit-image: nothing is downloaded). A point (x, y)
of the left image shows the same scene point as (x − d(x, y), y) of the right one, d the ground-truth disparity
(7-60 pixels here; infinite where unknown or occluded).

- **Points**: integer pixels of the left image with a finite disparity, whose 64×64 patch lies inside both
  images, and whose 32×32 neighbourhood is textured (grey-level standard deviation >= 12). Drawn without
  replacement with the seed.
- **Matching pair**: the left patch at (x, y) and the right patch at (x − d, y), sampled bilinearly (sub-pixel
  disparity). The patches differ by the change of viewpoint (a 64-pixel baseline at this scale: occlusions and
  depth edges included, as in the Brown set) and by the two cameras' exposure.
- **Non-matching pair**: the left patch of one point and the right patch of another point at least 32 pixels
  away in x or y (half a patch).

Balanced and seeded: ``n_match`` matching and ``n_non_match`` non-matching pairs; the same seed gives the same set.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError
from ..validation import check_int
from .pairs import PATCH, PatchPairs, extract, non_matching, textured

__all__ = ["motorcycle_pairs", "stereo_pairs"]

MIN_APART = PATCH // 2


def motorcycle_pairs(n_match: int = 10_000, n_non_match: int = 10_000, seed: int = 0) -> PatchPairs:
    """The ``motorcycle`` set: pairs from ``skimage.data.stereo_motorcycle()`` (see the module docstring)."""
    import cv2
    from skimage import data

    left, right, disparity = data.stereo_motorcycle()
    grey_l, grey_r = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)
    return stereo_pairs(grey_l, grey_r, disparity, n_match, n_non_match, seed, name="motorcycle")


def stereo_pairs(left: np.ndarray, right: np.ndarray, disparity: np.ndarray, n_match: int, n_non_match: int,
                 seed: int, *, name: str = "stereo") -> PatchPairs:
    """Pairs from any rectified grey stereo pair with a left-view disparity map (inf or NaN: unknown)."""
    check_int("n_match", n_match, 1)
    check_int("n_non_match", n_non_match, 1)
    check_int("seed", seed, 0)
    if left.shape != right.shape or left.shape != disparity.shape or left.ndim != 2:
        raise InvalidParameterError(f"{name}: the two grey images and the disparity map need one (h, w) shape")
    h, w = left.shape
    r = PATCH / 2
    ys, xs = np.mgrid[0:h, 0:w]
    with np.errstate(invalid="ignore"):
        xr = xs - disparity
        ok = (np.isfinite(disparity) & (disparity > 0) & (xs >= r) & (xs <= w - r - 1) & (ys >= r)
              & (ys <= h - r - 1) & (xr >= r) & (xr <= w - r - 1))
    ok &= textured(left)
    cand_y, cand_x = np.nonzero(ok)
    if len(cand_x) < n_match:
        raise InvalidParameterError(f"{name}: only {len(cand_x)} usable points for {n_match} matching pairs")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(cand_x), n_match, replace=False))
    x, y = cand_x[pick].astype(np.float64), cand_y[pick].astype(np.float64)
    d = disparity[cand_y[pick], cand_x[pick]].astype(np.float64)
    # a 64-pixel patch "centred" at integer (x, y) starts at x - 32: its centre is x - 0.5 in OpenCV's convention
    lefts = extract(left, np.c_[x - 0.5, y - 0.5])
    rights = extract(right, np.c_[x - d - 0.5, y - 0.5])
    points = np.c_[np.zeros(n_match), x, y]
    ni, nj = non_matching(points, n_non_match, rng, MIN_APART)
    idx = np.arange(n_match, dtype=np.int64)
    return PatchPairs(
        name, np.concatenate([lefts, rights]),
        first=np.concatenate([idx, ni]), second=np.concatenate([n_match + idx, n_match + nj]),
        is_match=np.r_[np.ones(n_match, bool), np.zeros(n_non_match, bool)],
        kind=np.full(n_match + n_non_match, "stereo"))
