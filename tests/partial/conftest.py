"""A small catalogue of scikit-image photographs with partial-search descriptors (phash: no model to run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.partial import PartialSearch

NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "brick")


def photo(name: str) -> np.ndarray:
    from skimage import data
    return np.asarray(getattr(data, name)())


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("partial-photos")
    for name in NAMES:
        Image.fromarray(photo(name)).save(root / f"{name}.png")
    return root


def build(path: Path, photos: Path) -> Path:
    with Catalog(path, "phash", create=True) as cat:
        cat.index_folder(photos)
        PartialSearch.enable(cat)
    return path


@pytest.fixture(scope="session")
def partial_catalog(tmp_path_factory: pytest.TempPathFactory, photo_folder: Path) -> Path:
    return build(tmp_path_factory.mktemp("partial-cat") / "cat", photo_folder)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
