"""Fuzzing the HTTP inputs (issue 11), seeded and bounded, against a live server (uvicorn on loopback): any request
may be refused, but only with a 4xx and the JSON error body, and a refused write adds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from fuzzing import FUZZ, mutated
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lookalike import Catalog

from .conftest import ServerFactory

API_KEY = "fuzz-key-0123456789"
HTTP_FUZZ = settings(FUZZ, max_examples=100)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "cat"
    rng = np.random.default_rng(1)
    with Catalog(path, "pixels") as cat:
        for i in range(12):
            cat.add(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)), id=f"i{i}",
                    metadata={"n": i})
    return path


@pytest.fixture
def client(serve: ServerFactory, catalog: Path) -> Iterator[httpx.Client]:
    server = serve(catalog, api_key=API_KEY, max_upload_bytes=2**20, max_pixels=4_000_000)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _is_clean_refusal(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["error"]["status"] == response.status_code and body["error"]["message"]


TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", "0", "-1", "1e9", "10", "nan", "0,0,8,8", "{}",
                                                         '{"n": 1}', "[1]", "9" * 30, "\x00", "true"]))


@HTTP_FUZZ
@given(k=TEXT, box=TEXT, where=TEXT, rerank=TEXT, encoder=TEXT, image=st.one_of(mutated(), st.binary(max_size=64)))
def test_search_answers_4xx_or_results_never_5xx(client: httpx.Client, k: str, box: str, where: str, rerank: str,
                                                 encoder: str, image: bytes) -> None:
    form = {"k": k, "box": box, "where": where, "rerank": rerank, "encoder": encoder}
    response = client.post("/search", files={"image": ("q", image, "application/octet-stream")},
                           data={key: value for key, value in form.items() if value})
    _is_clean_refusal(response)


@HTTP_FUZZ
@given(path=st.text(max_size=30), offset=TEXT, limit=TEXT, where=TEXT, size=TEXT)
def test_reads_answer_4xx_or_200_never_5xx(client: httpx.Client, path: str, offset: str, limit: str, where: str,
                                           size: str) -> None:
    _is_clean_refusal(client.get("/items", params={"offset": offset, "limit": limit, "where": where}))
    quoted = quote(path, safe="")  # any text, percent-encoded as a client must send it
    for url in (f"/items/{quoted}", f"/items/{quoted}/similar", f"/items/{quoted}/thumbnail"):
        _is_clean_refusal(client.get(url, params={"size": size}))


@HTTP_FUZZ
@given(item_id=TEXT, metadata=TEXT, refuse=TEXT, check=TEXT, image=st.one_of(mutated(), st.binary(max_size=64)))
def test_a_refused_add_writes_nothing(client: httpx.Client, item_id: str, metadata: str, refuse: str, check: str,
                                      image: bytes) -> None:
    before = client.get("/health").json()["items"]
    form = {"id": item_id, "metadata": metadata, "refuse": refuse, "check_duplicates": check}
    response = client.post("/items", headers={"X-API-Key": API_KEY},
                           files={"image": ("x", image, "application/octet-stream")},
                           data={key: value for key, value in form.items() if value})
    _is_clean_refusal(response)
    after = client.get("/health").json()["items"]
    if response.status_code == 201:
        assert after == before + 1
        added = json.loads(response.text)["id"]
        assert client.delete(f"/items/{added}", headers={"X-API-Key": API_KEY}).status_code == 200
    else:
        assert after == before


JSON_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(),
                                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)
IDS = st.one_of(st.lists(st.sampled_from([f"i{i}" for i in range(14)]), max_size=5), JSON_VALUE)


@HTTP_FUZZ
@given(like=IDS, unlike=IDS, k=JSON_VALUE, where=JSON_VALUE, rerank=JSON_VALUE, encoder=JSON_VALUE,
       extra=st.dictionaries(st.text(max_size=8), JSON_VALUE, max_size=2), raw=st.binary(max_size=40))
def test_similar_from_examples_answers_4xx_or_results_never_5xx(
        client: httpx.Client, like: object, unlike: object, k: object, where: object, rerank: object,
        encoder: object, extra: dict[str, object], raw: bytes) -> None:
    body = {**extra, "like": like, "unlike": unlike, "k": k, "where": where, "rerank": rerank, "encoder": encoder}
    response = client.post("/similar", json=body)
    _is_clean_refusal(response)
    if response.status_code == 200:
        assert isinstance(like, list) and isinstance(unlike, list)
        found = {hit["id"] for hit in response.json()["results"]}
        assert not found & {*like, *unlike}
    _is_clean_refusal(client.post("/similar", content=raw, headers={"content-type": "application/json"}))
