"""``POST /similar`` ("more like these, less like those") through a live uvicorn: the library's answer in the
SearchResponse shape, and hostile bodies answered with the usual 4xx error JSON, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lookalike import Catalog

from .conftest import ServerFactory
from .test_api import assert_error, ids

LIKE, UNLIKE = ["coffee/whole", "coffee/q1"], ["rocket/whole", "coins/whole"]


def test_like_and_unlike_give_the_librarys_answer(client: httpx.Client, photo_catalog: Path) -> None:
    response = client.post("/similar", json={"like": LIKE, "unlike": UNLIKE, "k": 8})
    found = ids(response)
    with Catalog(photo_catalog, read_only=True) as cat:
        expected = cat.similar(LIKE, unlike=UNLIKE, k=8)
    assert found == [h.id for h in expected] and len(found) == 8 and not set(found) & {*LIKE, *UNLIKE}
    body = response.json()
    assert body["query"] == {"width": None, "height": None, "format": None, "box": None, "crop": None,
                             "item": None, "like": LIKE, "unlike": UNLIKE}
    assert body["k"] == 8 and body["encoder"] == "pixels" and set(body["timings_ms"]) == {"search"}
    assert [h["score"] for h in body["results"]] == pytest.approx([h.score for h in expected], abs=1e-6)
    assert body["results"][0]["similar_url"].startswith("/items/")


def test_one_liked_item_is_the_get_similar_answer(client: httpx.Client) -> None:
    posted = client.post("/similar", json={"like": ["rocket/whole"], "k": 5})
    got = client.get("/items/rocket%2Fwhole/similar", params={"k": 5})
    assert ids(posted) == ids(got)
    assert posted.json()["results"] == got.json()["results"] and posted.json()["query"]["like"] == ["rocket/whole"]


def test_where_encoder_and_the_default_k(client: httpx.Client) -> None:
    response = client.post("/similar", json={"like": LIKE, "unlike": [], "where": {"part": "whole"},
                                             "encoder": "pixels"})
    found = ids(response)
    assert len(found) == 7 and all(i.endswith("/whole") for i in found) and "coffee/whole" not in found
    assert response.json()["k"] == 10 and response.json()["query"]["unlike"] == []


HUGE = "x" * 100_000


@pytest.mark.parametrize(("body", "status", "kind", "words"), [
    ({"like": ["coffee/whole", "ghost"], "unlike": ["nope"]}, 404, "ItemNotFoundError", "'ghost', 'nope'"),
    ({"like": ["ghost"]}, 404, "ItemNotFoundError", "ghost"),
    ({"like": LIKE, "unlike": ["coffee/q1"]}, 422, "InvalidParameterError", "both liked and unliked"),
    ({"like": []}, 422, "InvalidParameterError", "at least one liked"),
    ({"unlike": UNLIKE}, 422, "InvalidParameterError", "'like' parameter is required"),
    ({"like": ["coffee/whole", "coffee/whole"]}, 422, "InvalidParameterError", "more than once"),
    ({"like": [f"x{i}" for i in range(60)], "unlike": [f"y{i}" for i in range(41)]}, 422, "InvalidParameterError",
     "at most 100 item ids in all"),
    ({"like": [f"x{i}" for i in range(10_000)]}, 422, "InvalidParameterError", "'like'"),
    ({"like": "coffee/whole"}, 422, "InvalidParameterError", "'like'"),
    ({"like": [1, 2]}, 422, "InvalidParameterError", "'like'"),
    ({"like": ["coffee/whole", None]}, 422, "InvalidParameterError", "'like'"),
    ({"like": [{"id": "coffee/whole"}]}, 422, "InvalidParameterError", "'like'"),
    ({"like": LIKE, "unlike": "rocket/whole"}, 422, "InvalidParameterError", "'unlike'"),
    ({"like": [HUGE]}, 422, "InvalidParameterError", "1–1024 characters"),
    ({"like": ["a\x00b"]}, 422, "InvalidParameterError", "printable"),
    ({"like": LIKE, "k": 0}, 422, "InvalidParameterError", "'k'"),
    ({"like": LIKE, "k": 10**30}, 422, "InvalidParameterError", "'k'"),
    ({"like": LIKE, "k": 201}, 422, "InvalidParameterError", "The 'k' parameter must be an integer in [1, 200]"),
    ({"like": LIKE, "k": "10"}, 422, "InvalidParameterError", "'k'"),
    ({"like": LIKE, "k": True}, 422, "InvalidParameterError", "'k'"),
    ({"like": LIKE, "k": 2.5}, 422, "InvalidParameterError", "'k'"),
    ({"like": LIKE, "rerank": 5}, 422, "InvalidParameterError", "rerank"),
    ({"like": LIKE, "rerank": -1}, 422, "InvalidParameterError", "'rerank'"),
    ({"like": LIKE, "encoder": "nonsense"}, 422, "IncompatibleCatalogError", "nonsense"),
    ({"like": LIKE, "encoder": "e" * 300}, 422, "InvalidParameterError", "'encoder'"),
    ({"like": LIKE, "encoder": 7}, 422, "InvalidParameterError", "'encoder'"),
    ({"like": LIKE, "where": "part=whole"}, 422, "InvalidParameterError", "'where'"),
    ({"like": LIKE, "where": {"part": [1, 2]}}, 422, "InvalidParameterError", ""),
    ({"like": LIKE, "where": {"part": HUGE}}, 413, "PayloadTooLargeError", "'where'"),
    ({"like": LIKE, "beta": 2}, 422, "InvalidParameterError", "'beta'"),
    ([LIKE], 422, "InvalidParameterError", ""),
    ("coffee/whole", 422, "InvalidParameterError", ""),
    (None, 422, "InvalidParameterError", ""),
])
def test_hostile_bodies_are_4xx_with_the_error_json(client: httpx.Client, body: object, status: int, kind: str,
                                                    words: str) -> None:
    assert_error(client.post("/similar", json=body), status, kind, words)


@pytest.mark.parametrize(("content", "ctype", "status"), [
    (b'{"like": ["coffee/whole"', "application/json", 422),  # not JSON
    (b"", "application/json", 422),
    (b"\xff\xfe", "application/json", 422),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),  # nested past the JSON parser's recursion
    (b'{"like": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "application/json", 400),
    (b'{"like": ["coffee/whole"]}', "text/plain", 422),
    (b"like=coffee/whole", "application/x-www-form-urlencoded", 422),
])
def test_malformed_bodies_are_4xx(client: httpx.Client, content: bytes, ctype: str, status: int) -> None:
    response = client.post("/similar", content=content, headers={"content-type": ctype})
    assert response.status_code in (400, 422) and response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["status"] == response.status_code and error["message"] and "Traceback" not in error["message"]


def test_an_oversized_body_is_413(serve: ServerFactory, photo_catalog: Path) -> None:
    server = serve(photo_catalog, read_only=True, max_upload_bytes=2**16, max_metadata_bytes=2**10)
    body = json.dumps({"like": ["coffee/whole"], "unlike": ["y" * 1000] * 200}).encode()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/similar", content=body, headers={"content-type": "application/json"})
        assert_error(response, 413)
        assert ids(http.post("/similar", json={"like": ["coffee/whole"]}))  # a read-only service answers it


def test_openapi_documents_post_similar(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/similar"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(request["properties"]) == {"like", "unlike", "k", "where", "encoder", "rerank"}
    assert request["required"] == ["like"] and request["properties"]["like"]["maxItems"] == 100
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchResponse")
    assert {"404", "422"} <= set(post["responses"])
    assert {"like", "unlike"} <= set(schema["components"]["schemas"]["QueryInfo"]["properties"])
