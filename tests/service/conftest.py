"""Fixtures of the service tests: a small catalogue of real photographs and a live uvicorn on loopback.

The catalogue holds 8 photographs from ``skimage.data``, each whole and as its four quadrants (40 items, ids like
``coffee/whole`` and ``coffee/q1``), indexed with the cheap ``pixels`` encoder: searching a photo finds it whole,
and searching a box over one quadrant finds that quadrant, so a region search really changes the results.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage_photos import DATA_PHOTOS, data_photo, encode

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "immunohistochemistry", "colorwheel")
API_KEY = "test-key-0123456789"


def photo(name: str) -> Image.Image:
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    image = Image.fromarray(array.astype(np.uint8))
    image.thumbnail((320, 320))
    return image


def quadrants(image: Image.Image) -> list[Image.Image]:
    w, h = image.size
    return [image.crop((x, y, x + w // 2, y + h // 2)) for y in (0, h // 2) for x in (0, w // 2)]


@pytest.fixture(scope="session")
def photo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-item catalogue (pixels encoder) of 8 photographs and their quadrants; tests copy it before writing."""
    from lookalike.catalog import Catalog

    path = tmp_path_factory.mktemp("service") / "catalog"
    with Catalog(path, "pixels") as cat:
        for name in PHOTOS:
            image = photo(name)
            cat.add(encode(image), id=f"{name}/whole", metadata={"photo": name, "part": "whole"})
            for i, part in enumerate(quadrants(image)):
                cat.add(encode(part), id=f"{name}/q{i}", metadata={"photo": name, "part": f"q{i}"})
    return path



def relisted(image: Image.Image) -> Image.Image:
    """A re-listed copy of a photo: 70% of its size (it then loses the keeper's place), saved again as JPEG."""
    small = image.resize((image.width * 7 // 10, image.height * 7 // 10))
    return Image.open(io.BytesIO(encode(small, quality=50))).convert("RGB")


def edited(name: str) -> bytes:
    """A re-listing of a photo of the data folder: cropped by a few percent on each side, JPEG-compressed harder."""
    image = data_photo(name)
    w, h = image.size
    return encode(image.crop((w // 20, h // 25, w - w // 25, h - h // 20)), quality=60)


@pytest.fixture(scope="session")
def dup_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 distinct photographs (efficientnet-lite0) plus two re-listings, ``coffee-relisted`` and
    ``horse-relisted``, calibrated for duplicate detection (sample 24, seed 0) with the re-listings already in it,
    as a real catalogue is; tests copy it before writing."""
    from lookalike.catalog import Catalog

    path = tmp_path_factory.mktemp("duplicates") / "catalog"
    with Catalog(path, "efficientnet-lite0") as cat:
        for name in DATA_PHOTOS:
            cat.add(encode(data_photo(name)), id=name.split(".")[0], metadata={"photo": name})
        for name in ("coffee", "horse"):
            cat.add(encode(relisted(data_photo(f"{name}.png"))), id=f"{name}-relisted")
        cat.calibrate_duplicates(sample=24, seed=0)
    return path


@pytest.fixture
def catalog_copy(photo_catalog: Path, tmp_path: Path) -> Path:
    """A private copy of the photo catalogue, for tests that write."""
    return Path(shutil.copytree(photo_catalog, tmp_path / "catalog"))


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """``serve(catalog_path, **ServiceConfig fields)`` → a started LiveServer (stopped after the test)."""
    from lookalike.service import ServiceConfig, create_app

    started: list[LiveServer] = []

    def start(catalog: Path, **settings: Any) -> LiveServer:
        if "api_key" not in settings and not settings.get("read_only"):
            settings["api_key"] = API_KEY
        server = LiveServer(create_app(ServiceConfig(catalog, **settings)))
        started.append(server.__enter__())
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture(scope="module")
def read_server(photo_catalog: Path) -> Iterator[LiveServer]:
    """A writable-configured server over the shared photo catalogue, used by read-only tests of a module."""
    from lookalike.service import ServiceConfig, create_app

    with LiveServer(create_app(ServiceConfig(photo_catalog, api_key=API_KEY, max_upload_bytes=2**20,
                                             max_pixels=4_000_000))) as server:
        yield server


@pytest.fixture
def client(read_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=read_server.url, timeout=30) as c:
        yield c
