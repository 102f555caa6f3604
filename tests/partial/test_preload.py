"""The service loads the partial-search index in the background at start (``Service.warm_up`` →
``PartialState.preload``): the first partial query finds it loaded, a catalogue without descriptors starts nothing,
and a broken descriptor setting is reported by the query, not by a crashed start."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.errors import LookalikeError
from lookalike.partial import SETTING

from .conftest import photo

CROP = (150, 100, 256, 256)


def _crop_bytes() -> bytes:
    import io

    x, y, w, h = CROP
    out = io.BytesIO()
    Image.fromarray(photo("astronaut")[y : y + h, x : x + w]).save(out, "PNG")
    return out.getvalue()


def _service(path: Path, **settings: object):  # noqa: ANN202
    from lookalike.service import ServiceConfig
    from lookalike.service.core import Service

    return Service(ServiceConfig(path, **settings))


@pytest.fixture
def copied(partial_catalog: Path, tmp_path: Path) -> Path:
    """A copy of the partial-search catalogue this test may change."""
    copy = tmp_path / "cat"
    shutil.copytree(partial_catalog, copy)
    return copy


def test_warm_up_loads_the_index_in_the_background_and_the_first_query_uses_it(copied: Path) -> None:
    service = _service(copied, read_only=True)
    try:
        assert not service.partial.ready.is_set()
        service.warm_up()
        assert service.partial.ready.wait(120), service.partial.error
        retriever = service.partial.get()
        index = retriever.index
        assert index is not None and len(index) == 8 and service.partial.load_seconds is not None
        answer = service.search_partial(_crop_bytes(), k=2, box=None)
        assert answer["results"][0]["id"] == "astronaut.png"
        assert service.partial.get() is retriever and retriever.index is index  # loaded once, not again
    finally:
        service.close()


def test_a_catalogue_without_descriptors_preloads_nothing(photo_folder: Path, tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", "phash", create=True) as cat:
        cat.index_folder(photo_folder)
    service = _service(tmp_path / "cat", read_only=True)
    try:
        service.warm_up()
        assert service.partial.preload() is None and not service.partial.ready.is_set()
        with pytest.raises(LookalikeError, match="--partial"):
            service.search_partial(_crop_bytes(), k=2, box=None)
    finally:
        service.close()


def test_a_broken_descriptor_setting_fails_the_preload_quietly_and_the_query_loudly(copied: Path) -> None:
    with Catalog(copied) as cat:
        cat.put_setting(SETTING, "nonsense:12")  # as a hand-edited or newer catalogue might hold
    service = _service(copied, read_only=True)
    try:
        thread = service.partial.preload()
        assert thread is not None
        thread.join(60)
        assert not thread.is_alive() and not service.partial.ready.is_set()
        assert isinstance(service.partial.error, LookalikeError)
        with pytest.raises(LookalikeError):
            service.search_partial(_crop_bytes(), k=2, box=None)
        assert service.cat.count() == 8  # the catalogue itself is untouched
    finally:
        service.close()


def test_over_http_the_index_is_loaded_before_the_first_partial_query(copied: Path) -> None:
    from lookalike.service import ServiceConfig, create_app
    from tests.service.conftest import LiveServer

    app = create_app(ServiceConfig(copied, read_only=True))
    with LiveServer(app) as live:
        assert app.state.service.partial.ready.wait(120)
        assert httpx.get(f"{live.url}/health").status_code == 200
        r = httpx.post(f"{live.url}/search/partial", files={"image": ("q.png", _crop_bytes(), "image/png")})
        assert r.status_code == 200 and r.json()["results"][0]["id"] == "astronaut.png"
