"""Real photographs for tests, from the files of skimage's data folder (shipped with the package, no download).

Test modules import this as ``skimage_photos``: pytest puts ``tests/`` on ``sys.path`` (rootdir-relative packages).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

# 24 distinct photographs: different enough that none is a near-duplicate of another
DATA_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
               "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "logo.png",
               "microaneurysms.png", "moon.png", "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg",
               "rocket.jpg", "text.png", "clock_motion.png", "chessboard_RGB.png")


def data_photo(name: str, side: int = 256) -> Image.Image:
    """A photograph of skimage's data folder (by file name), RGB, at most ``side`` pixels on a side."""
    import skimage

    image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    image.thumbnail((side, side))
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs: Any) -> bytes:
    """The image as file bytes (JPEG at quality 92 unless told otherwise)."""
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 92} | kwargs if fmt == "JPEG" else kwargs))
    return out.getvalue()
