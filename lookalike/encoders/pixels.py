"""``pixels``: the raw-pixel baseline, a tiny float encoder for tests and evaluation."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import Encoder
from .options import choice_option, int_option


class PixelsEncoder(Encoder):
    """Resize to ``size`` × ``size`` (grey or RGB), flatten, scale to [0, 1] and L2-normalise.

    ``pixels:size=28`` on Fashion-MNIST is the "float cosine on raw pixels" baseline of the hashing papers
    (784 floats = 3,136 bytes per image).

    Args:
        size: side of the square the image is resized to (4–256, default 32).
        mode: ``"grey"`` (default) or ``"rgb"``.
    """

    name = "pixels"
    kind = "float"
    batch_size = 1024

    def __init__(self, size: int | str = 32, mode: str = "grey") -> None:
        self.size = int_option("size", size, 4, 256, owner=self.name)
        self.mode = choice_option("mode", mode, ("grey", "rgb"), owner=self.name)
        self.input_size = (self.size, self.size)
        self.dim = self.size * self.size * (1 if self.mode == "grey" else 3)

    def options(self) -> dict[str, str]:
        opts = {}
        if self.size != 32:
            opts["size"] = str(self.size)
        if self.mode != "grey":
            opts["mode"] = self.mode
        return opts

    def _prepare(self, image: Image.Image) -> np.ndarray:
        img = image.convert("L") if self.mode == "grey" else image
        img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.float32).reshape(-1) / 255.0

    def _run(self, batch: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(batch, axis=1, keepdims=True)
        return batch / np.maximum(norms, 1e-12)
