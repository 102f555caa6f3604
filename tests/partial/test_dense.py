"""Dense verification (``lookalike.partial.dense``): the correlation against a direct numpy evaluation, crops found
at other scales and after JPEG with their boxes, unrelated or smooth look-alikes refused; and in ``PartialSearch``,
a featureless crop found with a box where keypoints find nothing, over the library, the CLI and HTTP."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.cli import main
from lookalike.errors import InvalidParameterError
from lookalike.partial import PartialSearch
from lookalike.partial.dense import MIN_STD, _correlate, dense_match, grey

from .conftest import iou, photo

FLAT_CROP = (0, 0, 128, 128)  # camera's top-left corner: sky, no keypoint at all


def _jpeg(a: np.ndarray, quality: int = 85) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out))


def test_the_correlation_is_pearsons_at_every_window_and_flat_windows_are_left_out() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (30, 40)).astype(np.float32)
    image[:12, :15] = 100.0  # a flat corner
    template = rng.uniform(0, 255, (6, 8)).astype(np.float32)
    r = _correlate(image, template)
    assert r.shape == (25, 33)
    for y in range(25):
        for x in range(33):
            window = image[y : y + 6, x : x + 8]
            if window.std() < MIN_STD:
                assert r[y, x] == -1.0
            else:
                expected = np.corrcoef(window.ravel(), template.ravel())[0, 1]
                assert r[y, x] == pytest.approx(expected, abs=2e-3)
    assert (r[:7, :8] == -1.0).all()  # windows inside the flat corner


@pytest.mark.parametrize("scale, quality", [(1.0, None), (0.6, None), (1.6, None), (1.0, 85), (0.8, 70)])
def test_a_crop_is_found_at_another_scale_or_after_jpeg_with_its_box(scale: float, quality: int | None) -> None:
    a = photo("astronaut")
    x, y, w, h = 200, 120, 150, 110
    crop = a[y : y + h, x : x + w]
    if scale != 1.0:
        crop = np.asarray(Image.fromarray(crop).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
    if quality is not None:
        crop = _jpeg(crop, quality)
    m = dense_match(grey(crop), grey(a))
    assert m is not None and m.score >= 0.97 and m.detail >= 0.3
    assert iou(tuple(round(v) for v in m.box), (x, y, w, h)) > 0.9, m


def test_unrelated_flat_tiny_or_smooth_look_alike_queries_are_refused() -> None:
    astronaut, coffee = grey(photo("astronaut")), grey(photo("coffee"))
    assert dense_match(coffee[100:200, 100:250], astronaut) is None
    assert dense_match(np.full((60, 60), 128, np.float32), astronaut) is None  # flat: no correlation defined
    assert dense_match(coffee[:6, :40], coffee) is None  # under 8 pixels a side
    assert dense_match(coffee[50:200, 50:250], coffee[:40, :40]) is None  # larger than the item at every scale
    camera, rocket = photo("camera"), grey(photo("rocket"))
    sky = grey(camera[: camera.shape[0] // 6, camera.shape[1] - camera.shape[1] // 3 :])  # a smooth gradient
    loose = dense_match(sky, rocket, min_detail=-1.0)
    assert loose is not None and loose.score >= 0.97  # rocket's sky correlates with camera's sky...
    assert loose.detail < 0.3 and dense_match(sky, rocket) is None  # ...but its fine detail does not
    own = dense_match(sky, grey(camera))
    assert own is not None and own.detail > 0.9


@pytest.fixture(scope="module")
def catalogue(partial_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("dense") / "cat"
    shutil.copytree(partial_catalog, copy)
    return copy


def _flat_crop(path: Path) -> Path:
    x, y, w, h = FLAT_CROP
    Image.fromarray(photo("camera")[y : y + h, x : x + w]).save(path)
    return path


def test_a_featureless_crop_is_found_densely_with_its_box(catalogue: Path, tmp_path: Path) -> None:
    query = _flat_crop(tmp_path / "q.png")
    with Catalog(catalogue, read_only=True) as cat:
        alone = PartialSearch(cat, dense=0).search(query, k=3)
        assert alone.results == [] and alone.query_keypoints == 0 and alone.reason
        answer = PartialSearch(cat).search(query, k=3)
        assert answer.reason is None and [m.id for m in answer.results][:1] == ["camera.png"]
        top = answer.results[0]
        assert top.method == "dense" and top.inliers == 0 and top.score >= 0.97
        assert iou((top.box.x, top.box.y, top.box.w, top.box.h), FLAT_CROP) > 0.95
        assert (top.query_box.x, top.query_box.y, top.query_box.w, top.query_box.h) == (0, 0, 128, 128)
        region = PartialSearch(cat).search(photo("camera")[:300, :300], k=3, box="0,0,128,128").results
        assert region and region[0].id == "camera.png" and region[0].query_box.x == 0
        fused = PartialSearch(cat).search(query, k=3, fallback=True)
        assert fused.ids()[0] == "camera.png" and "camera.png" not in [h.id for h in fused.fallback]


def test_a_candidate_whose_file_is_gone_is_skipped(partial_catalog: Path, photo_folder: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(photo_folder, photos)
    with Catalog(tmp_path / "cat", "phash", create=True) as cat:
        cat.index_folder(photos)
        PartialSearch.enable(cat)
        (photos / "camera.png").unlink()  # moved away after indexing
        answer = PartialSearch(cat).search(_flat_crop(tmp_path / "q.png"), k=3)
        assert "camera.png" not in [m.id for m in answer.results] and answer.reason


@pytest.mark.parametrize("params", [{"dense": -1}, {"dense": 101}, {"dense_min": 1.5}, {"dense_min": float("nan")},
                                    {"dense_detail": -2.0}, {"dense": "3"}])
def test_bad_dense_parameters_are_refused(catalogue: Path, params: dict) -> None:
    with Catalog(catalogue, read_only=True) as cat, pytest.raises(InvalidParameterError):
        PartialSearch(cat, **params)


def test_the_cli_and_http_say_how_a_result_was_verified(catalogue: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import httpx

    from lookalike.service import ServiceConfig, create_app
    from tests.service.conftest import LiveServer

    query = _flat_crop(tmp_path / "q.png")
    assert main(["--catalog", str(catalogue), "search", str(query), "--partial", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "camera.png" in out and "dense" in out and "box 0,0," in out
    assert main(["--catalog", str(catalogue), "search", str(query), "--partial", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["method"] == "dense"
    with LiveServer(create_app(ServiceConfig(catalogue, read_only=True))) as live:
        r = httpx.post(f"{live.url}/search/partial", files={"image": ("q.png", query.read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
        top = r.json()["results"][0]
        assert top["id"] == "camera.png" and top["method"] == "dense" and top["inliers"] == 0
        crop = io.BytesIO()
        Image.fromarray(photo("astronaut")[100:356, 150:406]).save(crop, "PNG")
        r = httpx.post(f"{live.url}/search/partial", files={"image": ("a.png", crop.getvalue(), "image/png")})
        assert r.json()["results"][0]["method"] == "keypoints"
