"""Shrink-on-load for the formats Pillow can only decode at full size: WebP through libwebp's scaled decoding and
PNG as a stream into its reduced size, both by libvips (``pyvips`` with the ``pyvips-binary`` wheel). Neither image
is then held at full size: a 4096x4096 WebP for a 224-pixel encoder decodes at 1/8 scale.

Measured on these 2 cores (BENCHMARKS.md, "Decoding large photos"): JPEG stays with Pillow's ``draft`` (libjpeg's
DCT scaling, faster than libvips' own path to the same library), WebP and PNG go through here. Without libvips
(it failed to load) everything decodes through Pillow as before.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

try:  # pragma: no cover - import guard
    import pyvips
except (ImportError, OSError) as _err:  # the wheel missing, or libvips failing to load
    pyvips = None
    logging.getLogger("lookalike.images").info("libvips unavailable (%s): large PNG/WebP decode at full size", _err)

VIPS_FORMATS = frozenset({"PNG", "WEBP"})
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def reduction(size: tuple[int, int], want: tuple[int, int]) -> int:
    """The largest of 8, 4, 2 that keeps the image's short and long sides at least ``want``'s (1: none), as JPEG's
    draft does (whichever way EXIF turns the image)."""
    short, long = sorted(size)
    least, most = sorted(want)
    factor = 8
    while factor > 1 and (short // factor < least or long // factor < most):
        factor //= 2
    return factor


def reduced(data: bytes, size: tuple[int, int], want: tuple[int, int]) -> tuple[Image.Image, int] | None:
    """The image of ``data`` (``size`` as stored) shrunk by :func:`reduction` while it is decoded and turned
    upright by its EXIF orientation, in the Pillow mode of its bands (L, LA, RGB, RGBA; 16-bit scaled to 8), with
    that orientation (1-8); None where no reduction applies, libvips is missing, or it cannot decode the data
    (Pillow then decodes it, or says why not). The orientation comes from libvips: Pillow finds a PNG's only by
    decoding the whole image."""
    factor = reduction(size, want)
    if pyvips is None or factor == 1:
        return None
    try:
        head = pyvips.Image.new_from_buffer(data, "", fail_on="warning")
        orientation = int(head.get("orientation")) if head.get_typeof("orientation") else 1
        turned = orientation in (5, 6, 7, 8)
        width, height = -(-size[0] // factor), -(-size[1] // factor)
        if turned:
            width, height = height, width
        image = pyvips.Image.thumbnail_buffer(data, width, height=height, size="down",  # autorotated
                                              option_string="fail_on=warning")  # truncated: an error
        pixels = image.numpy()
    except pyvips.Error:
        return None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if pixels.dtype != np.uint8 or pixels.shape[2] not in _MODES:
        return None  # an unusual pixel format: left to Pillow
    image = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels))
    return (image, orientation if 1 <= orientation <= 8 else 1) if image.mode == _MODES[pixels.shape[2]] else None
