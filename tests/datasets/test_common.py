"""The shared pieces: package exports, Dataset validation, slugs, split checks and format sniffing."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike.datasets as datasets
from lookalike.datasets import Dataset, DatasetError, DatasetNotFoundError, slugify
from lookalike.datasets._common import check_split
from lookalike.errors import InvalidParameterError, LookalikeError


def test_all_is_sorted_and_exported() -> None:
    # isort-style, as ruff's RUF022 sorts: CONSTANTS, then Classes, then functions.
    assert datasets.__all__ == sorted(datasets.__all__, key=lambda name: (not name.isupper(), name))
    for name in datasets.__all__:
        assert hasattr(datasets, name), name


def test_errors_fit_the_tree() -> None:
    assert issubclass(DatasetError, LookalikeError)
    assert issubclass(DatasetNotFoundError, DatasetError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert str(DatasetNotFoundError("/x", "why")) == "/x: why"


def _grey(n: int = 3) -> np.ndarray:
    return np.zeros((n, 4, 5), dtype=np.uint8)


def test_dataset_arrays_are_read_only_views() -> None:
    images, labels = _grey(), np.array([0, 1, 1], dtype=np.int64)
    data = Dataset(images, labels, ("a", "b"), "toy", "train")
    assert len(data) == 3
    with pytest.raises(ValueError):
        data.images[0, 0, 0] = 1
    with pytest.raises(ValueError):
        data.labels[0] = 1
    images[0, 0, 0] = 7  # the caller's array stays writable, and is shared
    assert data.images[0, 0, 0] == 7


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (np.zeros((3, 4, 5), dtype=np.float32), np.zeros(3, dtype=np.int64), "uint8"),
        (np.zeros((3, 4, 5, 4), dtype=np.uint8), np.zeros(3, dtype=np.int64), r"\(N, H, W, 3\)"),
        (_grey(), np.zeros(3, dtype=np.int32), "int64"),
        (_grey(), np.zeros(2, dtype=np.int64), r"shape \(3,\)"),
        (_grey(), np.array([0, 1, 2], dtype=np.int64), r"\[0, 2\)"),
        (_grey(), np.array([0, -1, 1], dtype=np.int64), r"\[0, 2\)"),
    ],
)
def test_dataset_rejects_bad_arrays(images: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        Dataset(images, labels, ("a", "b"), "toy", "train")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("T-shirt/top", "tshirt-top"),
        ("Ankle boot", "ankle-boot"),
        ("automobile", "automobile"),
        ("Crème brûlée", "creme-brulee"),
        ("  Men's  Shoes!! ", "mens-shoes"),
        ("???", ""),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_class_slugs_fall_back_to_the_class_id() -> None:
    data = Dataset(_grey(1), np.zeros(1, dtype=np.int64), ("Ankle boot", "???"), "toy", "train")
    assert data.class_slugs == ("ankle-boot", "class-1")


def test_check_split_names_the_choices() -> None:
    assert check_split("test", "f") == "test"
    with pytest.raises(InvalidParameterError, match=r"'split' parameter of f .*'test', 'train'.*'val'"):
        check_split("val", "f")


