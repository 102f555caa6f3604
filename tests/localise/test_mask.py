"""GrabCut background removal inside a box (``lookalike.localise.mask``): it keeps a bright object and replaces a
textured background, deterministically; bad boxes and knobs get clear answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import InvalidParameterError, InvalidRegionError
from lookalike.images import Box
from lookalike.localise.mask import MIN_SIDE, fill_background, foreground, mask_background

pytest.importorskip("cv2", reason="GrabCut needs opencv-contrib-python-headless (the [patches] extra)")

BOX = Box(60, 50, 100, 120)


def _scene() -> tuple[Image.Image, np.ndarray]:
    """A light grey ellipse on a textured green-brown background (240x220), and the ellipse's mask."""
    rng = np.random.default_rng(7)
    h, w = 220, 240
    yy, xx = np.mgrid[:h, :w]
    texture = np.stack([90 + 40 * np.sin(xx / 5.0) + rng.normal(0, 12, (h, w)),
                        120 + 30 * np.cos(yy / 7.0) + rng.normal(0, 12, (h, w)),
                        40 + rng.normal(0, 10, (h, w))], axis=-1)
    cx, cy = BOX.x + BOX.w / 2, BOX.y + BOX.h / 2
    obj = ((xx - cx) / (BOX.w / 2 - 6)) ** 2 + ((yy - cy) / (BOX.h / 2 - 6)) ** 2 <= 1
    pixels = np.where(obj[..., None], 215 + rng.normal(0, 6, (h, w, 1)), texture)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), obj


def test_grabcut_keeps_the_object_and_replaces_the_background() -> None:
    image, obj = _scene()
    kept = foreground(image, BOX, iterations=3, margin=0.1)
    assert kept is not None and kept.shape == (BOX.h, BOX.w)
    inside = obj[BOX.y:BOX.y + BOX.h, BOX.x:BOX.x + BOX.w]
    assert kept[inside].mean() > 0.95  # the object's pixels are kept
    assert (~kept[~inside]).mean() > 0.9  # the background's pixels in the box are removed
    out = np.asarray(mask_background(image, BOX, iterations=3, margin=0.1, fill="black"))
    assert out.shape == (BOX.h, BOX.w, 3)
    assert (out[~kept] == 0).all() and (out[kept] == np.asarray(image)[BOX.y:BOX.y + BOX.h,
                                                                        BOX.x:BOX.x + BOX.w][kept]).all()


def test_grabcut_is_deterministic_and_seeded() -> None:
    image, _ = _scene()
    a = foreground(image, BOX, iterations=2, margin=0.2, seed=3)
    b = foreground(image, BOX, iterations=2, margin=0.2, seed=3)
    assert a is not None and b is not None and (a == b).all()


def test_fills() -> None:
    cut = Image.fromarray(np.full((4, 4, 3), 200, np.uint8))
    kept = np.zeros((4, 4), bool)
    kept[1:3, 1:3] = True
    got = {fill: np.asarray(fill_background(cut, kept, fill)) for fill in ("black", "white", "grey", "background")}
    assert (got["black"][0, 0] == 0).all() and (got["white"][0, 0] == 255).all()
    assert (got["grey"][0, 0] == 128).all() and (got["background"][0, 0] == 200).all()
    assert all((g[1, 1] == 200).all() for g in got.values())
    assert fill_background(cut, None, "white") is cut  # no mask: the crop unchanged
    with pytest.raises(InvalidParameterError, match="fill"):
        fill_background(cut, kept, "pink")
    with pytest.raises(InvalidParameterError, match="mask is 3x3"):
        fill_background(cut, np.ones((3, 3), bool))


def test_degenerate_boxes_give_the_plain_crop() -> None:
    image, _ = _scene()
    tiny = Box(10, 10, MIN_SIDE - 1, 40)
    assert foreground(image, tiny) is None
    assert np.array_equal(np.asarray(mask_background(image, tiny)), np.asarray(image)[10:50, 10:17])
    whole = Box(0, 0, image.width, image.height)  # no context around it: nothing to learn the background from
    assert foreground(image, whole) is None
    assert np.array_equal(np.asarray(mask_background(image, whole)), np.asarray(image))
    flat = Image.new("RGB", (64, 64), (30, 30, 30))  # nothing to separate: the crop, whole or masked, not a crash
    out = mask_background(flat, Box(16, 16, 32, 32))
    assert out.size == (32, 32)
    partly = Box(200, 180, 100, 100)  # past the image's edge: clipped, as crop() does
    kept = foreground(image, partly)
    assert kept is None or kept.shape == (40, 40)
    assert mask_background(image, partly).size == (40, 40)


def test_bad_boxes_and_knobs_are_refused() -> None:
    image, _ = _scene()
    with pytest.raises(InvalidRegionError, match="outside"):
        foreground(image, Box(500, 10, 20, 20))
    with pytest.raises(InvalidRegionError, match="outside"):
        mask_background(image, Box(10, 400, 20, 20))
    for knobs, name in (({"iterations": 0}, "iterations"), ({"iterations": 1.5}, "iterations"),
                        ({"margin": -0.1}, "margin"), ({"seed": -1}, "seed")):
        with pytest.raises(InvalidParameterError, match=name):
            foreground(image, BOX, **knobs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="fill"):
        mask_background(image, BOX, fill="transparent")
