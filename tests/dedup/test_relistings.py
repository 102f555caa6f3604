"""Calibration on a catalogue that already holds duplicates: its re-listings must not count as distractors."""

from __future__ import annotations

from pathlib import Path

import pytest
from skimage_photos import DATA_PHOTOS, data_photo, encode

from lookalike import Catalog

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def relisted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 distinct photographs, then re-listings of two of them (smaller and re-encoded; cropped by a few percent)."""
    path = tmp_path_factory.mktemp("relisted") / "cat"
    with Catalog(path, "efficientnet-lite0") as cat:
        for name in DATA_PHOTOS:
            cat.add(encode(data_photo(name)), id=name.split(".")[0])
        coffee = data_photo("coffee.png")
        smaller = coffee.resize((coffee.width * 7 // 10, coffee.height * 7 // 10))
        cat.add(encode(smaller, quality=50), id="coffee-relisted")
        horse = data_photo("horse.png")
        w, h = horse.size
        cat.add(encode(horse.crop((w // 20, h // 25, w - w // 25, h - h // 20)), quality=60), id="horse-relisted")
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
