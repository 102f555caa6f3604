"""Patch pairs from known warps of real photographs (scikit-image's sample photographs, shipped with the package),
and unlabelled training patches from other photographs.

Each test photograph (grey) is warped by a seeded homography H and edited; a point p of the original and H(p) of
the warped image show the same thing, exactly. Six kinds of warp, one per pair in turn (so each kind makes a sixth
of the set), each on top of a small jitter (rotation ±4°, scale ±5%, shift ±2 px: no two views of a point are
pixel-aligned):

- ``rotation``: ±(8-25)° about the image centre; ``scale``: ×0.71-0.87 or ×1.15-1.4; ``perspective``: each corner
  moved by up to 15% of the side;
- ``brightness``: gamma e^±0.5, gain 0.5-1.6, offset −50..+50 grey levels; ``blur``: Gaussian σ 1.5-3;
  ``jpeg``: quality 3-10.

Points are integer pixels of the original with a textured 32×32 neighbourhood (grey-level std >= 12) whose whole
64×64 patch lands inside the warped image. A matching pair is the original's patch at p and the warped image's
patch at H(p) (bilinear, axis-aligned in each image: the rotation, scale and perspective are in the content, as a
detector without orientation would see them). A non-matching pair is an original's patch and the warped patch of
another point of the same photograph at least 32 pixels away (the same photograph: harder than another one).

Test photographs: astronaut, brick, camera, chelsea, coffee, coins, rocket. Training photographs (disjoint, for the
unsupervised BinGAN model, :func:`training_patches`): clock_motion, grass, gravel, hubble_deep_field, ihc, moon,
page, retina, text, color.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError
from ..validation import check_int
from .pairs import PATCH, PatchPairs, extract, non_matching, textured

__all__ = ["KINDS", "TEST_PHOTOS", "TRAIN_PHOTOS", "training_patches", "warp_pairs"]

KINDS = ("rotation", "scale", "perspective", "brightness", "blur", "jpeg")
TEST_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "rocket.jpg")
TRAIN_PHOTOS = ("clock_motion.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
                "page.png", "retina.jpg", "text.png", "color.png")
WARPS_PER_KIND = 4  # warped copies of each photograph per kind
JITTER_DEG, JITTER_SCALE = 4.0, 0.05  # every warp
ROTATION_DEG = (8.0, 25.0)
LOG_SCALE = (np.log(1.15), np.log(1.4))  # x0.71-0.87 or x1.15-1.4
PERSPECTIVE = 0.15  # of the side, per corner
BLUR_SIGMA = (1.5, 3.0)
JPEG_QUALITY = (3, 11)


def photo(name: str) -> np.ndarray:
    """A photograph of scikit-image's data folder as a grey uint8 array."""
    import cv2
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise InvalidParameterError(f"scikit-image's sample photograph {path} is missing")
    return np.asarray(grey)


def _homography(kind: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    cx, cy = (w - 1) / 2, (h - 1) / 2
    angle = rng.uniform(-JITTER_DEG, JITTER_DEG)
    scale = rng.uniform(1 - JITTER_SCALE, 1 + JITTER_SCALE)
    if kind == "rotation":
        angle += rng.choice([-1, 1]) * rng.uniform(*ROTATION_DEG)
    elif kind == "scale":
        scale *= float(np.exp(rng.choice([-1, 1]) * rng.uniform(*LOG_SCALE)))
    a = np.deg2rad(angle)
    rot = np.array([[scale * np.cos(a), -scale * np.sin(a), 0], [scale * np.sin(a), scale * np.cos(a), 0], [0, 0, 1]])
    shift = np.array([[1, 0, cx + rng.uniform(-2, 2)], [0, 1, cy + rng.uniform(-2, 2)], [0, 0, 1]])
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    H = shift @ rot @ to_centre
    if kind == "perspective":
        import cv2

        src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
        dst = (src + rng.uniform(-PERSPECTIVE, PERSPECTIVE, (4, 2)) * np.array([w, h])).astype(np.float32)
        H = cv2.getPerspectiveTransform(src, dst) @ H
    return H / H[2, 2]


def _edit(kind: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    if kind == "brightness":
        gamma = float(np.exp(rng.uniform(-0.5, 0.5)))
        out = 255 * (image.astype(np.float32) / 255) ** gamma * rng.uniform(0.5, 1.6) + rng.uniform(-50, 50)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if kind == "blur":
        return np.asarray(cv2.GaussianBlur(image, (0, 0), rng.uniform(*BLUR_SIGMA)))
    if kind == "jpeg":
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*JPEG_QUALITY))])
        return np.asarray(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    return image


def _apply(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """H applied to (n, 2) points, element-wise (a BLAS product here would start threads for a 3×3 matrix)."""
    x, y = pts[:, 0], pts[:, 1]
    w = H[2, 0] * x + H[2, 1] * y + H[2, 2]
    return np.stack([(H[0, 0] * x + H[0, 1] * y + H[0, 2]) / w, (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / w], axis=1)


def _inside(H: np.ndarray, pts: np.ndarray, w: int, h: int) -> np.ndarray:
    """Points whose warped 64×64 patch (its four corners mapped back into the original) lies inside the original."""
    r = PATCH / 2
    q = _apply(H, pts)
    ok = (q[:, 0] >= r) & (q[:, 0] <= w - r - 1) & (q[:, 1] >= r) & (q[:, 1] <= h - r - 1)
    Hi = np.linalg.inv(H)
    for dx, dy in ((-r, -r), (r, -r), (r, r), (-r, r)):
        back = _apply(Hi, q + [dx, dy])
        ok &= (back[:, 0] >= 0) & (back[:, 0] <= w - 1) & (back[:, 1] >= 0) & (back[:, 1] <= h - 1)
    return ok


def _textured_points(grey: np.ndarray) -> np.ndarray:
    """(m, 2) float (x, y) of the textured pixels whose 64×64 patch lies inside ``grey``."""
    h, w = grey.shape
    ys, xs = np.nonzero(textured(grey))
    r = PATCH // 2
    keep = (xs >= r) & (xs <= w - r) & (ys >= r) & (ys <= h - r)
    return np.c_[xs[keep], ys[keep]].astype(np.float64)


def warp_pairs(n_match: int = 10_000, n_non_match: int = 10_000, seed: int = 0,
               photos: tuple[str, ...] = TEST_PHOTOS) -> PatchPairs:
    """The ``warps`` set (see the module docstring): balanced, seeded, each kind of warp in turn."""
    import cv2

    check_int("n_match", n_match, 1)
    check_int("n_non_match", n_non_match, 1)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    greys = [photo(name) for name in photos]
    textured_points = [_textured_points(g) for g in greys]
    # kinds turn fastest: any n_match splits evenly between them (to one pair)
    jobs = [(g, k) for _ in range(WARPS_PER_KIND) for g in range(len(greys)) for k in range(len(KINDS))]
    per_job = np.full(len(jobs), n_match // len(jobs))
    per_job[: n_match % len(jobs)] += 1
    lefts, rights, points, kinds = [], [], [], []
    for (g, k), n in zip(jobs, per_job, strict=True):
        if n == 0:
            continue
        grey = greys[g]
        h, w = grey.shape
        H = _homography(KINDS[k], w, h, rng)
        warped = _edit(KINDS[k], cv2.warpPerspective(grey, H, (w, h), flags=cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REFLECT), rng)
        cand = textured_points[g]
        if len(cand) > 50 * n:  # a seeded sample is plenty to draw n from
            cand = cand[np.sort(rng.choice(len(cand), 50 * int(n), replace=False))]
        cand = cand[_inside(H, cand, w, h)]
        if len(cand) < n:
            raise InvalidParameterError(f"warps: {photos[g]} has only {len(cand)} usable points for {n} pairs")
        p = cand[np.sort(rng.choice(len(cand), int(n), replace=False))]
        # the integer patch at p spans p - 32 .. p + 31: its centre is p - 0.5; H maps that centre
        lefts.append(extract(grey, p - 0.5))
        rights.append(extract(warped, _apply(H, p - 0.5)))
        points.append(np.c_[np.full(len(p), g), p])
        kinds += [KINDS[k]] * int(n)
    left, right, pts = np.concatenate(lefts), np.concatenate(rights), np.concatenate(points)
    ni, nj = non_matching(pts, n_non_match, rng, PATCH // 2, same_group=True)
    idx = np.arange(n_match, dtype=np.int64)
    kind = np.array(kinds)
    return PatchPairs("warps", np.concatenate([left, right]), first=np.concatenate([idx, ni]),
                      second=np.concatenate([n_match + idx, n_match + nj]),
                      is_match=np.r_[np.ones(n_match, bool), np.zeros(n_non_match, bool)],
                      kind=np.concatenate([kind, kind[nj]]))


def training_patches(n: int = 20_000, seed: int = 0, photos: tuple[str, ...] = TRAIN_PHOTOS) -> np.ndarray:
    """(n, 64, 64) uint8 unlabelled patches for the BinGAN patch model: textured points of the training
    photographs (none of them in the test sets), at full and half scale, a seeded random subset of them drawn
    evenly from every photograph and scale."""
    import cv2

    check_int("n", n, 1)
    rng = np.random.default_rng(seed)
    sources = []
    for name in photos:
        grey = photo(name)
        sources += [grey, cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)]
    per = np.full(len(sources), n // len(sources))
    per[: n % len(sources)] += 1
    out = []
    for grey, k in zip(sources, per, strict=True):
        cand = _textured_points(grey)
        if len(cand) == 0:
            continue
        out.append(extract(grey, cand[rng.choice(len(cand), int(k), replace=len(cand) < k)] - 0.5))
    patches = np.concatenate(out)
    return patches[rng.permutation(len(patches))[:n]]
