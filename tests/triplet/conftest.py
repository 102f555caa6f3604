"""Shared data of the triplet tests: 300 Fashion-MNIST images in class folders and their efficientnet-lite0
features, computed once per session (the trainer takes them as ``inputs``, so each test trains on cached features
as the real run does). Torch runs on one thread: the machine's two cores are shared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 Fashion-MNIST training images (30 a class) as PNG in 10 class subfolders."""
    from lookalike.datasets import export_image_folder, load_fashion_mnist

    out = tmp_path_factory.mktemp("triplet-fm") / "images"
    export_image_folder(load_fashion_mnist("train"), out, limit=300, seed=0)
    return out


@pytest.fixture(scope="session")
def fm_features(fm_folder: Path) -> dict[Path, np.ndarray]:
    """efficientnet-lite0 features of every image of ``fm_folder``, by path."""
    from lookalike.encoders import get_encoder

    paths = sorted(fm_folder.rglob("*.png"))
    features = get_encoder("efficientnet-lite0").encode(paths)
    return dict(zip(paths, features, strict=True))


@pytest.fixture(scope="session")
def inputs_of(fm_features: dict[Path, np.ndarray]) -> Callable[[Any], np.ndarray]:
    """``inputs_of(data)``: the cached features of ``data.paths``, in its order (what ``train(inputs=...)`` takes)."""

    def inputs(data: Any) -> np.ndarray:
        return np.stack([fm_features[Path(p)] for p in data.paths])

    return inputs
