"""Pixels to upright RGB: EXIF orientation, every Pillow mode to RGB, and numpy arrays to uint8."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.errors import NotAnImageError, UnsupportedFormatError

_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
              7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def _orientation(img: Image.Image) -> int:
    value = img.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _scale_wide(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit or float pixels to uint8 by scaling, not clipping ("I" holds 16-bit data in Pillow)."""
    if mode != "F":
        return ((np.clip(pixels.astype(np.int64), 0, 65535) + 128) // 257).astype(np.uint8)
    values = pixels.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low, high = values[finite].min(), values[finite].max()
    if low >= 0 and high <= 1:  # the usual convention; anything else is stretched to the full range
        scaled = values * 255
    else:
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    return np.rint(np.where(finite, scaled, 0)).clip(0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode to RGB; alpha and palette/colour-key transparency are composited onto white."""
    if img.mode in _WIDE_MODES:
        return Image.fromarray(_scale_wide(np.asarray(img), img.mode)).convert("RGB")
    try:
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = (img.convert("LA") if img.mode == "La" else img).convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except ValueError as err:
        raise UnsupportedFormatError(name, f"unsupported pixel mode {img.mode} ({err})") from err


def _transposed(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` turned upright for an EXIF ``orientation`` (1: as it is)."""
    return img.transpose(_TRANSPOSE[orientation]) if orientation != 1 else img


def _upright_rgb(img: Image.Image, name: str) -> Image.Image:
    return _to_rgb(_transposed(img, _orientation(img)), name)


def _array_to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "u" and itemsize == 1:
        return array.astype(np.uint8, copy=False)
    if kind == "u" and itemsize == 2:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind != "f":
        raise NotAnImageError(name, f"unsupported dtype {array.dtype}; expected uint8, uint16, bool or float")
    if not np.isfinite(array).all():
        raise NotAnImageError(name, "the float array holds NaN or infinity")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise NotAnImageError(name, f"float values must lie in [0, 1]; got [{low:g}, {high:g}] "
                                    "(divide 0-255 data by 255)")
    return np.rint(array.astype(np.float64) * 255).astype(np.uint8)
