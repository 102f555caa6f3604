"""Calibration on a catalogue that already holds duplicates: its re-listings must not count as distractors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from lookalike import Catalog

pytestmark = pytest.mark.slow

PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
          "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "logo.png",
          "microaneurysms.png", "moon.png", "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg",
          "rocket.jpg", "text.png", "clock_motion.png", "chessboard_RGB.png")


def _photo(name: str) -> Image.Image:
    import skimage

    image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    image.thumbnail((256, 256))
    return image


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="module")
def relisted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 distinct photographs, then re-listings of two of them (smaller and re-encoded; cropped by a few percent)."""
    path = tmp_path_factory.mktemp("relisted") / "cat"
    with Catalog(path, "efficientnet-lite0") as cat:
        for name in PHOTOS:
            cat.add(_jpeg(_photo(name), 92), id=name.split(".")[0])
        coffee = _photo("coffee.png")
        cat.add(_jpeg(coffee.resize((coffee.width * 7 // 10, coffee.height * 7 // 10)), 50), id="coffee-relisted")
        horse = _photo("horse.png")
        w, h = horse.size
        cat.add(_jpeg(horse.crop((w // 20, h // 25, w - w // 25, h - h // 20)), 60), id="horse-relisted")
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_existing_relistings_are_found_after_calibrating_with_them(relisted: Path, seed: int) -> None:
    with Catalog(relisted) as cat:
        cal = cat.calibrate_duplicates(sample=24, seed=seed)
        # the sampled originals' re-listings (and the re-listings' originals) were left out of the distractors
        assert any("left out" in note for note in cal.notes)
        assert cal.threshold < 8.0 and cal.recall >= 0.5
        groups = {frozenset(i.id for i in g.items) for g in cat.dedup().groups}
    assert groups == {frozenset({"coffee", "coffee-relisted"}), frozenset({"horse", "horse-relisted"})}
