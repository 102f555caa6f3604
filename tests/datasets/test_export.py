"""Exporting a Dataset to an image folder: layout, pixels, determinism, stratified subsets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.datasets import (
    EXPORT_FORMATS,
    FASHION_MNIST_DIR,
    Dataset,
    export_dataset,
    export_image_folder,
    load_image_folder,
    stratified_subset,
    write_idx,
)
from lookalike.errors import InvalidParameterError

from . import write_cifar_folder


def _dataset(n: int = 30, colour: bool = False, split: str = "test") -> Dataset:
    rng = np.random.default_rng(0)
    shape = (n, 6, 5, 3) if colour else (n, 6, 5)
    labels = np.arange(n, dtype=np.int64) % 3
    names = ("T-shirt/top", "Bag", "Ankle boot")
    return Dataset(rng.integers(0, 256, shape, np.uint8), labels, names, "toy", split)


def test_layout_names_and_pixels(tmp_path: Path) -> None:
    data = _dataset()
    paths = export_image_folder(data, tmp_path)
    assert len(paths) == 30
    assert [p.relative_to(tmp_path).as_posix() for p in paths[:4]] == [
        "tshirt-top/test-00000.png",
        "bag/test-00001.png",
        "ankle-boot/test-00002.png",
        "tshirt-top/test-00003.png",
    ]
    with Image.open(paths[7]) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), data.images[7])


def test_colour_is_rgb_and_prefix_replaces_the_split(tmp_path: Path) -> None:
    data = _dataset(colour=True)
    paths = export_image_folder(data, tmp_path, prefix="cifar_test")
    assert paths[5] == tmp_path / "ankle-boot" / "cifar_test-00005.png"
    with Image.open(paths[5]) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), data.images[5])


@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_rerun_is_byte_identical_and_skips_matching_files(fmt: str, tmp_path: Path) -> None:
    data = _dataset(n=6, colour=True)
    first = export_image_folder(data, tmp_path / "a", format=fmt)
    contents = [p.read_bytes() for p in first]
    os.utime(first[0], ns=(1, 1))  # an untouched file keeps this mtime
    again = export_image_folder(data, tmp_path / "a", format=fmt)
    assert again == first and [p.read_bytes() for p in again] == contents
    assert first[0].stat().st_mtime_ns == 1
    assert first[0].suffix == EXPORT_FORMATS[fmt][1]
    other = export_image_folder(data, tmp_path / "b", format=fmt)
    assert [p.read_bytes() for p in other] == contents


def test_a_changed_file_is_rewritten(tmp_path: Path) -> None:
    data = _dataset(n=3)
    paths = export_image_folder(data, tmp_path)
    original = paths[1].read_bytes()
    paths[1].write_bytes(b"stale")
    export_image_folder(data, tmp_path)
    assert paths[1].read_bytes() == original
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left


def test_limit_is_stratified_seeded_and_traceable(tmp_path: Path) -> None:
    data = _dataset(n=30)
    paths = export_image_folder(data, tmp_path / "a", limit=9, seed=3)
    assert len(paths) == 9
    per_class = {slug: len(list((tmp_path / "a" / slug).iterdir())) for slug in data.class_slugs}
    assert per_class == {"tshirt-top": 3, "bag": 3, "ankle-boot": 3}
    for path in paths:  # the index in the name is the row in the split
        index = int(path.stem.split("-")[1])
        assert data.class_slugs[data.labels[index]] == path.parent.name
        with Image.open(path) as image:
            np.testing.assert_array_equal(np.asarray(image), data.images[index])
    assert export_image_folder(data, tmp_path / "b", limit=9, seed=3) == [
        tmp_path / "b" / p.relative_to(tmp_path / "a") for p in paths
    ]
    assert export_image_folder(data, tmp_path / "c", limit=9, seed=4) != [
        tmp_path / "c" / p.relative_to(tmp_path / "a") for p in paths
    ]


def test_stratified_subset_keeps_proportions() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20, dtype=np.int64)
    chosen = stratified_subset(labels, 10, seed=0)
    assert list(np.bincount(labels[chosen], minlength=3)) == [5, 3, 2]
    assert list(chosen) == sorted(set(chosen.tolist()))
    # Largest remainder: 7 * (0.5, 0.3, 0.2) = (3.5, 2.1, 1.4) -> (4, 2, 1).
    assert list(np.bincount(labels[stratified_subset(labels, 7, seed=0)], minlength=3)) == [4, 2, 1]
    # A larger share of a class only adds items to it.
    assert set(stratified_subset(labels, 10, seed=1)) <= set(stratified_subset(labels, 20, seed=1))
    np.testing.assert_array_equal(stratified_subset(labels, None), np.arange(100))
    np.testing.assert_array_equal(stratified_subset(labels, 1000), np.arange(100))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "gif"}, "'format' parameter .*'bmp', 'jpeg', 'png', 'tiff'. Got 'gif'"),
        ({"limit": 0}, "'limit' parameter must be an int >= 1 or None. Got 0"),
        ({"limit": True}, "'limit' parameter"),
        ({"limit": 2.5}, "'limit' parameter"),
        ({"seed": -1}, "'seed' parameter must be a non-negative int. Got -1"),
        ({"prefix": "../up"}, "'prefix' parameter .* Got '../up'"),
        ({"prefix": ""}, "'prefix' parameter"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        export_image_folder(_dataset(), tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_classes_sharing_a_slug_are_refused(tmp_path: Path) -> None:
    data = Dataset(np.zeros((1, 2, 2), np.uint8), np.zeros(1, np.int64), ("T-shirt", "tshirt"), "toy", "x")
    with pytest.raises(InvalidParameterError, match="'T-shirt' and 'tshirt' of toy share the folder name"):
        export_image_folder(data, tmp_path)


def test_exported_folder_loads_back(tmp_path: Path) -> None:
    export_image_folder(_dataset(), tmp_path)
    folder = load_image_folder(tmp_path)
    assert folder.class_names == ("ankle-boot", "bag", "tshirt-top") and len(folder) == 30


def test_export_dataset_fashion_mnist_fixture(tmp_path: Path) -> None:
    source = tmp_path / "idx"
    source.mkdir()
    write_idx(source / "t10k-images-idx3-ubyte.gz", np.full((20, 28, 28), 9, np.uint8))
    write_idx(source / "t10k-labels-idx1-ubyte.gz", (np.arange(20) % 10).astype(np.uint8))
    paths = export_dataset("fashion-mnist", tmp_path / "out", split="test", limit=10, root=source)
    assert sorted(p.parent.name for p in paths)[:2] == ["ankle-boot", "bag"] and len(paths) == 10


def test_export_dataset_cifar10_fixture(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    paths = export_dataset("cifar10", tmp_path / "out", split="train", root=folder)
    assert len(paths) == 20 and paths[0] == tmp_path / "out" / "airplane" / "train-00000.png"
    with Image.open(paths[0]) as image:
        assert image.mode == "RGB" and image.size == (32, 32)
        assert image.getpixel((2, 1)) == (10, 20, 30)  # (x=col, y=row) of CIFAR_KNOWN_PIXEL


def test_export_dataset_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="'cifar10', 'fashion-mnist'. Got 'mnist'"):
        export_dataset("mnist", tmp_path)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="needs `apt-get install dataset-fashion-mnist`")
def test_export_real_fashion_mnist_subset(tmp_path: Path) -> None:
    paths = export_dataset("fashion-mnist", tmp_path, split="test", limit=20, seed=0, root=FASHION_MNIST_DIR)
    assert len(paths) == 20
    assert {p.parent.name for p in paths} == {
        *("tshirt-top", "trouser", "pullover", "dress", "coat"),
        *("sandal", "shirt", "sneaker", "bag", "ankle-boot"),
    }
    assert all(len(list(tmp_path.joinpath(slug).iterdir())) == 2 for slug in {p.parent.name for p in paths})
    indices = [int(p.stem.removeprefix("test-")) for p in paths]
    assert indices == sorted(indices)  # returned in dataset order
