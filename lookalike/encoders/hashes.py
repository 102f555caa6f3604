"""``phash`` and ``dhash``: 64-bit perceptual hashes from the maintained ``imagehash`` library.

Both are binary encoders: each image becomes 8 bytes (the 8×8 hash bits, row-major, packed with
``np.packbits``), compared by Hamming distance. They find re-encoded, resized and lightly edited copies; they are
not semantic.
"""

from __future__ import annotations

from collections.abc import Callable

import imagehash
import numpy as np
from PIL import Image

from .base import Encoder


class _ImageHashEncoder(Encoder):
    kind = "binary"
    dim = 64
    batch_size = 256
    _hash: Callable[..., imagehash.ImageHash]

    def _prepare(self, image: Image.Image) -> np.ndarray:
        bits = np.asarray(type(self)._hash(image, hash_size=8).hash, dtype=bool).reshape(-1)
        return np.packbits(bits)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return batch


class PHashEncoder(_ImageHashEncoder):
    """DCT perceptual hash (``imagehash.phash``), 64 bits."""

    name = "phash"
    _hash = staticmethod(imagehash.phash)


class DHashEncoder(_ImageHashEncoder):
    """Difference (gradient) hash (``imagehash.dhash``), 64 bits."""

    name = "dhash"
    _hash = staticmethod(imagehash.dhash)
