"""Background removal inside a located box (issue 14, part 4): OpenCV's GrabCut initialised by the box.

Given a decoded RGB image and the product's box (the localiser's, or a true one), :func:`foreground` runs
``cv2.grabCut`` on the box plus a margin of context around it, with the box as GrabCut's rectangle (every pixel
outside it is background, every pixel inside it probably the object), and returns which pixels of the box GrabCut
keeps as the object; :func:`fill_background` paints the others with a fill colour; :func:`mask_background` does
both: the box crop with its background replaced. It is the crop stage's ``,mask`` (``--crop auto,mask``, through
:meth:`.Localiser.mask_crop`), with the defaults below.

The defaults (1 iteration, a margin of 0.3 of the box's longer side, the removed pixels painted their own median
colour) were chosen by ``benchmarks/localise.py`` on the validation composites (retrieval mAP@1000 of composite
queries: 0.548 without the mask, 0.574 with; black, white or grey fills did worse than no mask); on the held-out
test composites ``--crop auto`` + mask reached mAP@1000 0.573 against 0.524, P@10 0.625 against 0.558, for about
45 ms an image on 2 cores (BENCHMARKS.md, "Background removal inside the located box").

Degenerate input is handled, not guessed at: a box outside the image raises InvalidRegionError; a box with a side
shorter than :data:`MIN_SIDE` pixels, a box with no pixel of context around it (it covers the whole image, so
GrabCut has no background to learn from), or a segmentation that keeps no pixel, give ``None`` from
:func:`foreground` and the plain, unmasked crop from :func:`mask_background`. GrabCut seeds its GMMs from OpenCV's
RNG: each call sets ``cv2.setRNGSeed(seed)`` first, so the same input gives the same mask.

Example::

    from lookalike.images import Box
    cut = mask_background(image, Box(40, 30, 120, 150), iterations=3, margin=0.1, fill="black")
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from ..images import Box, crop
from ..patches.descriptors import opencv
from ..validation import check_choice, check_int, check_real

FILLS = ("black", "white", "grey", "background")  # background: the median colour of the pixels GrabCut removed
MIN_SIDE = 8  # pixels: a box with a shorter side is not segmented
MAX_SIDE = 320  # pixels: the region (box + margin) is shrunk to this longer side for GrabCut (its cost)
# chosen on the validation composites (benchmarks/localise.py; BENCHMARKS.md)
ITERATIONS, MARGIN, FILL = 1, 0.3, "background"
__all__ = ["FILL", "FILLS", "ITERATIONS", "MARGIN", "MIN_SIDE", "fill_background", "foreground", "mask_background"]


def foreground(image: Image.Image, box: Box, *, iterations: int = ITERATIONS, margin: float = MARGIN, seed: int = 0,
               source: str = "<image>") -> np.ndarray | None:
    """Which pixels of ``box`` (clipped to ``image``) GrabCut keeps as the object: a bool array (h, w) of the
    clipped box; None when the box is too small, has no context around it, or nothing is kept.

    ``margin``: the context given to GrabCut around the box, a share of the box's longer side on every side
    (at least one pixel; clipped to the image): GrabCut learns the background's colours there.
    ``iterations``: GrabCut's EM iterations. Raises InvalidRegionError when the box lies outside the image,
    InvalidParameterError for bad knobs."""
    check_int("iterations", iterations, 1, 20)
    check_real("margin", margin, 0, 2)
    check_int("seed", seed, 0)
    clipped = box.clip(image.width, image.height)
    crop(image, box, source)  # InvalidRegionError when empty
    if clipped.w < MIN_SIDE or clipped.h < MIN_SIDE:
        return None
    pad = max(1, round(margin * max(clipped.w, clipped.h)))
    x0, y0 = max(0, clipped.x - pad), max(0, clipped.y - pad)
    x1 = min(image.width, clipped.x + clipped.w + pad)
    y1 = min(image.height, clipped.y + clipped.h + pad)
    rx, ry = clipped.x - x0, clipped.y - y0
    if (rx, ry, clipped.w, clipped.h) == (0, 0, x1 - x0, y1 - y0):
        return None  # the box is the whole region: no background for GrabCut to learn from
    region = image.convert("RGB").crop((x0, y0, x1, y1))
    scale = min(1.0, MAX_SIDE / max(region.size))
    if scale < 1:
        region = region.resize((max(1, round(region.width * scale)), max(1, round(region.height * scale))),
                               Image.Resampling.BILINEAR)
    sx, sy = region.width / (x1 - x0), region.height / (y1 - y0)
    rect = (int(rx * sx), int(ry * sy), max(1, round(clipped.w * sx)), max(1, round(clipped.h * sy)))
    rect = (rect[0], rect[1], min(rect[2], region.width - rect[0]), min(rect[3], region.height - rect[1]))
    if rect == (0, 0, region.width, region.height):
        return None
    cv2 = opencv("background removal (GrabCut)")
    bgr = np.ascontiguousarray(np.asarray(region, dtype=np.uint8)[:, :, ::-1])
    mask = np.zeros(bgr.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    try:
        cv2.grabCut(bgr, mask, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # e.g. a flat region: no GMM to fit
        return None
    kept = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if scale < 1:
        kept = np.asarray(Image.fromarray(kept.astype(np.uint8) * 255).resize((x1 - x0, y1 - y0),
                                                                             Image.Resampling.NEAREST)) > 127
    kept = kept[ry:ry + clipped.h, rx:rx + clipped.w]
    return kept if kept.any() else None


def fill_background(cut: Image.Image, kept: np.ndarray | None, fill: str = FILL) -> Image.Image:
    """``cut`` (the box crop, RGB) with the pixels not in ``kept`` painted ``fill`` (one of :data:`FILLS`);
    ``cut`` itself when ``kept`` is None."""
    check_choice("fill", fill, FILLS)
    if kept is None:
        return cut
    pixels = np.asarray(cut.convert("RGB"), dtype=np.uint8)
    if kept.shape != pixels.shape[:2]:
        raise InvalidParameterError(f"the mask is {kept.shape[1]}x{kept.shape[0]} and the crop "
                                    f"{cut.width}x{cut.height}")
    removed = ~kept
    if not removed.any():
        return cut
    colour = {"black": np.zeros(3), "white": np.full(3, 255), "grey": np.full(3, 128)}.get(fill)
    if colour is None:
        colour = np.median(pixels[removed], axis=0)
    out = pixels.copy()
    out[removed] = np.round(colour).astype(np.uint8)
    return Image.fromarray(out)


def mask_background(image: Image.Image, box: Box, *, iterations: int = ITERATIONS, margin: float = MARGIN,
                    fill: str = FILL, seed: int = 0, source: str = "<image>") -> Image.Image:
    """``image`` cut to ``box`` with the background GrabCut finds replaced by ``fill`` (see :func:`foreground`;
    the plain crop when it gives None)."""
    check_choice("fill", fill, FILLS)
    kept = foreground(image, box, iterations=iterations, margin=margin, seed=seed, source=source)
    return fill_background(crop(image, box, source).convert("RGB"), kept, fill)
