"""Search options over HTTP: ``rerank`` and ``encoder`` on POST /search and GET /items/{id}/similar (the same
results as the library's), their hostile values, and a catalogue image searched by its own file scoring 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from skimage_photos import DATA_PHOTOS, data_photo
from synthetic_images import colour_families

from .conftest import API_KEY, LiveServer, ServerFactory, encode
from .test_api import AUTH, assert_error, ids, upload

ENC = "pixels:size=8"


_images = colour_families


def png(image: Image.Image) -> bytes:
    return encode(image, "PNG")


@pytest.fixture(scope="module")
def hashed_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 small images under ``pixels:size=8`` with ITQ codes (16 bits), the codes searched by default."""
    from lookalike.catalog import Catalog

    path = tmp_path_factory.mktemp("hashed") / "catalog"
    with Catalog(path, ENC) as cat:
        for i, img in enumerate(_images(80)):
            cat.add(png(img), id=f"i{i}", metadata={"family": i % 4})
        cat.fit_hasher("itq", 16)
    return path


@pytest.fixture(scope="module")
def hashed(hashed_catalog: Path) -> Iterator[httpx.Client]:
    from lookalike.service import ServiceConfig, create_app

    with LiveServer(create_app(ServiceConfig(hashed_catalog, api_key=API_KEY))) as server, \
            httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


QUERY = png(_images(1, seed=7)[0])


def test_rerank_and_encoder_give_the_library_s_results(hashed: httpx.Client, hashed_catalog: Path) -> None:
    from lookalike.catalog import Catalog

    with Catalog(hashed_catalog) as cat:
        codes = cat.encoder.spec
        by_codes = [h.id for h in cat.search(QUERY, k=10)]
        reranked = {n: [h.id for h in cat.search(QUERY, k=10, rerank=n)] for n in (12, 80)}
        exact = [h.id for h in cat.search(QUERY, k=10, encoder=ENC)]
        filtered = [h.id for h in cat.search(QUERY, k=5, rerank=20, where={"family": 2})]
        similar = [h.id for h in cat.similar("i3", k=5, rerank=30)]
    assert codes == f"{ENC}+itq:16"
    plain = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"))
    assert ids(plain) == by_codes and plain.json()["encoder"] == codes
    for n, expected in reranked.items():
        form = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"rerank": str(n)})
        assert ids(form) == expected and form.json()["encoder"] == codes
        raw = hashed.post("/search", params={"rerank": n}, content=QUERY, headers={"content-type": "image/png"})
        assert ids(raw) == expected
    assert reranked[80] == exact  # every candidate re-ranked: the exact float search
    floats = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"encoder": ENC})
    assert ids(floats) == exact and floats.json()["encoder"] == ENC
    assert all(-1.0 <= h["score"] <= 1.0 + 1e-6 for h in floats.json()["results"])
    where = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"),
                        data={"rerank": "20", "k": "5", "where": '{"family": 2}'})
    assert ids(where) == filtered
    more = hashed.get("/items/i3/similar", params={"k": 5, "rerank": 30})
    assert ids(more) == similar and "i3" not in similar
    same_space = hashed.get("/items/i3/similar", params={"k": 5, "encoder": ENC})
    assert same_space.json()["encoder"] == ENC and "i3" not in ids(same_space)


def test_rerank_zero_is_the_codes_own_order(hashed: httpx.Client) -> None:
    response = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"rerank": "0", "k": "5"})
    assert response.status_code == 200, response.text
    assert all(float(r["distance"]) == round(float(r["distance"])) for r in response.json()["results"])  # bits


@pytest.mark.parametrize("rerank", ["-1", str(10**30), "abc", "2.5", "x" * 10_000])
def test_hostile_rerank_is_422(hashed: httpx.Client, rerank: str) -> None:
    response = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"rerank": rerank})
    assert_error(response, 422, "InvalidParameterError", "'rerank' parameter")
    assert len(response.json()["error"]["message"]) < 300  # a 10 kB value is not echoed back
    query_string = hashed.post("/search", params={"rerank": rerank}, content=QUERY,
                               headers={"content-type": "image/png"})
    assert_error(query_string, 422, "InvalidParameterError", "rerank")
    assert_error(hashed.get("/items/i3/similar", params={"rerank": rerank}), 422, "InvalidParameterError", "rerank")


@pytest.mark.parametrize("encoder", ["efficientnet-lite0", "phash", "nope", "pixels:size=9", "x" * 150])
def test_an_encoder_the_catalogue_lacks_is_422(hashed: httpx.Client, encoder: str) -> None:
    response = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"encoder": encoder})
    assert_error(response, 422, "IncompatibleCatalogError")
    message = response.json()["error"]["message"]
    assert ENC in message and "/tmp" not in message and str(Path.cwd()) not in message  # no server paths
    assert_error(hashed.get("/items/i3/similar", params={"encoder": encoder}), 422, "IncompatibleCatalogError")


def test_hostile_encoder_values_are_422(hashed: httpx.Client) -> None:
    for value in ("x" * 10_000, "pixels:size=" + "9" * 300):
        response = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"), data={"encoder": value})
        assert_error(response, 422, words="encoder")
        assert len(response.json()["error"]["message"]) < 400


def test_rerank_without_codes_is_422(hashed: httpx.Client, client: httpx.Client) -> None:
    data = encode(data_photo("coffee.png"))
    assert_error(client.post("/search", files=upload(data), data={"rerank": "10"}), 422, "InvalidParameterError",
                 "rerank")
    assert_error(client.get("/items/coffee%2Fwhole/similar", params={"rerank": 10}), 422, "InvalidParameterError",
                 "rerank")
    float_search = hashed.post("/search", files=upload(QUERY, "q.png", "image/png"),
                               data={"encoder": ENC, "rerank": "10"})  # the float encoder has no codes
    assert_error(float_search, 422, "InvalidParameterError", "rerank")


@pytest.mark.parametrize("extra", [(), ("phash",)])
def test_a_catalogue_photo_searched_by_its_own_file_scores_one(serve: ServerFactory, tmp_path: Path,
                                                               extra: tuple[str, ...]) -> None:
    """800x800 JPEG bytes, decoded for the search as they were for ingest (the catalogue's one decode recipe,
    whatever extra encoders it keeps), give the very vector stored: that item first, at cosine 1."""
    from lookalike.catalog import Catalog

    big = encode(data_photo("coffee.png", side=1000).resize((800, 800), Image.Resampling.LANCZOS))
    with Catalog(tmp_path / "cat", "pixels", extra_encoders=list(extra)) as cat:
        for name in DATA_PHOTOS[:5]:
            cat.add(encode(data_photo(name)), id=name.split(".")[0])
        cat.add(big, id="coffee-800")
        assert [e.spec for e in cat.encoders] == ["pixels", *extra]
    server = serve(tmp_path / "cat")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for response in (c.post("/search", files=upload(big)),
                         c.post("/search", content=big, headers={"content-type": "image/jpeg"})):
            best = response.json()["results"][0]
            assert response.status_code == 200 and best["id"] == "coffee-800", response.text
            assert best["score"] >= 1 - 1e-6 and response.json()["query"]["width"] == 800
        if extra:
            by_hash = c.post("/search", files=upload(big), data={"encoder": "phash"}).json()
            assert by_hash["encoder"] == "phash" and by_hash["results"][0]["id"] == "coffee-800"
            assert by_hash["results"][0]["distance"] == 0


def test_an_upload_is_checked_for_exact_copies_by_default(serve: ServerFactory, catalog_copy: Path) -> None:
    """check_duplicates absent on an uncalibrated catalogue: exact copies are reported, the item is added."""
    from .conftest import photo

    server = serve(catalog_copy)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
        copy = c.post("/items", files=upload(encode(photo("coffee"))), data={"id": "coffee-again"})
        assert copy.status_code == 201, copy.text
        assert [(m["id"], m["verdict"]) for m in copy.json()["duplicates"]] == [("coffee/whole", "exact")]
        assert copy.json()["duplicates"][0]["thumbnail_url"] == "/items/coffee%2Fwhole/thumbnail"
        skipped = c.post("/items", files=upload(encode(photo("coffee"))), data={"check_duplicates": "false"})
        assert skipped.status_code == 201 and "duplicates" not in skipped.json()
        fresh = c.post("/items", files=upload(encode(photo("coins").rotate(90, expand=True))))
        assert fresh.status_code == 201 and fresh.json()["duplicates"] == []
        assert c.get("/health").json()["items"] == 43


def test_openapi_documents_rerank_and_encoder(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/search"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"image", "k", "box", "where", "rerank", "encoder"} <= set(body)
    assert body["rerank"]["type"] == "integer" and body["rerank"]["minimum"] == 1
    for operation in (post, schema["paths"]["/items/{item_id}/similar"]["get"]):
        assert {"rerank", "encoder"} <= {p["name"] for p in operation["parameters"]}
