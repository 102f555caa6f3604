"""Similarity judgements over HTTP (issue 14, part 3): POST /triplets (a write, with the API key), GET /triplets
(a page of judgements, or every triplet as CSV), and broken, hostile and oversized bodies that write nothing."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lookalike import Catalog

from .conftest import API_KEY, LiveServer, ServerFactory
from .test_api import assert_error

AUTH = {"X-API-Key": API_KEY}
REF = "coffee/whole"


def _counts(http: httpx.Client, reference: str | None = None) -> dict:
    params = {} if reference is None else {"reference": reference}
    response = http.get("/triplets", params=params)
    assert response.status_code == 200, response.text
    return response.json()["counts"]


def test_judge_list_and_export(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert _counts(http) == {"judgements": 0, "references": 0, "triplets": 0}
        r = http.post("/triplets", json={"reference": REF, "similar": ["coffee/q0", "coffee/q1"],
                                         "dissimilar": ["rocket/whole"]}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json() == {"reference": REF, "counts": {"judgements": 3, "references": 1, "triplets": 2}}
        r = http.post("/triplets", json={"reference": "rocket/whole", "dissimilar": ["coffee/whole"]}, headers=AUTH)
        assert r.json()["counts"] == {"judgements": 1, "references": 1, "triplets": 0}
        page = http.get("/triplets", params={"reference": REF}).json()
        assert [(j["item"], j["similar"]) for j in page["judgements"]] == [
            ("coffee/q0", True), ("coffee/q1", True), ("rocket/whole", False)]
        assert page["counts"]["triplets"] == 2 and page["offset"] == 0 and page["limit"] == 100
        assert len(http.get("/triplets", params={"offset": 1, "limit": 2}).json()["judgements"]) == 2
        csv_response = http.get("/triplets", params={"format": "csv"})
        assert csv_response.headers["content-type"].startswith("text/csv")
        assert "triplets.csv" in csv_response.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(csv_response.text)))
        assert rows == [["query", "positive", "negative"], [REF, "coffee/q0", "rocket/whole"],
                        [REF, "coffee/q1", "rocket/whole"]]
        # a new verdict replaces the old one, and clear forgets
        r = http.post("/triplets", json={"reference": REF, "dissimilar": ["coffee/q1"], "clear": ["coffee/q0"]},
                      headers=AUTH)
        assert r.json()["counts"] == {"judgements": 2, "references": 1, "triplets": 0}
        assert http.delete("/items/rocket%2Fwhole", headers=AUTH).status_code == 200  # takes its judgements
        assert _counts(http) == {"judgements": 1, "references": 1, "triplets": 0}
    with Catalog(catalog_copy) as cat:  # stored with the catalogue
        assert [(j.reference, j.item, j.similar) for j in cat.judgements.list()] == [(REF, "coffee/q1", False)]


def test_judging_needs_the_api_key_and_a_writable_service(serve: ServerFactory, catalog_copy: Path) -> None:
    body = {"reference": REF, "similar": ["coffee/q0"]}
    server = serve(catalog_copy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert_error(http.post("/triplets", json=body), 401, words="API key")
        assert_error(http.post("/triplets", json=body, headers={"X-API-Key": "wrong-key-0123456789"}), 403)
        assert _counts(http)["judgements"] == 0
    server = serve(catalog_copy, read_only=True)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert_error(http.post("/triplets", json=body, headers=AUTH), 403)
        assert http.get("/triplets").status_code == 200  # reading is for everyone


BAD_BODIES = [
    (b"", 422, "JSON object"),
    (b"{not json", 422, "JSON object"),
    (b"\xff\xfe\x00garbage", 422, "JSON object"),
    (b"[1, 2]", 422, "JSON object"),
    (b'"coffee/whole"', 422, "JSON object"),
    (b"[" * 150_000 + b"]" * 150_000, 413, "at most"),
    (b"[" * 5_000 + b"]" * 5_000, 422, "JSON object"),
    (b'{"similar": ["coffee/q0"]}', 422, "'reference' required"),
    (b'{"reference": "coffee/whole", "similar": ["coffee/q0"], "evil": 1}', 422, "takes reference"),
    (b'{"reference": 7, "similar": ["coffee/q0"]}', 422, "item id must be"),
    (b'{"reference": ["coffee/whole"], "similar": ["coffee/q0"]}', 422, "item id must be"),
    (b'{"reference": "coffee/whole", "similar": "coffee/q0"}', 422, "list of item ids"),
    (b'{"reference": "coffee/whole", "similar": {"a": 1}}', 422, "list of item ids"),
    (b'{"reference": "coffee/whole", "similar": [null]}', 422, "item id must be"),
    (b'{"reference": "coffee/whole", "similar": [["coffee/q0"]]}', 422, "item id must be"),
    (b'{"reference": "coffee/whole"}', 422, "at least one item id"),
    (b'{"reference": "coffee/whole", "similar": ["coffee/whole"]}', 422, "against itself"),
    (b'{"reference": "coffee/whole", "similar": ["coffee/q0"], "dissimilar": ["coffee/q0"]}', 422, "twice"),
    (b'{"reference": "nope", "similar": ["coffee/q0"]}', 404, "nope"),
    (b'{"reference": "coffee/whole", "similar": ["coffee/q0", "../../etc/passwd"]}', 404, "etc/passwd"),
    (b'{"reference": "coffee/whole", "similar": ["a\\u0000b"]}', 422, "item id must be"),
]


@pytest.fixture(scope="module")
def judged(photo_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A writable server over a private copy holding one judgement; the tests of bad input must leave it so."""
    from lookalike.service import ServiceConfig, create_app

    path = Path(shutil.copytree(photo_catalog, tmp_path_factory.mktemp("triplets") / "catalog"))
    with LiveServer(create_app(ServiceConfig(path, api_key=API_KEY))) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/triplets", json={"reference": REF, "similar": ["coffee/q2"]}, headers=AUTH).is_success
        yield http


@pytest.mark.parametrize(("body", "status", "words"), BAD_BODIES)
def test_bad_judgements_are_4xx_and_write_nothing(judged: httpx.Client, body: bytes, status: int,
                                                  words: str) -> None:
    r = judged.post("/triplets", content=body, headers={**AUTH, "content-type": "application/json"})
    assert_error(r, status, words=words)
    assert _counts(judged) == {"judgements": 1, "references": 1, "triplets": 0}


def test_too_many_ids_and_oversized_ids_are_refused(judged: httpx.Client) -> None:
    many = {"reference": REF, "similar": [f"x{i}" for i in range(1001)]}
    assert_error(judged.post("/triplets", json=many, headers=AUTH), 422, words="at most 1000")
    long = {"reference": REF, "similar": ["x" * 5000]}
    assert_error(judged.post("/triplets", json=long, headers=AUTH), 422, words="item id must be")
    huge = {"reference": REF, "similar": ["x" * 300_000]}
    assert_error(judged.post("/triplets", json=huge, headers=AUTH), 413)
    assert _counts(judged)["judgements"] == 1


@pytest.mark.parametrize(("params", "status"), [
    ({"reference": "nope"}, 404), ({"limit": 0}, 422), ({"limit": 100_000}, 422), ({"offset": -1}, 422),
    ({"format": "xml"}, 422), ({"format": "csv", "reference": REF}, 422), ({"limit": "abc"}, 422),
])
def test_bad_listing_parameters_are_4xx(judged: httpx.Client, params: dict, status: int) -> None:
    assert_error(judged.get("/triplets", params=params), status)


def test_the_openapi_schema_documents_the_triplets(judged: httpx.Client) -> None:
    paths = judged.get("/openapi.json").json()["paths"]
    body = paths["/triplets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"reference", "similar", "dissimilar", "clear"}
    assert "401" in paths["/triplets"]["post"]["responses"]
    assert "text/csv" in paths["/triplets"]["get"]["responses"]["200"]["content"]
