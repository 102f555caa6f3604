"""Edited copies of an image: the changes a re-listed product photo goes through.

Each edit kind takes a strength; :data:`STRENGTHS` lists the strengths the benchmark and the calibration use.
Every edit is deterministic given its ``numpy`` generator, so a seeded run is reproducible.

========== ================================================================================================
kind       strength
========== ================================================================================================
jpeg       JPEG quality (lower is stronger)
resize     scale factor of both sides
crop       fraction of the width and of the height removed (split at random between the two sides)
pad        border added on each side, as a fraction of the longer side (white, black or a random colour)
flip       1: a horizontal mirror
rotate     degrees, either direction, the corners filled with white
brightness brightness and contrast factor (> 1 brighter and harsher, the inverse darker and flatter)
text       height of a caption drawn across the image, as a fraction of its height
========== ================================================================================================
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from ..errors import InvalidParameterError

__all__ = ["EDIT_KINDS", "STRENGTHS", "apply_edit", "random_edit"]

STRENGTHS: dict[str, tuple[float, ...]] = {
    "jpeg": (75, 40, 15),
    "resize": (0.75, 0.5, 0.3),
    "crop": (0.05, 0.1, 0.2, 0.3),
    "pad": (0.05, 0.15, 0.3),
    "flip": (1,),
    "rotate": (2, 5, 10),
    "brightness": (1.2, 1.45, 1.8),
    "text": (0.05, 0.1, 0.2),
}
EDIT_KINDS = tuple(STRENGTHS)
_WORDS = ("SALE", "50% OFF", "sold", "© shop", "NEW", "www.example.com", "free shipping", "like new")


def apply_edit(image: Image.Image, kind: str, strength: float, rng: np.random.Generator) -> Image.Image:
    """``image`` (any mode) edited by ``kind`` at ``strength``, as a new RGB image.

    Raises:
        InvalidParameterError: an unknown kind.
    """
    func = _EDITS.get(kind)
    if func is None:
        raise InvalidParameterError(f"unknown edit {kind!r}; choose from {', '.join(EDIT_KINDS)}")
    return func(image.convert("RGB"), float(strength), rng)


def random_edit(image: Image.Image, rng: np.random.Generator, kinds: tuple[str, ...] = EDIT_KINDS
                ) -> tuple[Image.Image, str, float]:
    """One edit of a kind and strength drawn from ``kinds`` and :data:`STRENGTHS`; returns (image, kind, strength)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    options = STRENGTHS[kind]
    strength = options[int(rng.integers(len(options)))]
    return apply_edit(image, kind, strength, rng), kind, strength


def _jpeg(image: Image.Image, quality: float, rng: np.random.Generator) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _resize(image: Image.Image, scale: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    return image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)


def _crop(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    cut_w, cut_h = round(w * fraction), round(h * fraction)
    left, top = int(rng.integers(cut_w + 1)), int(rng.integers(cut_h + 1))
    return image.crop((left, top, left + max(1, w - cut_w), top + max(1, h - cut_h)))


def _pad(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    border = max(1, round(max(image.size) * fraction))
    choice = int(rng.integers(3))
    colour = (255, 255, 255) if choice == 0 else (0, 0, 0) if choice == 1 else tuple(rng.integers(256, size=3).tolist())
    return ImageOps.expand(image, border=border, fill=colour)


def _flip(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(image)


def _rotate(image: Image.Image, degrees: float, rng: np.random.Generator) -> Image.Image:
    sign = 1 if rng.random() < 0.5 else -1
    return image.rotate(sign * degrees, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))


def _brightness(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    factor = factor if rng.random() < 0.5 else 1.0 / factor
    return ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(factor)).enhance(factor)


def _text(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    out = image.copy()
    w, h = out.size
    size = max(6, round(h * fraction))
    font = ImageFont.load_default(size=size)
    word = _WORDS[int(rng.integers(len(_WORDS)))]
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    x = int(rng.integers(max(1, w - round(right - left))))
    y = int(rng.integers(max(1, h - round(bottom - top))))
    fill = (255, 255, 255) if rng.random() < 0.5 else (220, 20, 20)
    draw.text((x - left, y - top), word, font=font, fill=fill, stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    return out


_EDITS: dict[str, Callable[[Image.Image, float, np.random.Generator], Image.Image]] = {
    "jpeg": _jpeg, "resize": _resize, "crop": _crop, "pad": _pad, "flip": _flip, "rotate": _rotate,
    "brightness": _brightness, "text": _text,
}
