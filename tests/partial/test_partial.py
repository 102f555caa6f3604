"""Partial-image search on real photographs: crops found with their boxes, warps, the index against brute force,
descriptors following deletes and updates, and hostile input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.errors import CatalogError, IncompatibleCatalogError, InvalidParameterError
from lookalike.partial import FEATURE, SETTING, Extractor, PartialSearch
from lookalike.partial.features import pack, unpack

from .conftest import NAMES, build, iou, photo


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket", "camera"])
def test_a_quarter_crop_finds_its_source_at_rank_1_with_its_box(partial_catalog: Path, name: str) -> None:
    a = photo(name)
    h, w = a.shape[:2]
    rng = np.random.default_rng(NAMES.index(name))
    cw, ch = w // 2, h // 2
    x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
    with Catalog(partial_catalog, create=False) as cat:
        answer = PartialSearch(cat).search(a[y : y + ch, x : x + cw], k=3)
    top = answer.results[0]
    assert top.id == f"{name}.png"
    assert iou((top.box.x, top.box.y, top.box.w, top.box.h), (x, y, cw, ch)) >= 0.5
    assert iou((top.query_box.x, top.query_box.y, top.query_box.w, top.query_box.h), (0, 0, cw, ch)) >= 0.5
    assert 0 < top.score <= 1 and top.inliers >= 10


def test_a_crop_after_a_known_scale_and_rotation(partial_catalog: Path) -> None:
    a = photo("astronaut")
    x, y, cw, ch = 200, 60, 256, 256
    img = Image.fromarray(a[y : y + ch, x : x + cw]).resize((192, 192), Image.BILINEAR)  # scale 0.75
    img = img.rotate(15, Image.BILINEAR, expand=True)
    with Catalog(partial_catalog, create=False) as cat:
        top = PartialSearch(cat).search(img, k=1).results[0]
    assert top.id == "astronaut.png"
    # the rotated query's frame (with its black corners) is the crop's square turned by 15 degrees about its centre
    side = round(cw * (np.cos(np.radians(15)) + np.sin(np.radians(15))))
    frame = (x + cw // 2 - side // 2, y + ch // 2 - side // 2, side, side)
    assert iou((top.box.x, top.box.y, top.box.w, top.box.h), frame) >= 0.5


def test_a_query_box_is_searched_and_reported_in_query_pixels(partial_catalog: Path) -> None:
    a = photo("coffee")
    canvas = np.zeros((500, 700, 3), np.uint8)
    canvas[50:250, 100:400] = a[100:300, 200:500]
    with Catalog(partial_catalog, create=False) as cat:
        top = PartialSearch(cat).search(canvas, k=1, box="100,50,300,200").results[0]
    assert top.id == "coffee.png"
    assert iou((top.query_box.x, top.query_box.y, top.query_box.w, top.query_box.h), (100, 50, 300, 200)) >= 0.7


def test_removed_and_updated_items_leave_the_index(tmp_path: Path, photo_folder: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder)
    path = build(tmp_path / "cat", folder)
    crop = photo("rocket")[100:300, 200:450]
    with Catalog(path, create=False) as cat:
        ps = PartialSearch(cat)
        assert ps.search(crop, k=1).results[0].id == "rocket.png"
        key = cat.get("rocket.png").key
        cat.remove("rocket.png")
        assert key not in cat.features(FEATURE)
        assert all(m.id != "rocket.png" for m in ps.search(crop, k=5).results)
        assert key not in ps.index
        # update: coffee.png now holds the rocket photograph; its descriptors are made again
        cat.update("coffee.png", image=str(photo_folder / "rocket.png"))
        answer = ps.search(crop, k=1)
        assert answer.results[0].id == "coffee.png"
        stored = unpack(cat.features(FEATURE, [cat.get("coffee.png").key])[cat.get("coffee.png").key])
        assert stored.sha256 == cat.get("coffee.png").sha256
        assert all(m.id != "coffee.png" for m in ps.search(photo("coffee")[100:300, 200:500], k=5).results)


def test_tiny_and_featureless_queries_answer_empty_with_a_reason(partial_catalog: Path) -> None:
    with Catalog(partial_catalog, create=False) as cat:
        ps = PartialSearch(cat)
        tiny = ps.search(np.full((8, 8, 3), 200, np.uint8))
        flat = ps.search(np.full((300, 300, 3), 90, np.uint8))
        noise = ps.search(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    assert tiny.results == [] and "too small" in (tiny.reason or "")
    assert flat.results == [] and "featureless" in (flat.reason or "")
    assert noise.results == [] and noise.reason


def test_a_catalogue_without_descriptors_is_a_clear_error(tmp_path: Path, photo_folder: Path) -> None:
    with Catalog(tmp_path / "cat", "phash") as cat:
        cat.add(str(photo_folder / "coffee.png"))
        assert cat.setting(SETTING) is None
        with pytest.raises(IncompatibleCatalogError, match="--partial"):
            PartialSearch(cat).search(str(photo_folder / "coffee.png"))


def test_bad_arguments_and_damaged_blobs(partial_catalog: Path) -> None:
    with Catalog(partial_catalog, create=False) as cat:
        with pytest.raises(InvalidParameterError):
            PartialSearch(cat, candidates=0)
        with pytest.raises(InvalidParameterError, match="nprobe"):
            PartialSearch(cat, nprobe=0)
        for bad in (0, 15, 20001, True, "750", 750.0):
            with pytest.raises(InvalidParameterError, match="query_keypoints"):
                PartialSearch(cat, query_keypoints=bad)
        with pytest.raises(InvalidParameterError, match="'k'"):
            PartialSearch(cat).search(photo("coffee"), k=0)
        with pytest.raises(InvalidParameterError):
            PartialSearch.enable(cat, "sift:1000")
    with pytest.raises(InvalidParameterError):
        Extractor("orb", 3)
    with pytest.raises(CatalogError, match="damaged"):
        unpack(b"LKP1" + bytes(10))
    f = Extractor().describe(Image.fromarray(photo("camera")), "ab" * 32)
    g = unpack(pack(f))
    assert g.sha256 == "ab" * 32 and np.array_equal(g.desc, f.desc) and np.allclose(g.xy, f.xy)
    with pytest.raises(CatalogError, match="damaged"):
        unpack(pack(f)[:-1])


def test_the_query_is_described_with_at_most_query_keypoints(partial_catalog: Path) -> None:
    """Catalogue images keep the spec's keypoints; a query gets its own, smaller count (its strongest corners)."""
    crop = photo("astronaut")[50:350, 50:350]
    with Catalog(partial_catalog, create=False) as cat:
        few = PartialSearch(cat, query_keypoints=200).search(crop, k=1)
        many = PartialSearch(cat, query_keypoints=3000).search(crop, k=1)
    assert few.query_keypoints == 200 < many.query_keypoints
    assert few.results[0].id == many.results[0].id == "astronaut.png"
    assert few.results[0].inliers < many.results[0].inliers


def test_fallback_fills_the_answer_with_the_global_ranking(partial_catalog: Path) -> None:
    flat = np.full((300, 300, 3), 90, np.uint8)  # nothing to verify: the answer is the global search's
    a = photo("coffee")[100:300, 200:500]  # verified: coffee first, then the global ranking's others
    with Catalog(partial_catalog, create=False) as cat:
        ps = PartialSearch(cat)
        empty = ps.search(flat, k=3, fallback=True)
        assert empty.results == [] and [h.id for h in empty.fallback] == [h.id for h in cat.search(flat, k=3)]
        answer = ps.search(a, k=4, fallback=True)
        glob = [h.id for h in cat.search(a, k=4)]
        verified = [m.id for m in answer.results]
        assert verified[0] == "coffee.png"
        assert answer.ids() == (verified + [g for g in glob if g not in verified])[:4]
        assert len(answer.ids()) == len(set(answer.ids())) == 4
        assert ps.search(a, k=4).fallback == []  # not asked for
