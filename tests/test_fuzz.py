"""Fuzzing (issue 11), seeded and bounded: image decoding on random and mutated files, and the HTTP inputs.

Decoding may accept a mutated file (many bit flips leave a valid image) or refuse it, but only with an
:class:`~lookalike.errors.ImageError` (the HTTP inputs: tests/service/test_fuzz_http.py). Hypothesis runs
derandomized (a fixed seed per test): each run tries the same inputs, and a failure reproduces.
"""

from __future__ import annotations

import contextlib

from fuzzing import FUZZ, SEEDS, mutated
from hypothesis import given
from hypothesis import strategies as st

from lookalike.errors import ImageError
from lookalike.images import ImageLimits, load_image

LIMITS = ImageLimits(max_pixels=4_000_000, max_bytes=2**20)


def _decodes_or_refuses(data: bytes) -> None:
    try:
        loaded = load_image(data, limits=LIMITS)
    except ImageError:
        return
    assert loaded.image.mode == "RGB" and loaded.image.width >= 1 and loaded.image.height >= 1
    assert loaded.width * loaded.height <= LIMITS.max_pixels


@FUZZ
@given(mutated())
def test_mutated_images_decode_or_raise_an_image_error(data: bytes) -> None:
    _decodes_or_refuses(data)
    with contextlib.suppress(ImageError):  # the shrink-on-load path (libvips for PNG/WebP, the JPEG draft) too
        load_image(data, limits=LIMITS, draft=(8, 8))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_raise_an_image_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=1, max_size=16))
def test_a_magic_number_with_garbage_raises_an_image_error(name: str, tail: bytes) -> None:
    _decodes_or_refuses(SEEDS[name][:16] + tail)
