"""Shared data of the localiser tests: small seeded composite folders, and localisers trained on them once per
session (torch on one thread: the machine's two cores are shared)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.evaluation.composites import CompositeSet, make_composite, products, write_composites  # noqa: E402
from lookalike.localise.config import LocaliserConfig  # noqa: E402

TINY = LocaliserConfig(layer="stage5", size=128, hidden=32, per_image=8, batch_size=64)
SMALL = LocaliserConfig(layer="stage5", size=224, hidden=128, per_image=32, batch_size=128)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> CompositeSet:
    """16 training composites (seeded)."""
    return write_composites(tmp_path_factory.mktemp("loc-tiny"), "train", 16, seed=3)


@pytest.fixture(scope="session")
def tiny_model(tiny_set: CompositeSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A localiser trained for 2 epochs on ``tiny_set`` (a few seconds)."""
    from lookalike.localise.data import load_box_data
    from lookalike.localise.trainer import train

    out = tmp_path_factory.mktemp("loc-tiny-model") / "tiny.localiser"
    train(TINY, load_box_data(tiny_set.root / "boxes.csv", TINY), 2, out, device="cpu", log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A localiser trained for 4 epochs on 240 training composites: it finds products well enough to help search
    (about 15 s)."""
    from lookalike.localise.data import load_box_data
    from lookalike.localise.trainer import train

    made = write_composites(tmp_path_factory.mktemp("loc-small"), "train", 240, seed=11)
    out = tmp_path_factory.mktemp("loc-small-model") / "small.localiser"
    train(SMALL, load_box_data(made.root / "boxes.csv", SMALL), 4, out, device="cpu", log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """(a folder of 40 clean Fashion-MNIST test products, 4 a class, as PNG; composite queries of 6 of them on
    test-strip photographs)."""
    from PIL import Image

    from lookalike.evaluation.composites import background_photos

    root = tmp_path_factory.mktemp("loc-shop")
    (root / "items").mkdir()
    (root / "queries").mkdir()
    images, labels, _ = products("test")
    picks = np.concatenate([np.flatnonzero(labels == c)[:4] for c in range(10)])
    for i in picks:
        Image.fromarray(images[i]).convert("RGB").save(root / "items" / f"p{i:05d}.png")
    rng = np.random.default_rng(5)
    photos = background_photos("test")
    queries = []
    for n, i in enumerate(picks[[1, 6, 13, 22, 29, 35]]):
        image, _box = make_composite(images[i], photos[n % len(photos)], rng)
        path = root / "queries" / f"p{i:05d}.png"
        image.save(path)
        queries.append(path)
    return root / "items", queries


@contextlib.contextmanager
def live_server(catalog: Path) -> Iterator[str]:
    """The read-only service of ``catalog`` on a free loopback port (uvicorn in a thread); yields its URL."""
    import uvicorn

    from lookalike.service import ServiceConfig, create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = create_app(ServiceConfig(catalog, read_only=True))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
