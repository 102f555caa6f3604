"""Near-duplicate detection through the live service: the dedup report, checking an upload, add with a check or a
refusal, calibration, and hostile input on every duplicate endpoint.

The catalogue (``dup_catalog``): 24 distinct photographs and two re-listings (``coffee-relisted``,
``horse-relisted``: smaller and JPEG-compressed again), efficientnet-lite0, calibrated on 24 edited copies.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .conftest import API_KEY, LiveServer, ServerFactory, data_photo, edited, encode, photo
from .test_api import AUTH, _png_claiming, assert_error, upload

ITEMS = 26


@pytest.fixture(scope="module")
def dup_server(dup_catalog: Path) -> Iterator[LiveServer]:
    """A server over the shared calibrated catalogue, for tests that do not write to it."""
    from lookalike.service import ServiceConfig, create_app

    with LiveServer(create_app(ServiceConfig(dup_catalog, api_key=API_KEY))) as server:
        yield server


@pytest.fixture
def dup(dup_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dup_server.url, timeout=60) as c:
        yield c


@pytest.fixture
def dup_copy(dup_catalog: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dup_catalog, tmp_path / "catalog"))


def stored(name: str) -> bytes:
    """The very bytes a catalogue photo was added with (an exact copy)."""
    return encode(data_photo(name))


# -- reading --------------------------------------------------------------------------------------------------


def test_report_groups_the_relistings_with_their_keepers(dup: httpx.Client) -> None:
    response = dup.get("/duplicates")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["items"] == ITEMS and report["k"] == 10 and report["duplicates"] == 2
    assert report["calibration"]["sample"] == 24 and report["calibration"]["encoder"] == "efficientnet-lite0"
    groups = {group["keeper"]: group for group in report["groups"]}
    assert set(groups) == {"coffee", "horse"}
    for keeper, group in groups.items():
        assert group["size"] == 2 and {i["id"] for i in group["items"]} == {keeper, f"{keeper}-relisted"}
        assert [i["id"] for i in group["items"] if i["keep"]] == [keeper]
        keep = next(i for i in group["items"] if i["keep"])
        assert keep["thumbnail_url"].startswith(f"/items/{keeper}/thumbnail?v=")
        assert dup.get(keep["thumbnail_url"]).status_code == 200
        (pair,) = group["pairs"]
        assert {pair["a"], pair["b"]} == {keeper, f"{keeper}-relisted"} and pair["verdict"] == "near-duplicate"
        assert pair["evidence"] >= report["calibration"]["threshold"] and 0 < pair["cosine"] <= 1

    assert len(dup.get("/duplicates", params={"k": 3}).json()["groups"]) == 2

    as_csv = dup.get("/duplicates", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 4 and {r["id"] for r in rows if r["keep"] == "1"} == {"coffee", "horse"}


def test_check_an_upload_without_adding_it(dup: httpx.Client) -> None:
    response = dup.post("/duplicates/check", files=upload(edited("rocket.jpg")), data={"k": "5"})
    assert response.status_code == 200, response.text
    body = response.json()
    best = body["duplicates"][0]
    assert body["k"] == 5 and best["id"] == "rocket" and best["verdict"] == "near-duplicate"
    assert best["thumbnail_url"] == "/items/rocket/thumbnail" and best["evidence"] > 0
    assert all(m["id"] != "rocket" for m in body["duplicates"][1:])
    assert "duplicates" in body["timings_ms"]

    exact = dup.post("/duplicates/check", content=stored("coins.png"), headers={"content-type": "image/jpeg"})
    assert (exact.json()["duplicates"][0]["id"], exact.json()["duplicates"][0]["verdict"]) == ("coins", "exact")
    fractal = Image.effect_mandelbrot((240, 200), (-2.0, -1.2, 0.8, 1.2), 60).convert("RGB")  # not in it
    unrelated = dup.post("/duplicates/check", files=upload(encode(fractal)))
    assert unrelated.status_code == 200 and all(m["verdict"] == "similar" for m in unrelated.json()["duplicates"])
    assert dup.get("/health").json()["items"] == ITEMS  # nothing was added


def test_calibration_summary_and_metrics(dup: httpx.Client) -> None:
    summary = dup.get("/duplicates/calibration").json()
    assert summary["target_precision"] == 0.99 and summary["sample"] == 24 and summary["seed"] == 0
    assert 0 <= summary["recall"] <= 1 and summary["threshold"] > 0 and "distractors" not in summary
    dup.get("/duplicates")
    text = dup.get("/metrics").text
    assert 'route="/duplicates",status="200"' in text and 'route="/duplicates/calibration"' in text
    assert 'lookalike_stage_seconds_count{stage="dedup"}' in text
    schema = dup.get("/openapi.json").json()
    assert {"/duplicates", "/duplicates/check", "/duplicates/calibrate", "/duplicates/calibration"} <= set(
        schema["paths"])
    add = schema["paths"]["/items"]["post"]
    form = add["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"check_duplicates", "refuse"} <= set(schema["components"]["schemas"][form]["properties"])
    assert "409" in add["responses"] and "409" in schema["paths"]["/duplicates"]["get"]["responses"]


# -- writing --------------------------------------------------------------------------------------------------


def test_add_with_a_check_and_with_a_refusal(serve: ServerFactory, dup_copy: Path) -> None:
    server = serve(dup_copy)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        checked = c.post("/items", files=upload(edited("rocket.jpg")),
                         data={"id": "rocket-again", "check_duplicates": "true"})
        assert checked.status_code == 201, checked.text
        assert checked.json()["id"] == "rocket-again"
        assert checked.json()["duplicates"][0]["id"] == "rocket"
        assert checked.json()["duplicates"][0]["verdict"] == "near-duplicate"

        refused = c.post("/items", files=upload(edited("chelsea.png")), data={"id": "cat", "refuse": "near"})
        assert_error(refused, 409, "DuplicateImageError", "chelsea")
        assert [m["id"] for m in refused.json()["duplicates"]] == ["chelsea"]
        assert refused.json()["duplicates"][0]["thumbnail_url"] == "/items/chelsea/thumbnail"
        assert_error(c.get("/items/cat"), 404)  # nothing written

        exact = c.post("/items", files=upload(stored("coins.png")), data={"refuse": "exact"})
        assert_error(exact, 409, "DuplicateImageError", "exact")
        assert exact.json()["duplicates"][0]["verdict"] == "exact"
        near_only = c.post("/items", files=upload(edited("coins.png")), data={"id": "coins-2", "refuse": "exact"})
        assert near_only.status_code == 201, near_only.text  # only exact copies are refused
        assert all(m["verdict"] != "exact" for m in near_only.json()["duplicates"])

        plain = c.post("/items", files=upload(edited("moon.png")), data={"id": "moon-2", "refuse": ""})
        assert plain.status_code == 201 and plain.json()["duplicates"][0]["id"] == "moon"  # checked: calibrated
        unchecked = c.post("/items", files=upload(edited("text.png")),
                           data={"id": "text-2", "check_duplicates": "false"})
        assert unchecked.status_code == 201 and "duplicates" not in unchecked.json()
        assert c.get("/health").json()["items"] == ITEMS + 4
        text = c.get("/metrics").text
        assert 'lookalike_errors_total{status="409",type="DuplicateImageError"} 2.0' in text


def test_an_uncalibrated_catalogue_says_how_to_calibrate(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)  # the 40-item pixels catalogue, never calibrated
    coffee = encode(photo("coffee"))  # the very bytes of coffee/whole
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/duplicates/calibration").json() is None
        assert_error(c.get("/duplicates"), 409, "CalibrationRequiredError", "POST /duplicates/calibrate")
        assert_error(c.post("/duplicates/check", files=upload(coffee)), 409, "CalibrationRequiredError",
                     "dedup --calibrate")
        for fields in ({"check_duplicates": "true"}, {"refuse": "near"}):
            assert_error(c.post("/items", files=upload(coffee), data=fields, headers=AUTH), 409,
                         "CalibrationRequiredError", "calibrate")
        refused = c.post("/items", files=upload(coffee), data={"refuse": "exact"}, headers=AUTH)  # no calibration
        assert_error(refused, 409, "DuplicateImageError")  # needed for exact copies
        assert refused.json()["duplicates"][0]["id"] == "coffee/whole"
        assert c.get("/health").json()["items"] == 40

        for headers, status in (({}, 401), ({"X-API-Key": "wrong-key-000000"}, 403)):
            assert_error(c.post("/duplicates/calibrate", params={"sample": 10}, headers=headers), status, "AuthError")
        assert c.get("/duplicates/calibration").json() is None
        calibrated = c.post("/duplicates/calibrate", params={"sample": 12, "seed": 3, "target_precision": 0.95},
                            headers=AUTH)
        assert calibrated.status_code == 200, calibrated.text
        summary = calibrated.json()
        assert summary["sample"] == 12 and summary["seed"] == 3 and summary["target_precision"] == 0.95
        assert summary["encoder"] == "pixels"
        assert c.get("/duplicates/calibration").json() == summary
        assert c.get("/duplicates").status_code == 200
        assert c.post("/duplicates/check", files=upload(coffee)).json()["duplicates"][0]["verdict"] == "exact"

    read_only = serve(catalog_copy, read_only=True)
    with httpx.Client(base_url=read_only.url, timeout=60) as c:
        assert_error(c.post("/duplicates/calibrate", headers=AUTH), 403, "AuthError", "read-only")
        assert c.get("/duplicates/calibration").json()["sample"] == 12


def test_a_catalogue_too_small_to_calibrate_is_409(serve: ServerFactory, tmp_path: Path) -> None:
    from lookalike.catalog import Catalog

    with Catalog(tmp_path / "small", "pixels") as cat:
        for name in ("coffee", "rocket", "coins"):
            cat.add(encode(photo(name)), id=name)
    server = serve(tmp_path / "small")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        assert_error(c.post("/duplicates/calibrate"), 409, "DuplicateDetectionError", "at least")


# -- hostile input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("refuse", "maybe"), ("refuse", "NEAR"), ("refuse", "x" * 5000),
                                              ("check_duplicates", "perhaps"), ("check_duplicates", "2")])
def test_bad_add_fields_are_422(dup: httpx.Client, field: str, value: str) -> None:
    response = dup.post("/items", files=upload(edited("moon.png")), data={field: value}, headers=AUTH)
    assert_error(response, 422, "InvalidParameterError", field)
    assert dup.get("/health").json()["items"] == ITEMS


def test_writes_without_the_key_are_refused(dup: httpx.Client) -> None:
    data = edited("moon.png")
    assert_error(dup.post("/items", files=upload(data), data={"check_duplicates": "true"}), 401, "AuthError")
    assert_error(dup.post("/items", files=upload(data), data={"refuse": "near"},
                          headers={"Authorization": "Bearer nope-nope-nope"}), 403, "AuthError")
    assert_error(dup.post("/duplicates/calibrate", params={"sample": 10}), 401, "AuthError")
    assert dup.get("/health").json()["items"] == ITEMS


@pytest.mark.parametrize("params", [
    {"k": "0"}, {"k": "-3"}, {"k": "abc"}, {"k": "100000"}, {"k": "9" * 40}, {"format": "xml"}, {"format": ""},
])
def test_bad_report_parameters_are_422(dup: httpx.Client, params: dict[str, str]) -> None:
    assert_error(dup.get("/duplicates", params=params), 422, "InvalidParameterError")


@pytest.mark.parametrize("params", [
    {"target_precision": "1.0"}, {"target_precision": "0.2"}, {"target_precision": "nan"},
    {"target_precision": "inf"}, {"target_precision": "abc"}, {"sample": "5"}, {"sample": str(10**9)},
    {"sample": "2.5"}, {"seed": "-1"}, {"seed": "9" * 30},
])
def test_bad_calibration_parameters_are_422(dup: httpx.Client, params: dict[str, str]) -> None:
    before = dup.get("/duplicates/calibration").json()
    assert_error(dup.post("/duplicates/calibrate", params=params, headers=AUTH), 422, "InvalidParameterError",
                 next(iter(params)))
    assert dup.get("/duplicates/calibration").json() == before  # refused before anything ran


def test_bad_uploads_to_check_are_4xx(dup: httpx.Client) -> None:
    assert_error(dup.post("/duplicates/check", files=upload(b"not an image at all")), 415, "NotAnImageError")
    assert_error(dup.post("/duplicates/check", files=upload(b"")), 400, "EmptyImageError")
    data = stored("coins.png")
    assert_error(dup.post("/duplicates/check", files=upload(data[: len(data) // 2])), 400)
    assert_error(dup.post("/duplicates/check", json={"image": "x"}), 415, words="multipart")
    assert_error(dup.post("/duplicates/check", files={"other": ("a.jpg", data, "image/jpeg")}), 422, words="image")
    for k in ("0", "abc", "100000"):
        assert_error(dup.post("/duplicates/check", files=upload(data), data={"k": k}), 422, words="k")
    bomb = _png_claiming(20_000, 20_000)  # 400 MP claimed in a few bytes: over the 40 MP limit
    assert_error(dup.post("/duplicates/check", files=upload(bomb, "b.png", "image/png")), 413, "ImageTooLargeError")
    assert_error(dup.get("/duplicates/check"), 405)
