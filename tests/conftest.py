"""Shared fixtures. The ONNX model cache lives in a per-session temporary directory, never in the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Export the pretrained encoder at most once per test session, into a temporary cache."""
    old = os.environ.get("LOOKALIKE_CACHE_DIR")
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["LOOKALIKE_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LOOKALIKE_CACHE_DIR", None)
    else:
        os.environ["LOOKALIKE_CACHE_DIR"] = old


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def fashion_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 Fashion-MNIST training images written as PNG, one subfolder per class (the e2e catalogue)."""
    from lookalike.datasets import export_image_folder, load_fashion_mnist

    out = tmp_path_factory.mktemp("fashion") / "images"
    export_image_folder(load_fashion_mnist("train"), out, limit=1000, seed=0)
    return out


@pytest.fixture(scope="session")
def fashion_queries(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """20 held-out Fashion-MNIST test images as PNG, in class subfolders."""
    from lookalike.datasets import export_image_folder, load_fashion_mnist

    out = tmp_path_factory.mktemp("fashion-queries")
    return export_image_folder(load_fashion_mnist("test"), out, limit=20, seed=1)
