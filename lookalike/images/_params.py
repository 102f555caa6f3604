"""The checked values that :func:`~lookalike.images.load_image` takes: :class:`ImageLimits` and :class:`Box`.

Also the argument checks they share with ``load_image``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lookalike.errors import InvalidParameterError
from lookalike.validation import check_int

_MAX_COORD = 2**31 - 1
_BOX_PATTERN = r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*"


def _check_int(owner: str, name: str, value: object, low: int = 1, high: int | None = None) -> int:
    return check_int(name, value, low, high, owner=owner)


@dataclass(frozen=True)
class ImageLimits:
    """Decompression-bomb guards: pixels (width * height, read from the header) and encoded bytes."""

    max_pixels: int = 64_000_000
    max_bytes: int = 100 * 2**20

    def __post_init__(self) -> None:
        _check_int("ImageLimits", "max_pixels", self.max_pixels)
        _check_int("ImageLimits", "max_bytes", self.max_bytes)


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class Box:
    """A region of an image in pixels: top-left corner ``(x, y)``, width ``w`` and height ``h``.

    A box may be empty (``w`` or ``h`` 0) as the result of :meth:`clip`; :func:`crop` refuses empty boxes.
    """

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            _check_int("Box", name, getattr(self, name), low=0, high=_MAX_COORD)

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"X,Y,W,H"``: non-negative integers, W and H positive, e.g. ``"10,20,200,150"``."""
        found = re.fullmatch(_BOX_PATTERN, text, re.ASCII) if isinstance(text, str) else None
        if found is None:
            raise InvalidParameterError(
                f"A box must be 'X,Y,W,H': four non-negative integers in pixels, e.g. '10,20,200,150'. "
                f"Got {_shorten(text)} instead.")
        if any(len(part) > 10 or int(part) > _MAX_COORD for part in found.groups()):
            raise InvalidParameterError(f"Box values must be at most {_MAX_COORD}. Got {_shorten(text)}.")
        x, y, w, h = (int(part) for part in found.groups())
        if w == 0 or h == 0:
            raise InvalidParameterError(f"A box needs a positive width and height. Got {_shorten(text)}.")
        return cls(x, y, w, h)

    @property
    def is_empty(self) -> bool:
        return self.w == 0 or self.h == 0

    def clip(self, width: int, height: int) -> Box:
        """The part of this box inside a ``width`` x ``height`` image; empty when they do not overlap."""
        x0, y0 = min(self.x, width), min(self.y, height)
        return Box(x0, y0, min(self.x + self.w, width) - x0, min(self.y + self.h, height) - y0)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
