"""Patch-pair sets: the container every source (Brown, the stereo pair, the warps) returns, and what they share.

A set holds its distinct 64×64 grey patches once and the pairs as two index arrays into them, as the Brown files
do (a patch takes part in several pairs): 100k Brown pairs need at most 200k patches, not 200k pairs × 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["PATCH", "SMALL", "PatchPairs", "non_matching", "resize_patches", "textured"]

PATCH = 64  # the Brown patch side
SMALL = 32  # the side BinGAN (and the paper's table) works at


@dataclass(frozen=True)
class PatchPairs:
    """Matching and non-matching patch pairs.

    Attributes:
        name: the set's name in tables (``motorcycle``, ``warps``, ``brown:liberty``...).
        patches: (m, 64, 64) uint8 grey patches.
        first, second: (n,) int64 indices into ``patches``: pair i is (patches[first[i]], patches[second[i]]).
        is_match: (n,) bool, whether pair i shows the same scene point.
        kind: (n,) str, what made pair i (``stereo``, ``rotation``, ``jpeg``, ``brown``...), for breakdowns.
    """

    name: str
    patches: np.ndarray
    first: np.ndarray
    second: np.ndarray
    is_match: np.ndarray
    kind: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))

    def __post_init__(self) -> None:
        n = len(self.first)
        if self.patches.ndim != 3 or self.patches.shape[1:] != (PATCH, PATCH) or self.patches.dtype != np.uint8:
            raise InvalidParameterError(f"{self.name}: patches must be (m, 64, 64) uint8. Got "
                                        f"{self.patches.shape} {self.patches.dtype}.")
        if len(self.second) != n or len(self.is_match) != n or (len(self.kind) not in (0, n)):
            raise InvalidParameterError(f"{self.name}: first, second, is_match and kind need one entry per pair")
        for idx in (self.first, self.second):
            if n and (idx.min() < 0 or idx.max() >= len(self.patches)):
                raise InvalidParameterError(f"{self.name}: a pair index lies outside the {len(self.patches)} "
                                            "patches")
        if len(self.kind) == 0:
            object.__setattr__(self, "kind", np.full(n, self.name.split(":")[0]))

    def __len__(self) -> int:
        return len(self.first)

    @property
    def n_match(self) -> int:
        return int(self.is_match.sum())

    def small(self) -> np.ndarray:
        """The patches at 32×32 (area average, as the paper's 64 → 32 downsampling)."""
        return resize_patches(self.patches, SMALL)


def resize_patches(patches: np.ndarray, side: int) -> np.ndarray:
    """(n, h, w) uint8 → (n, side, side) uint8 by OpenCV's area interpolation (a 2×2 mean for 64 → 32)."""
    import cv2

    if patches.shape[1:] == (side, side):
        return patches.copy()
    out = np.empty((len(patches), side, side), dtype=np.uint8)
    for i, p in enumerate(patches):
        out[i] = cv2.resize(p, (side, side), interpolation=cv2.INTER_AREA)
    return out


def textured(grey: np.ndarray, window: int = 32, min_std: float = 12.0) -> np.ndarray:
    """(h, w) bool: pixels whose ``window``×``window`` neighbourhood has a grey-level standard deviation of at
    least ``min_std`` (a flat sky or wall gives patches every descriptor confuses; Brown's come from interest
    points, which are never flat)."""
    import cv2

    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(g * g, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    return np.sqrt(np.maximum(sq - mean * mean, 0)) >= min_std


def extract(image: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """64×64 patches of a grey uint8 image centred at sub-pixel (x, y) ``centres`` (pixel centres at integers;
    a patch centred at (x, y) spans x − 31.5 .. x + 31.5), bilinear."""
    import cv2

    out = np.empty((len(centres), PATCH, PATCH), dtype=np.uint8)
    for i, (x, y) in enumerate(centres):
        out[i] = cv2.getRectSubPix(image, (PATCH, PATCH), (float(x), float(y)))
    return out


def non_matching(points: np.ndarray, n: int, rng: np.random.Generator, min_distance: float, *,
                 same_group: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded index pairs (i, j) into ``points`` ((m, 3) rows of group, x, y) that lie in different groups
    (images) or at least ``min_distance`` pixels apart in x or y, so the two patches show different things;
    ``same_group``: j always from i's group (harder pairs: the same photograph)."""
    m = len(points)
    if m < 2:
        raise InvalidParameterError("non-matching pairs need at least two points")
    i = rng.choice(m, n, replace=n > m)
    groups = points[:, 0]
    order = np.argsort(groups, kind="stable")
    lo = np.searchsorted(groups[order], groups[i], side="left")
    hi = np.searchsorted(groups[order], groups[i], side="right")

    def draw(rows: np.ndarray) -> np.ndarray:
        if not same_group:
            return rng.integers(0, m, len(rows))
        return order[lo[rows] + (rng.random(len(rows)) * (hi[rows] - lo[rows])).astype(np.int64)]

    j = draw(np.arange(n))
    for _ in range(100):
        bad = _too_close(points[i], points[j], min_distance)
        if not bad.any():
            return i.astype(np.int64), j.astype(np.int64)
        j[bad] = draw(np.flatnonzero(bad))
    raise InvalidParameterError(f"could not draw {n} non-matching pairs {min_distance} pixels apart")


def _too_close(a: np.ndarray, b: np.ndarray, min_distance: float) -> np.ndarray:
    same_group = a[:, 0] == b[:, 0]
    return same_group & (np.abs(a[:, 1:] - b[:, 1:]).max(axis=1) < min_distance)
