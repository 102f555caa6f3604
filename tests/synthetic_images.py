"""Small seeded synthetic images for tests (imported as ``synthetic_images``: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def colour_families(n: int, seed: int = 0) -> list[Image.Image]:
    """``n`` 16x16 images from 4 colour families, so learned codes have structure to find."""
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 256, (4, 4, 4, 3))
    out = []
    for i in range(n):
        noisy = np.clip(bases[i % 4] + rng.integers(-40, 41, (4, 4, 3)), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(noisy).resize((16, 16), Image.Resampling.BICUBIC))
    return out
