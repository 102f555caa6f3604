"""Duplicate detection through the catalogue and the CLI: calibration, dedup groups, the check on add, migration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage_photos import DATA_PHOTOS, data_photo

from lookalike import Catalog
from lookalike.catalog import CheckedItem, Item
from lookalike.cli import main
from lookalike.dedup import DuplicatePair
from lookalike.dedup.edits import apply_edit
from lookalike.dedup.matching import THUMB_FEATURE
from lookalike.errors import CalibrationRequiredError, CatalogError, DuplicateImageError, InvalidParameterError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 Fashion-MNIST items and 4 photographs, indexed and calibrated."""
    import skimage

    from lookalike.datasets import load_fashion_mnist

    root = tmp_path_factory.mktemp("shop")
    images = root / "images"
    images.mkdir()
    for i, pixels in enumerate(load_fashion_mnist("test").images[:40]):
        Image.fromarray(pixels).resize((112, 112)).save(images / f"f{i:02d}.png")
    data = Path(skimage.__file__).parent / "data"
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        Image.open(data / name).convert("RGB").save(images / f"{name.split('.')[0]}.png")
    with Catalog(root / "cat") as cat:
        cat.index_folder(images)
        cal = cat.calibrate_duplicates(sample=40, seed=0)
        assert cal.sample == 40 and 0 <= cal.recall <= 1 and cal.target_precision == 0.99
    return root


def test_edited_copy_is_a_near_duplicate_on_add(shop: Path, tmp_path: Path) -> None:
    edited = apply_edit(Image.open(shop / "images" / "chelsea.png"), "jpeg", 40, np.random.default_rng(0))
    edited.save(tmp_path / "relisted.jpg")
    with Catalog(shop / "cat") as cat:
        before = len(cat)
        with pytest.raises(DuplicateImageError) as refused:
            cat.add(tmp_path / "relisted.jpg", refuse="near")
        assert refused.value.matches[0].id == "chelsea.png" and len(cat) == before  # nothing written
        item = cat.add(tmp_path / "relisted.jpg", check_duplicates=True)
        assert isinstance(item, CheckedItem) and isinstance(item, Item)
        assert item.duplicates[0].id == "chelsea.png" and item.duplicates[0].verdict == "near-duplicate"
        assert item.to_dict()["duplicates"][0]["verdict"] == "near-duplicate"
        report = cat.dedup()
        group = next(g for g in report.groups if "relisted.jpg" in {i.id for i in g.items})
        assert group.keeper == "chelsea.png"  # more pixels than the crop
        (pair,) = group.pairs
        assert isinstance(pair, DuplicatePair) and {pair.a, pair.b} == {"chelsea.png", "relisted.jpg"}
        assert pair.verdict == "near-duplicate" and 0 < pair.cosine <= 1
        assert report.to_dict()["groups"][report.groups.index(group)]["pairs"] == [pair.to_dict()]
        assert "relisted.jpg" in report.to_csv()
        cat.remove("relisted.jpg")
        checked = cat.add(shop / "images" / "f03.png", id="f03-again")  # a calibrated catalogue checks by default
        assert checked.duplicates[0].id == "f03.png" and checked.duplicates[0].verdict == "exact"
        cat.remove("f03-again")
        plain = cat.add(shop / "images" / "f03.png", id="f03-again", check_duplicates=False)
        assert type(plain) is Item  # callers that opt out get the plain item
        with pytest.raises(DuplicateImageError, match="exact duplicate of item 'f03"):
            cat.add(shop / "images" / "f03.png", id="third", refuse="exact")
        cat.remove("f03-again")
        with pytest.raises(InvalidParameterError, match="refuse"):
            cat.add(shop / "images" / "f03.png", refuse="yes")


def test_a_crop_of_a_catalogue_item_is_found_as_a_near_duplicate(shop: Path) -> None:
    # 5%: on this 44-item catalogue the distractor tables are short, so the threshold is high and 10-20% crops come
    # out "similar"; on the 1,724-item benchmark catalogue combined finds 70% of 10% crops (BENCHMARKS.md)
    cropped = apply_edit(Image.open(shop / "images" / "chelsea.png"), "crop", 0.05, np.random.default_rng(4))
    with Catalog(shop / "cat") as cat:
        matches = cat.find_duplicates(cropped)
    assert matches[0].id == "chelsea.png" and matches[0].verdict == "near-duplicate"


def test_uncalibrated_and_empty_catalogues_say_what_to_do(tmp_path: Path, shop: Path) -> None:
    with Catalog(tmp_path / "empty") as cat:
        with pytest.raises(CatalogError, match="at least 20 items"):
            cat.calibrate_duplicates()
        with pytest.raises(CalibrationRequiredError, match="dedup --calibrate"):
            cat.dedup()
        with pytest.raises(InvalidParameterError, match="target_precision"):
            cat.calibrate_duplicates(target_precision=1.5)
        item = cat.add(shop / "images" / "f01.png", refuse="exact")  # an exact check needs no calibration
        with pytest.raises(DuplicateImageError):
            cat.add(shop / "images" / "f01.png", id="again", refuse="exact")
        with pytest.raises(CalibrationRequiredError, match="dedup --calibrate"):
            cat.add(shop / "images" / "f02.png", check_duplicates=True)
        assert [i.id for i in cat.list()] == [item.id]


def test_items_without_thumbnails_get_them_from_their_files(shop: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(shop / "cat", tmp_path / "old")
    db = sqlite3.connect(tmp_path / "old" / "catalog.sqlite")
    db.execute("DELETE FROM features")  # as a catalogue from before thumbnails were stored
    db.commit()
    db.close()
    with Catalog(tmp_path / "old") as cat:
        assert cat.features(THUMB_FEATURE) == {}
        report = cat.dedup()  # thumbnails are made from the files on the way
        assert len(cat.features(THUMB_FEATURE)) == len(cat) and report.items == len(cat)


def test_cli_dedup_and_add(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = str(shop / "cat")
    assert main(["dedup", "--catalog", catalog, "--format", "json", "--out", str(tmp_path / "g.json")]) == 0
    groups = json.loads((tmp_path / "g.json").read_text())
    assert groups["items"] >= 44 and "calibration" in groups
    assert main(["dedup", "--catalog", catalog, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("group,id,path")
    assert main(["add", "--catalog", catalog, "--refuse", "exact", "--json", str(shop / "images" / "f05.png")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == [] and out["refused"][0]["duplicates"][0]["id"] == "f05.png"
    assert main(["dedup", "--catalog", catalog, "--calibrate", "--target-precision", "2"]) == 1
    assert "target_precision" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dedup", "--catalog", catalog, "--format", "xml"])


def test_add_many_checks_and_refuses_duplicates(shop: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    relisted = apply_edit(Image.open(shop / "images" / "chelsea.png"), "jpeg", 40, rng)
    relisted.save(tmp_path / "relisted.jpg")
    fresh = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((64, 64))
    fresh.save(tmp_path / "fresh.png")
    with Catalog(shop / "cat") as cat:
        before = len(cat)
        report = cat.add_many([tmp_path / "relisted.jpg", tmp_path / "fresh.png", shop / "images" / "f07.png",
                               tmp_path / "fresh.png"], refuse="near")
        # the near copy, the exact copy of a catalogue item and the second fresh.png (a copy of the first) are out
        assert report.added == ["fresh.png"] and len(cat) == before + 1
        assert [r.duplicates[0].id for r in report.refused] == ["chelsea.png", "f07.png", "fresh.png"]
        assert report.to_dict()["refused"][0]["duplicates"][0]["verdict"] == "near-duplicate"
        cat.remove("fresh.png")
        checked = cat.add_many([tmp_path / "relisted.jpg", tmp_path / "fresh.png"], check_duplicates=True)
        assert checked.added == ["relisted.jpg", "fresh.png"] and not checked.refused
        assert [m.id for m in checked.duplicates["relisted.jpg"]] == ["chelsea.png"]
        assert "fresh.png" not in checked.duplicates
        cat.remove_many(checked.added)
        assert len(cat) == before
        with pytest.raises(InvalidParameterError, match="refuse"):
            cat.add_many([tmp_path / "fresh.png"], refuse="maybe")


def test_approximate_dedup_finds_the_exact_groups(shop: Path) -> None:
    with Catalog(shop / "cat") as cat:
        exact, fast = cat.dedup(k=3, approximate=False), cat.dedup(k=3, approximate=True)
        assert fast.search.startswith("top-16 in 128") and exact.search == "exact"
        assert [[i.id for i in g.items] for g in exact.groups] == [[i.id for i in g.items] for g in fast.groups]
        assert exact.to_dict()["geometric_checks"] == exact.geometric_checks


def test_large_photos_decode_the_same_for_duplicates_and_search(tmp_path: Path) -> None:
    """Issue 11.5: a 5120×2880 JPEG scored 0.9919 against itself in find_duplicates and 1.0 in search, and pair
    cosines were asymmetric (0.6975 vs 0.6588). One decode recipe: 1.0 and symmetric, with an extra encoder too."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    paths = []
    for name in ("coffee.png", "chelsea.png", "rocket.jpg"):
        path = tmp_path / f"{name.split('.')[0]}.jpg"
        Image.open(data / name).convert("RGB").resize((5120, 2880)).save(path, quality=90, progressive=True)
        paths.append(path)
    for name in DATA_PHOTOS:
        if name not in ("coffee.png", "chelsea.png", "rocket.jpg"):
            data_photo(name).save(tmp_path / f"{name.split('.')[0]}.png")  # enough items to calibrate
    with Catalog(tmp_path / "cat", extra_encoders=["phash"]) as cat:
        cat.index_folder(tmp_path)
        cat.calibrate_duplicates(sample=10, seed=0)
        cosine: dict[tuple[str, str], float] = {}
        for path in paths:
            matches = cat.find_duplicates(path, k=len(cat), min_cosine=-1.0)
            assert matches[0].id == path.name and matches[0].verdict == "exact"
            assert matches[0].cosine == pytest.approx(1.0, abs=1e-5)
            assert cat.search(path, k=1)[0].score == pytest.approx(1.0, abs=1e-5)
            cosine.update({(path.name, m.id): m.cosine for m in matches})
        names = [p.name for p in paths]
        for a in names:
            for b in names:
                assert cosine[a, b] == pytest.approx(cosine[b, a], abs=1e-4), (a, b)
