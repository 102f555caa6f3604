"""Fashion-MNIST: the IDX reader and writer on tiny files, the loader on a fixture, then on the real data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from lookalike.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    DatasetError,
    DatasetNotFoundError,
    load_fashion_mnist,
    read_idx,
    write_idx,
)
from lookalike.errors import InvalidParameterError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(dtype: type, name: str, tmp_path: Path) -> None:
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert not back.flags.writeable


def test_idx_bytes_match_the_format_by_hand(tmp_path: Path) -> None:
    # The header LeCun's page describes: 0x00 0x00, type code 0x0C (int32), 1 dimension, size big-endian.
    write_idx(tmp_path / "x.idx", np.array([1, 258], dtype=np.int32))
    assert (tmp_path / "x.idx").read_bytes() == bytes.fromhex("0000 0c01 00000002 00000001 00000102")
    (tmp_path / "y.idx").write_bytes(b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6)))
    np.testing.assert_array_equal(read_idx(tmp_path / "y.idx"), [[0, 1, 2], [3, 4, 5]])


def test_gzip_is_recognised_by_content_and_reproducible(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()  # no mtime in the header
    (tmp_path / "renamed").write_bytes((tmp_path / "a.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "renamed"), array)


def _idx(array: np.ndarray) -> bytes:
    header = bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "too short for an IDX header: 0 bytes"),
        (b"\x00\x00\x08", "too short"),
        (b"\x1f\x8b\x08\x00", "corrupt or truncated gzip"),
        (b"PK\x03\x04" + bytes(20), "bad magic number 0x504b0304: not an IDX file"),
        (b"\x00\x00\x07\x01" + bytes(8), "unknown IDX data type code 0x07"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00\x08\x03" + bytes(8), "truncated header: 3 dimensions need 16 bytes, got 12"),
        (_idx(np.zeros((2, 3)))[:-1], r"truncated: shape \(2, 3\) of uint8 needs 6 data bytes, found 5"),
        (_idx(np.zeros((2, 3))) + b"\x00", "trailing bytes: .* found 7"),
    ],
)
def test_corrupt_idx_is_rejected_with_the_file_and_reason(content: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as caught:
        read_idx(path)
    assert caught.value.source == str(path)


def test_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(_idx(np.zeros((50, 50))), mtime=0)[:-20])
    with pytest.raises(DatasetError, match=f"{path}: corrupt or truncated gzip stream"):
        read_idx(path)


def test_missing_idx_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        read_idx(tmp_path / "nothing.gz")


def test_write_idx_refuses_types_idx_lacks(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="uint16"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
    with pytest.raises(InvalidParameterError, match=r"shape \(\)"):
        write_idx(tmp_path / "x", np.array(3, dtype=np.uint8))


def _write_fixture(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_a_fixture_folder(gz: bool, tmp_path: Path) -> None:
    _write_fixture(tmp_path, gz=gz)
    train, test = load_fashion_mnist("train", root=tmp_path), load_fashion_mnist("test", root=str(tmp_path))
    assert (train.name, train.split, len(train)) == ("fashion-mnist", "train", 20)
    assert (test.split, len(test)) == ("test", 10)
    assert train.images.shape == (20, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and list(train.labels[:11]) == [*range(10), 0]
    assert train.class_names == FASHION_MNIST_CLASSES
    images_file = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    np.testing.assert_array_equal(train.images, read_idx(images_file))


def test_root_argument_beats_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_fixture(tmp_path / "env", n_test=3)
    _write_fixture(tmp_path / "arg", n_test=4)
    monkeypatch.setenv("LOOKALIKE_FASHION_MNIST", str(tmp_path / "env"))
    assert len(load_fashion_mnist("test")) == 3
    assert len(load_fashion_mnist("test", root=tmp_path / "arg")) == 4


def test_missing_folder_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as caught:
        load_fashion_mnist("train", root=tmp_path / "absent")
    assert caught.value.source == str(tmp_path / "absent")


def test_missing_file_is_named(tmp_path: Path) -> None:
    _write_fixture(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz: missing"):
        load_fashion_mnist("test", root=tmp_path)


def test_images_and_labels_must_agree(tmp_path: Path) -> None:
    _write_fixture(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz: expected 10 uint8 labels"):
        load_fashion_mnist("test", root=tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, dtype=np.uint8))
    with pytest.raises(DatasetError, match="label 10 is not a class id 0-9"):
        load_fashion_mnist("test", root=tmp_path)


def test_unknown_split() -> None:
    with pytest.raises(InvalidParameterError, match="'split' parameter of load_fashion_mnist"):
        load_fashion_mnist("validation")


needs_real_data = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="needs `apt-get install dataset-fashion-mnist`"
)


@needs_real_data
def test_real_train_split() -> None:
    real_train = load_fashion_mnist("train", root=FASHION_MNIST_DIR)
    assert real_train.images.shape == (60000, 28, 28) and real_train.images.dtype == np.uint8
    # Golden values: the README's 6,000 images per class; the first training image is an ankle boot.
    np.testing.assert_array_equal(np.bincount(real_train.labels, minlength=10), np.full(10, 6000))
    assert list(real_train.labels[:10]) == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    # The mean and std every Fashion-MNIST normalisation uses: 0.2860 and 0.3530.
    pixels = real_train.images.reshape(len(real_train), -1)  # exact integer sums, no float copy
    mean = pixels.sum(dtype=np.int64) / pixels.size
    mean_square = np.einsum("ij,ij->", pixels, pixels, dtype=np.int64, casting="safe") / pixels.size
    assert round(mean / 255, 4) == 0.2860 and round(np.sqrt(mean_square - mean**2) / 255, 4) == 0.3530


@needs_real_data
def test_real_test_split() -> None:
    test = load_fashion_mnist("test", root=FASHION_MNIST_DIR)
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), np.full(10, 1000))
    assert list(test.labels[:3]) == [9, 2, 1]  # ankle boot, pullover, trouser, as in the Keras tutorial
