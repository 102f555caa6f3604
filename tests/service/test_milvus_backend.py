"""The HTTP service over a catalogue on Milvus Lite: the same answers as over the in-memory index, writes that
reach Milvus, and a Milvus that fails answered 503 (the write itself kept)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from milvus_server import milvus_uri

from lookalike.catalog import Catalog
from lookalike.errors import IndexBackendError
from lookalike.index import MilvusIndex

from .conftest import API_KEY, ServerFactory, encode, photo, quadrants
from .test_api import ids, upload

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_search_add_and_delete_over_milvus_match_the_local_index(photo_catalog: Path, tmp_path: Path,
                                                                   serve: ServerFactory) -> None:
    local_path, milvus_path = tmp_path / "local", tmp_path / "milvus"
    shutil.copytree(photo_catalog, local_path)
    shutil.copytree(photo_catalog, milvus_path)
    local = serve(local_path, read_only=True)
    remote = serve(milvus_path, backend=milvus_uri())
    with httpx.Client(base_url=local.url, timeout=60) as a, httpx.Client(base_url=remote.url, timeout=60) as b:
        for name in ("coffee", "rocket"):
            query = upload(encode(quadrants(photo(name))[1]))
            assert ids(b.post("/search", files=query, data={"k": "5"})) == ids(
                a.post("/search", files=query, data={"k": "5"}))
        added = b.post("/items", files=upload(encode(photo("chelsea").rotate(180))), data={"id": "upside-down"},
                       headers=AUTH)
        assert added.status_code == 201, added.text
        found = ids(b.post("/search", files=upload(encode(photo("chelsea").rotate(180))), data={"k": "1"}))
        assert found == ["upside-down"]
        assert b.delete("/items/upside-down", headers=AUTH).status_code in (200, 204)
        assert "upside-down" not in ids(b.post("/search", files=upload(encode(photo("chelsea").rotate(180)))))


def test_a_failing_milvus_is_503_and_the_write_is_kept(photo_catalog: Path, tmp_path: Path, serve: ServerFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cat"
    shutil.copytree(photo_catalog, path)
    with Catalog(path, backend=milvus_uri()) as cat:
        cat.search(encode(photo("coffee")), k=1)  # attached and synced
    server = serve(path)

    def down(self: MilvusIndex, *args: object, **kwargs: object) -> None:
        raise IndexBackendError("Milvus (test) failed to upsert: connection refused")

    monkeypatch.setattr(MilvusIndex, "add", down)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        added = client.post("/items", files=upload(encode(photo("camera").rotate(90))), data={"id": "late"},
                            headers=AUTH)
        assert added.status_code == 201, added.text  # committed in SQLite and journalled
        refused = client.post("/search", files=upload(encode(photo("coffee"))))
        assert refused.status_code == 503 and "connection refused" in str(refused.json()["error"])
        monkeypatch.undo()
        assert "late" in ids(client.post("/search", files=upload(encode(photo("camera").rotate(90))),
                                         data={"k": "3"}))
