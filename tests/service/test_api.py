"""The REST API through a live uvicorn on loopback, against a real catalogue of photographs."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import httpx
import pytest

from .conftest import API_KEY, LiveServer, ServerFactory, encode, photo, quadrants

AUTH = {"X-API-Key": API_KEY}


def upload(data: bytes, name: str = "q.jpg", mime: str = "image/jpeg") -> dict[str, tuple[str, bytes, str]]:
    return {"image": (name, data, mime)}


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["results"]]


def assert_error(response: httpx.Response, status: int, kind: str | None = None, words: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["status"] == status and body["message"]
    if kind is not None:
        assert body["type"] == kind, body
    assert words.lower() in body["message"].lower(), body


# -- reading --------------------------------------------------------------------------------------------------


def test_search_by_upload_finds_the_photo_with_scores_and_thumbnails(client: httpx.Client) -> None:
    query = photo("coffee").resize((300, 200))  # not the stored bytes: another size, re-encoded
    response = client.post("/search", files=upload(encode(query, quality=70)), data={"k": "5"})
    body = response.json()
    assert ids(response)[0] == "coffee/whole"
    assert body["k"] == 5 and len(body["results"]) == 5 and body["encoder"] == "pixels"
    scores = [h["score"] for h in body["results"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.95
    assert set(body["timings_ms"]) == {"decode", "encode", "search"}
    hit = body["results"][0]
    assert hit["thumbnail_url"] == "/items/coffee%2Fwhole/thumbnail" and hit["metadata"]["photo"] == "coffee"
    thumb = client.get(hit["thumbnail_url"], params={"size": 64})
    assert thumb.status_code == 200 and thumb.headers["content-type"] in ("image/jpeg", "image/png")
    assert client.get(hit["image_url"]).content == encode(photo("coffee"))


def test_search_a_box_finds_the_quadrant(client: httpx.Client) -> None:
    image = photo("astronaut")
    w, h = image.size
    whole = ids(client.post("/search", files=upload(encode(image))))
    region = client.post("/search", files=upload(encode(image)), data={"box": f"{w // 2},0,{w // 2},{h // 2}"})
    assert whole[0] == "astronaut/whole"
    assert ids(region)[0] == "astronaut/q1" and ids(region) != whole
    assert region.json()["query"] == {"width": w, "height": h, "format": "JPEG", "box": f"{w // 2},0,{w // 2},{h // 2}",
                                      "crop": None, "item": None, "like": None, "unlike": None}


def test_search_with_raw_bytes_and_query_parameters(client: httpx.Client) -> None:
    data = encode(photo("chelsea"), "PNG")
    response = client.post("/search", params={"k": 3, "where": json.dumps({"part": "whole"})}, content=data,
                           headers={"content-type": "image/png"})
    assert ids(response)[0] == "chelsea/whole" and len(ids(response)) == 3
    assert all(h["metadata"]["part"] == "whole" for h in response.json()["results"])
    octets = client.post("/search", content=data, headers={"content-type": "application/octet-stream"})
    assert ids(octets)[0] == "chelsea/whole"


def test_similar_excludes_the_item_and_filters(client: httpx.Client) -> None:
    response = client.get("/items/rocket%2Fwhole/similar", params={"k": 4, "where": '{"photo": "rocket"}'})
    found = ids(response)
    assert "rocket/whole" not in found and len(found) == 4 and all(i.startswith("rocket/") for i in found)
    assert response.json()["query"]["item"] == "rocket/whole"


def test_items_get_list_and_paging(client: httpx.Client) -> None:
    item = client.get("/items/camera%2Fq2").json()
    assert item["id"] == "camera/q2" and item["metadata"] == {"photo": "camera", "part": "q2"}
    assert item["thumbnail_url"].startswith("/items/camera%2Fq2/thumbnail?v=")
    first, second = client.get("/items", params={"limit": 15}).json(), client.get(
        "/items", params={"offset": 15, "limit": 15}).json()
    assert first["total"] == 40 and len(first["items"]) == 15 and len(second["items"]) == 15
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    wholes = client.get("/items", params={"where": '{"part": "whole"}', "limit": 100}).json()
    assert wholes["total"] == 8 and all(i["id"].endswith("/whole") for i in wholes["items"])


def test_health_stats_metrics_and_openapi(client: httpx.Client) -> None:
    client.post("/search", files=upload(encode(photo("coins"))))
    assert client.get("/health").json() == {"status": "ok", "items": 40, "writable": True}
    stats = client.get("/stats").json()
    assert stats["items"] == 40 and stats["encoder"] == "pixels" and stats["index"]["vectors"] == 40
    assert stats["bytes_on_disk"] > 0 and stats["limits"]["max_upload_bytes"] == 2**20
    text = client.get("/metrics").text
    for stage in ("decode", "encode", "search"):
        assert f'lookalike_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'lookalike_request_seconds_count{method="POST",route="/search",status="200"}' in text
    assert "coins" not in text  # labelled by route templates, never by raw paths
    schema = client.get("/openapi.json").json()
    assert {"/search", "/items", "/items/{item_id}", "/health", "/stats", "/metrics"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/search"]["post"]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in docs.text  # Swagger UI from the installed package, not a CDN: /docs works offline
        assert client.get(asset).status_code == 200


def test_web_page_and_static_files_are_served(client: httpx.Client) -> None:
    for path in ("/", "/browse"):
        page = client.get(path)
        assert page.status_code == 200 and "<title>lookalike</title>" in page.text
    assert "searchFromItem" in client.get("/static/app.js").text
    assert "http" not in client.get("/").text.replace("http-equiv", "")  # nothing from a CDN


# -- hostile input --------------------------------------------------------------------------------------------


def test_non_image_empty_and_truncated_uploads_are_4xx(client: httpx.Client) -> None:
    assert_error(client.post("/search", files=upload(b"hello, this is not an image")), 415, "NotAnImageError")
    assert_error(client.post("/search", files=upload(b"%PDF-1.4 x")), 415, "UnsupportedFormatError", "PDF")
    assert_error(client.post("/search", files=upload(b"")), 400, "EmptyImageError")
    assert_error(client.post("/search", content=b"", headers={"content-type": "image/jpeg"}), 400)
    data = encode(photo("coffee"))
    assert_error(client.post("/search", files=upload(data[: len(data) // 2])), 400, "TruncatedImageError")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert client.post("/search", files=upload(svg, "x.svg", "image/svg+xml")).status_code == 415


def test_malformed_multipart_is_400(client: httpx.Client) -> None:
    bad = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\nabc"  # never closed
    response = client.post("/search", content=bad, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert 400 <= response.status_code < 500 and "error" in response.json()
    no_boundary = client.post("/search", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert_error(no_boundary, 400)
    no_image = client.post("/search", files={"other": ("a.jpg", b"123", "image/jpeg")})
    assert_error(no_image, 422, "InvalidParameterError", "image")
    as_text = client.post("/search", data={"image": "not a file"})
    assert as_text.status_code in (415, 422)
    assert_error(client.post("/search", json={"image": "x"}), 415, words="multipart")


def test_decompression_bomb_and_oversized_pixels_are_413(client: httpx.Client) -> None:
    from PIL import Image

    big = encode(Image.new("RGB", (2500, 2000), "white"), "PNG")  # 5 MP in a few KB; the limit is 4 MP
    assert len(big) < 100_000
    assert_error(client.post("/search", files=upload(big, "b.png", "image/png")), 413, "ImageTooLargeError", "pixels")
    bomb = _png_claiming(100_000, 100_000)
    assert_error(client.post("/search", files=upload(bomb, "b.png", "image/png")), 413, "ImageTooLargeError",
                 "10,000,000,000 pixels, over the limit of 4,000,000 (ImageLimits.max_pixels)")


def test_oversized_bytes_are_413(client: httpx.Client) -> None:
    noise = encode(photo("astronaut"), "BMP") + b"\0" * 800_000  # > 1 MiB in all, the image limit
    assert len(noise) > 2**20
    assert_error(client.post("/search", files=upload(noise, "n.bmp", "image/bmp")), 413)
    huge = b"\xff\xd8\xff" + b"\0" * (3 * 2**20)  # past the whole-body limit: refused before it is parsed
    assert_error(client.post("/search", content=huge, headers={"content-type": "image/jpeg"}), 413)

    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        for _ in range(64):
            yield b"\0" * 65536

    assert_error(client.post("/search", content=chunks(), headers={"content-type": "image/jpeg"}), 413)


def _raw(url: str, request: bytes, wait: float = 10.0) -> tuple[bytes, float]:
    """Send raw bytes to the server and read until it closes (or ``wait`` s pass): (answer, seconds to answer)."""
    import socket
    import time
    from urllib.parse import urlsplit

    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=wait) as conn:
        start = time.monotonic()
        conn.sendall(request)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
        return answer, time.monotonic() - start


def test_a_declared_oversized_body_is_413_at_once(read_server: LiveServer) -> None:
    """Issue 11.10: declaring Content-Length: 30000000 and sending nothing waited instead of answering."""
    head = (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 30000000\r\n\r\n")
    answer, seconds = _raw(read_server.url, head)
    assert answer.startswith(b"HTTP/1.1 413") and b"over the limit" in answer, answer[:300]
    assert seconds < 2.0  # answered before any of the body, not after a drain or a timeout


def test_a_body_that_stops_arriving_is_408(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy, read_only=True, body_timeout=0.5)
    head = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\nabc"
    answer, seconds = _raw(server.url, head)
    assert answer.startswith(b"HTTP/1.1 408") and b"stopped arriving for 0.5 s" in answer, answer[:300]
    assert seconds < 5.0


def test_a_non_utf8_form_field_is_400_and_adds_nothing(serve: ServerFactory, catalog_copy: Path) -> None:
    """Issue 11.10: a Latin-1 multipart ``id`` was accepted (Starlette decodes what is not UTF-8 as Latin-1)."""
    server = serve(catalog_copy)
    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="id"\r\n\r\ncaf\xe9\r\n'
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + encode(photo("coins")) + b"\r\n--" + boundary + b"--\r\n")
    with httpx.Client(base_url=server.url) as http:
        before = http.get("/health").json()["items"]
        response = http.post("/items", content=body, headers={
            **AUTH, "content-type": "multipart/form-data; boundary=" + boundary.decode()})
        assert_error(response, 400, words="the form field 'id' is not UTF-8 text")
        utf8 = body.replace(b"caf\xe9", "café".encode())
        added = http.post("/items", content=utf8, headers={
            **AUTH, "content-type": "multipart/form-data; boundary=" + boundary.decode()})
        assert added.status_code == 201 and added.json()["id"] == "café", added.text
        assert http.get("/health").json()["items"] == before + 1


@pytest.mark.parametrize("box", ["a,b,c,d", "1,2,3", "0,0,0,10", "-1,0,10,10", "1,2,3,4,5", "9" * 40 + ",0,1,1"])
def test_bad_box_is_422(client: httpx.Client, box: str) -> None:
    assert_error(client.post("/search", files=upload(encode(photo("coins"))), data={"box": box}), 422,
                 "InvalidParameterError", "box")


def test_box_outside_the_image_is_422(client: httpx.Client) -> None:
    response = client.post("/search", files=upload(encode(photo("coins"))), data={"box": "5000,5000,10,10"})
    assert_error(response, 422, "InvalidRegionError", "outside")
    w, h = photo("coins").size  # issue 11.9: partly outside was clipped silently, 1x1 was searched
    partly = client.post("/search", files=upload(encode(photo("coins"))), data={"box": f"{w - 60},0,100,100"})
    assert_error(partly, 422, "InvalidRegionError", f"extends past the {w}x{h} image")
    tiny = client.post("/search", files=upload(encode(photo("coins"))), data={"box": "0,0,1,1"})
    assert_error(tiny, 422, "InvalidRegionError", "a region must be at least 16x16 pixels")


@pytest.mark.parametrize("k", ["0", "-1", "abc", "1e3", "100000", "2.5", "9" * 50])
def test_bad_k_is_422(client: httpx.Client, k: str) -> None:
    assert_error(client.post("/search", files=upload(encode(photo("coins"))), data={"k": k}), 422, words="k")
    assert_error(client.get("/items/coins%2Fwhole/similar", params={"k": k}), 422)


def test_bad_filters_and_params_are_4xx(client: httpx.Client) -> None:
    data = encode(photo("coins"))
    assert_error(client.post("/search", files=upload(data), data={"where": "{not json"}), 422, words="json")
    assert_error(client.post("/search", files=upload(data), data={"where": "[1, 2]"}), 422, words="object")
    assert_error(client.post("/search", files=upload(data), data={"where": '{"a": [1]}'}), 422)
    assert_error(client.post("/search", files=upload(data), data={"where": '{"a\\"b": 1}'}), 422)
    huge = json.dumps({"k": "x" * 20_000})
    assert_error(client.post("/search", files=upload(data), data={"where": huge}), 413)
    assert_error(client.post("/search", files=upload(data), data={"where": "[" * 10_000}), 422)
    assert_error(client.get("/items", params={"limit": 0}), 422)
    huge_int = '{"a": 999999999999999999999999}'  # issue 11: was a 500 (SQLite's OverflowError)
    assert_error(client.get("/items", params={"where": huge_int}), 422, "InvalidParameterError", "64-bit range")
    assert_error(client.post("/search", files=upload(data), data={"where": huge_int}), 422, words="64-bit range")
    assert_error(client.get("/items", params={"offset": -1}), 422)
    assert_error(client.get("/items/coins%2Fwhole/thumbnail", params={"size": 10_000}), 422)


@pytest.mark.parametrize(("method", "url", "params", "words"), [
    ("get", "/items", {"offset": -1}, "The 'offset' parameter must be an integer in [0, "),
    ("get", "/items", {"offset": "x"}, "The 'offset' parameter must be an integer in [0, "),
    ("get", "/items", {"offset": 2**70}, "The 'offset' parameter must be an integer in [0, "),
    ("get", "/items", {"limit": 501}, "The 'limit' parameter must be an integer in [1, 500]. Got '501' instead."),
    ("get", "/items/coins%2Fwhole/thumbnail", {"size": 3}, "The 'size' parameter must be an integer in [16, 512]"),
    ("get", "/duplicates", {"format": "xml"}, "The 'format' parameter must be one of 'json', 'csv'. Got 'xml'"),
    ("get", "/items", {"where": "{bad"}, "The 'where' parameter must be a JSON object"),
    ("get", "/items", {"where": "[1]"}, "The 'where' parameter must be a JSON object"),
    ("get", "/items", {"k": "x", "where": "3"}, "The 'where' parameter must be a JSON object"),
])
def test_parameter_errors_have_the_one_wording(client: httpx.Client, method: str, url: str,
                                               params: dict[str, object], words: str) -> None:
    """FastAPI's own validation is answered in the wording of lookalike.validation, not pydantic's."""
    response = client.request(method, url, params=params)
    assert_error(response, 422, "InvalidParameterError", words)
    assert "Input should" not in response.text and "pydantic" not in response.text


def test_write_parameter_errors_have_the_one_wording(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = http.get("/health").json()["items"]
        data = encode(photo("coins"))
        assert_error(http.post("/items", files=upload(data), data={"check_duplicates": "maybe"}, headers=AUTH),
                     422, words="The 'check_duplicates' parameter must be true or false. Got 'maybe' instead.")
        assert_error(http.post("/items", data={"id": "x"}, headers=AUTH), 422,
                     words="The 'image' parameter is required.")
        both = http.post("/duplicates/calibrate", params={"sample": "abc", "target_precision": 2}, headers=AUTH)
        assert_error(both, 422, words="The 'target_precision' parameter must be a real number in [0.5, 0.999]")
        assert "The 'sample' parameter must be an integer in [10, 2000]. Got 'abc' instead." in both.text
        assert http.get("/health").json()["items"] == before  # nothing added


def test_unknown_items_and_routes_are_404(client: httpx.Client) -> None:
    assert_error(client.get("/items/nope"), 404, "ItemNotFoundError")
    assert_error(client.get("/items/nope/similar"), 404, "ItemNotFoundError")
    assert_error(client.get("/items/nope/image"), 404)
    assert_error(client.get("/nowhere"), 404)
    assert_error(client.delete("/search"), 405)


@pytest.mark.parametrize("path", [
    "/items/..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/items/%2e%2e%2f%2e%2e%2fcatalog.sqlite/image",
    "/items/%2Fetc%2Fpasswd/image",
    "/items/..%5C..%5Ccatalog.sqlite/thumbnail",
    "/items/....%2F%2F....%2F%2Fetc%2Fpasswd",
    "/static/..%2F..%2Fcatalog%2Fcatalog.sqlite",
    "/static/%2e%2e/app.py",
    "/static/..%5Capp.py",
])
def test_path_tricks_never_reach_files(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["status"] == 404
    assert b"root:" not in response.content and b"SQLite" not in response.content


def test_raw_dot_segments_never_reach_files(read_server: LiveServer) -> None:
    """Request targets sent verbatim (no client-side normalisation of '..')."""
    import http.client

    for target in ("/static/../app.py", "/static/../../catalog/catalog.sqlite", "/items/../../etc/passwd",
                   "/items/x/../../../etc/passwd/image", "//etc/passwd"):
        conn = http.client.HTTPConnection("127.0.0.1", read_server.port, timeout=10)
        conn.putrequest("GET", target, skip_host=False, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status in (400, 404), (target, response.status)
        assert b"root:" not in body and b"SQLite" not in body and b"def create_app" not in body


# -- writing --------------------------------------------------------------------------------------------------


def test_write_endpoints_need_the_api_key(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    data = encode(photo("coffee").rotate(90, expand=True))
    with httpx.Client(base_url=server.url) as c:
        for headers, status in (({}, 401), ({"X-API-Key": "wrong-key-000000"}, 403),
                                ({"Authorization": "Bearer wrong-key-000000"}, 403),
                                ({"Authorization": "Basic x"}, 401)):
            assert_error(c.post("/items", files=upload(data), headers=headers), status, "AuthError")
            assert_error(c.put("/items/coffee%2Fwhole", data={"metadata": "{}"}, headers=headers), status)
            assert_error(c.delete("/items/coffee%2Fwhole", headers=headers), status)
        assert c.post("/items", files=upload(data), headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 201
        assert c.get("/health").json()["items"] == 41
        assert c.get("/items/coffee%2Fwhole").status_code == 200


def test_read_only_service_refuses_writes(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy, read_only=True)
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/health").json()["writable"] is False
        response = c.post("/items", files=upload(encode(photo("coffee"))), headers=AUTH)
        assert_error(response, 403, "AuthError", "read-only")
        assert_error(c.delete("/items/coffee%2Fwhole", headers=AUTH), 403)
        assert ids(c.post("/search", files=upload(encode(photo("coffee")))))[0] == "coffee/whole"


def test_no_key_and_not_read_only_refuses_to_start(catalog_copy: Path) -> None:
    from lookalike.errors import InvalidParameterError
    from lookalike.service import ServiceConfig

    with pytest.raises(InvalidParameterError, match="LOOKALIKE_API_KEY"):
        ServiceConfig(catalog_copy)
    with pytest.raises(InvalidParameterError, match="8 characters"):
        ServiceConfig(catalog_copy, api_key="short")


def test_add_update_delete_round_trip(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    new = photo("hubble_deep_field")
    with httpx.Client(base_url=server.url, headers=AUTH) as c:
        meta = '{"photo": "hubble"}'
        added = c.post("/items", files=upload(encode(new)), data={"id": "space/hubble", "metadata": meta})
        assert added.status_code == 201, added.text
        assert added.json()["id"] == "space/hubble" and added.json()["metadata"] == {"photo": "hubble"}
        assert ids(c.post("/search", files=upload(encode(new))))[0] == "space/hubble"
        assert_error(c.post("/items", files=upload(encode(new)), data={"id": "space/hubble"}), 409,
                     "DuplicateItemError")
        auto = c.post("/items", files=upload(encode(new, "PNG"), "h.png", "image/png")).json()
        assert len(auto["id"]) == 12  # from the content hash

        updated = c.put("/items/space%2Fhubble", data={"metadata": '{"photo": "hubble", "new": true}'})
        assert updated.json()["metadata"] == {"photo": "hubble", "new": True}
        swapped = c.put("/items/space%2Fhubble", files=upload(encode(photo("chelsea").rotate(180))))
        assert swapped.status_code == 200 and swapped.json()["sha256"] != added.json()["sha256"]
        assert_error(c.put("/items/space%2Fhubble"), 422, words="nothing to update")
        assert_error(c.put("/items/missing", data={"metadata": "{}"}), 404)

        assert c.delete("/items/space%2Fhubble").json() == {"deleted": "space/hubble"}
        assert_error(c.get("/items/space%2Fhubble"), 404)
        assert_error(c.delete("/items/space%2Fhubble"), 404)
        assert "space/hubble" not in ids(c.post("/search", files=upload(encode(new)), data={"k": "41"}))
        assert c.get("/health").json()["items"] == 41


def test_hostile_writes_are_4xx(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy, max_upload_bytes=200_000, max_pixels=1_000_000)
    data = encode(photo("coins"))
    with httpx.Client(base_url=server.url, headers=AUTH) as c:
        assert_error(c.post("/items", files=upload(b"GIF89a garbage")), 400)
        assert_error(c.post("/items", files=upload(b"just text")), 415)
        assert_error(c.post("/items", data={"id": "x"}), 422, words="image")
        assert_error(c.post("/items", files=upload(data), data={"metadata": json.dumps({"a": "x" * 20_000})}), 413)
        assert_error(c.post("/items", files=upload(data), data={"metadata": "[1]"}), 422)
        assert_error(c.post("/items", files=upload(data), data={"metadata": "{oops"}), 422)
        assert_error(c.post("/items", files=upload(data), data={"id": "bad\nid"}), 422, "InvalidParameterError")
        assert_error(c.post("/items", files=upload(data), data={"id": "x" * 2000}), 422)
        big = encode(photo("astronaut"), "BMP")  # 300 KB > 200 KB
        assert_error(c.post("/items", files=upload(big, "a.bmp", "image/bmp")), 413, "PayloadTooLargeError")
        from PIL import Image

        wide = encode(Image.new("RGB", (1200, 1000)), "PNG")
        assert_error(c.post("/items", files=upload(wide, "w.png", "image/png")), 413, "ImageTooLargeError")
        assert_error(c.put("/items/coins%2Fwhole", files=upload(b"nope")), 415)
        assert c.get("/health").json()["items"] == 40


def test_ids_with_path_tricks_stay_inside_the_catalogue(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    data = encode(photo("chelsea").transpose(0))
    before = {p for p in catalog_copy.parent.rglob("*")}
    with httpx.Client(base_url=server.url, headers=AUTH) as c:
        for item_id in ("../../evil.jpg", "/etc/passwd", "..\\..\\x", "%2e%2e%2fy"):
            response = c.post("/items", files=upload(data), data={"id": item_id})
            assert response.status_code == 201, response.text
            assert response.json()["id"] == item_id
            item_url = response.json()["image_url"]
            assert c.get(item_url).content == data
            assert c.get(f"/items/{item_id}").status_code in (200, 404)  # unencoded: never a file, at most the item
        created = {p for p in catalog_copy.parent.rglob("*")} - before
        assert created and all(p.is_relative_to(catalog_copy / "images") for p in created), created
        assert not (catalog_copy.parent.parent / "evil.jpg").exists()
        for item_id in ("../../evil.jpg", "/etc/passwd", "..\\..\\x", "%2e%2e%2fy"):
            from urllib.parse import quote

            assert c.delete(f"/items/{quote(item_id, safe='')}").status_code == 200
        assert c.get("/health").json()["items"] == 40


def test_metrics_count_errors(serve: ServerFactory, catalog_copy: Path) -> None:
    server = serve(catalog_copy)
    with httpx.Client(base_url=server.url) as c:
        c.post("/search", files=upload(b"nope"))
        c.post("/items", files=upload(b"nope"))
        text = c.get("/metrics").text
    assert 'lookalike_errors_total{status="415",type="NotAnImageError"} 1.0' in text
    assert 'lookalike_errors_total{status="401",type="AuthError"} 1.0' in text
    assert 'route="/items",status="401"' in text


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` pixels (CRC fixed): a decompression bomb."""
    import struct
    import zlib

    from PIL import Image

    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = 8 + 8  # signature, then length + "IHDR"
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_quadrant_helper_matches_the_catalogue() -> None:
    assert len(quadrants(photo("coins"))) == 4
