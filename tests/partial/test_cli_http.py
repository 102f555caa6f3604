"""Partial-image search from the command line (`index --partial`, `search --partial`) and over HTTP
(`POST /search/partial`): the same answer as the library, boxes in both, and clear errors for broken input."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.cli import main
from lookalike.partial import PartialSearch

from .conftest import photo

API_KEY = "partial-test-key-0123"
CROP = (150, 100, 256, 256)  # x, y, w, h in the astronaut


def _crop(path: Path) -> Path:
    x, y, w, h = CROP
    Image.fromarray(photo("astronaut")[y : y + h, x : x + w]).save(path)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_partial_then_search_partial_prints_the_boxes(tmp_path: Path, photo_folder: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cat = tmp_path / "cat"
    code, out, err = _cli(capsys, "--catalog", cat, "index", photo_folder, "--encoder", "phash", "--partial")
    assert code == 0, err
    assert "partial search: described 8 images" in out
    query = _crop(tmp_path / "q.png")
    code, out, err = _cli(capsys, "--catalog", cat, "search", query, "--partial", "-k", "3", "--json")
    assert code == 0, err
    answer = json.loads(out)
    top = answer["results"][0]
    assert top["id"] == "astronaut.png" and top["inliers"] >= 10
    box = top["box"]
    assert abs(box["x"] - CROP[0]) < 16 and abs(box["y"] - CROP[1]) < 16 and abs(box["w"] - CROP[2]) < 24
    with Catalog(cat) as opened:  # the library's answer
        assert [m.id for m in PartialSearch(opened).search(query, k=3).results] == [r["id"] for r in answer["results"]]
    code, out, err = _cli(capsys, "--catalog", cat, "search", query, "--partial")
    assert code == 0 and "astronaut.png" in out and "box 1" in out and "query box 0,0," in out


def test_search_partial_on_a_catalogue_without_descriptors_is_one_error_line(
        tmp_path: Path, photo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cat = tmp_path / "cat"
    assert _cli(capsys, "--catalog", cat, "index", photo_folder, "--encoder", "phash")[0] == 0
    code, out, err = _cli(capsys, "--catalog", cat, "search", _crop(tmp_path / "q.png"), "--partial")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("lookalike: error:") and "--partial" in err


@pytest.mark.parametrize("extra", [["--where", "a=1"], ["--rerank", "5"], ["--encoder", "phash"], ["-k", "0"]])
def test_search_partial_refuses_options_that_do_not_apply(partial_catalog: Path, tmp_path: Path, extra: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "--catalog", partial_catalog, "search", _crop(tmp_path / "q.png"), "--partial",
                          *extra)
    assert code == 1 and out == "" and err.startswith("lookalike: error:") and err.count("\n") == 1


def test_a_featureless_query_is_no_result_with_a_reason(partial_catalog: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(flat)
    code, out, _ = _cli(capsys, "--catalog", partial_catalog, "search", flat, "--partial")
    assert code == 0 and out.startswith("no verified results:")


def test_search_partial_fallback_prints_the_global_ranking_below(partial_catalog: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(flat)
    code, out, err = _cli(capsys, "--catalog", partial_catalog, "search", flat, "--partial", "--fallback", "-k", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("no verified results:") and len(lines) == 4 and all("global" in x for x in lines[1:])
    code, out, err = _cli(capsys, "--catalog", partial_catalog, "search", flat, "--partial", "--fallback", "-k", "3",
                          "--json")
    assert code == 0 and len(json.loads(out)["fallback"]) == 3 and json.loads(out)["results"] == []
    code, out, err = _cli(capsys, "--catalog", partial_catalog, "search", flat, "--fallback")
    assert code == 1 and out == "" and "--partial" in err and err.count("\n") == 1


# -- HTTP ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(partial_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from lookalike.service import ServiceConfig, create_app
    from tests.service.conftest import LiveServer

    copy = tmp_path_factory.mktemp("partial-http") / "cat"
    shutil.copytree(partial_catalog, copy)
    with LiveServer(create_app(ServiceConfig(copy, api_key=API_KEY, max_upload_bytes=2**20))) as live:
        yield live.url


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def test_http_partial_search_answers_with_the_boxes(server: str) -> None:
    x, y, w, h = CROP
    body = _png(photo("astronaut")[y : y + h, x : x + w])
    r = httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")}, data={"k": "2"})
    assert r.status_code == 200, r.text
    answer = r.json()
    top = answer["results"][0]
    assert top["rank"] == 1 and top["id"] == "astronaut.png" and "path" not in top
    assert abs(top["box"]["x"] - x) < 16 and top["query_box"]["x"] == 0
    assert top["image_url"].endswith("/items/astronaut.png/image") and answer["keypoints"] > 100
    raw = httpx.post(f"{server}/search/partial?k=2&box=20,20,220,220", content=body,
                     headers={"content-type": "image/png"})
    assert raw.status_code == 200 and raw.json()["query"]["box"] == "20,20,220,220"
    assert raw.json()["results"][0]["id"] == "astronaut.png", raw.json()["reason"]
    assert raw.json()["results"][0]["query_box"]["x"] >= 20  # the region's box, in the whole query's pixels


@pytest.mark.parametrize("form, status", [({"k": "0"}, 422), ({"k": "x"}, 422), ({"box": "1,2,3"}, 422),
                                          ({"box": "0,0,9999,9999"}, 422)])
def test_http_partial_search_refuses_bad_parameters(server: str, form: dict[str, str], status: int) -> None:
    body = _png(photo("astronaut")[:200, :200])
    r = httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")}, data=form)
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status


def test_http_partial_search_refuses_what_is_not_an_image(server: str) -> None:
    r = httpx.post(f"{server}/search/partial", files={"image": ("q.png", b"not an image at all", "image/png")})
    assert r.status_code in (400, 415, 422) and "error" in r.json()


def test_http_partial_search_of_a_flat_image_is_empty_with_a_reason(server: str) -> None:
    body = _png(np.full((120, 120, 3), 128, dtype=np.uint8))
    r = httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")})
    assert r.status_code == 200 and r.json()["results"] == [] and r.json()["reason"]


def test_http_partial_search_without_descriptors_is_422(tmp_path: Path, photo_folder: Path) -> None:
    from lookalike.service import ServiceConfig, create_app
    from tests.service.conftest import LiveServer

    with Catalog(tmp_path / "cat", "phash", create=True) as cat:
        cat.index_folder(photo_folder)
    with LiveServer(create_app(ServiceConfig(tmp_path / "cat", read_only=True))) as live:
        r = httpx.post(f"{live.url}/search/partial", files={"image": ("q.png", _png(photo("coffee")), "image/png")})
    assert r.status_code == 422 and "--partial" in r.json()["error"]["message"]


def test_the_working_size_never_passes_the_long_side_limit() -> None:
    from lookalike.partial.features import MAX_SIDE, MIN_SIDE, working_scale

    assert working_scale(16, 4_000_000) <= 1.0  # a hostile strip is not blown up to 64 x 16M
    assert max(16, 600) * working_scale(16, 600) <= MAX_SIDE
    assert min(100, 120) * working_scale(100, 120) >= MIN_SIDE  # a small query is still scaled up
    assert working_scale(4000, 3000) * 4000 == pytest.approx(MAX_SIDE)


def test_a_live_search_follows_a_change_of_descriptor(tmp_path: Path, photo_folder: Path) -> None:
    from lookalike.partial import FEATURE
    from lookalike.partial.features import unpack

    query = _crop(tmp_path / "q.png")
    with Catalog(tmp_path / "cat", "phash", create=True) as cat:
        cat.index_folder(photo_folder)
        PartialSearch.enable(cat, "orb:500")
        live = PartialSearch(cat)  # a service's: its index outlives the setting
        assert live.search(query, k=1).results[0].id == "astronaut.png"
        PartialSearch.enable(cat, "teblid:1000")  # as another process would
        key = cat.get("astronaut.png").key
        stored = unpack(cat.features(FEATURE, [key])[key])
        assert stored.kind == "teblid" and len(stored.desc) > 500  # re-described, the count too
        answer = live.search(query, k=1)
        assert answer.results and answer.results[0].id == "astronaut.png", answer.reason


def test_http_search_never_builds_an_encoder_from_a_file_the_client_names(server: str) -> None:
    body = _png(photo("coffee")[:200, :200])
    for spec in ("triplet:/etc/passwd", "bingan:/etc/hostname", "triplet:~/nothing-here"):
        r = httpx.post(f"{server}/search", files={"image": ("q.png", body, "image/png")}, data={"encoder": spec})
        assert r.status_code == 422, r.text
        assert "no such" not in r.json()["error"]["message"] and "not a" not in r.json()["error"]["message"]


def test_http_partial_search_fallback_fills_up_with_the_global_ranking(server: str) -> None:
    body = _png(np.full((120, 120, 3), 128, dtype=np.uint8))
    r = httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")},
                   data={"k": "3", "fallback": "true"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["results"] == [] and [h["rank"] for h in answer["fallback"]] == [1, 2, 3]
    assert all("path" not in h and h["image_url"] for h in answer["fallback"])
    x, y, w, h = CROP
    crop = _png(photo("astronaut")[y : y + h, x : x + w])
    r = httpx.post(f"{server}/search/partial?k=8&fallback=1", content=crop, headers={"content-type": "image/png"})
    ids = [x["id"] for x in r.json()["results"]] + [x["id"] for x in r.json()["fallback"]]
    assert ids[0] == "astronaut.png" and len(ids) == len(set(ids)) == 8  # every item of the 8, once
    assert r.json()["fallback"][0]["rank"] == len(r.json()["results"]) + 1
    assert httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")}).json()[
        "fallback"] == []
    bad = httpx.post(f"{server}/search/partial", files={"image": ("q.png", body, "image/png")},
                     data={"fallback": "maybe"})
    assert bad.status_code == 422 and "fallback" in bad.text
