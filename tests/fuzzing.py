"""Hypothesis strategies and settings shared by the fuzz tests: mutated images of every accepted format."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = {}
    for fmt, extra in (("PNG", {}), ("JPEG", {"quality": 80}), ("JPEG", {"progressive": True}), ("WEBP", {}),
                       ("GIF", {}), ("TIFF", {}), ("BMP", {})):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **extra)
        out[f"{fmt}{len(out)}"] = buffer.getvalue()
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid image of one format with bytes flipped, cut, repeated or inserted."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "repeat", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        else:
            data[at : at + 16] = bytes(min(16, len(data) - at))
    return bytes(data)
