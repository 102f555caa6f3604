"""CIFAR-10 from a tiny fixture written in the original pickle format, and the unpickler's allow-list."""

from __future__ import annotations

import codecs
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lookalike.datasets import DatasetError, DatasetNotFoundError, load_cifar10
from lookalike.errors import InvalidParameterError

from . import CIFAR_KNOWN_PIXEL, CIFAR_LABEL_NAMES, cifar_batches, py2_pickle, write_cifar_folder


@pytest.mark.parametrize("py2", [True, False], ids=["python2-original", "python3-protocol2"])
def test_round_trip_puts_pixels_in_place(py2: bool, tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path, py2=py2)
    train, test = load_cifar10(folder, "train"), load_cifar10(folder, "test")
    assert (train.name, train.split, train.images.shape, train.images.dtype) == (
        "cifar10", "train", (20, 32, 32, 3), np.uint8,
    )
    assert test.images.shape == (4, 32, 32, 3) and test.split == "test"
    assert train.class_names[:2] == ("airplane", "automobile") and len(train.class_names) == 10
    row, col = CIFAR_KNOWN_PIXEL
    # Image 0 of batch b has RGB (10 + b, 20 + b, 30 + b) at (row, col); batches are concatenated in order.
    for batch in range(5):
        assert list(train.images[4 * batch, row, col]) == [10 + batch, 20 + batch, 30 + batch]
    assert list(test.images[0, row, col]) == [15, 25, 35]
    np.testing.assert_array_equal(train.labels, np.arange(20) % 10)
    assert train.labels.dtype == np.int64


def test_every_pixel_matches_the_planes(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    data = cifar_batches()["data_batch_2"][b"data"]
    assert isinstance(data, np.ndarray)
    images = load_cifar10(folder, "train").images[4:8]
    red, green, blue = data[:, :1024], data[:, 1024:2048], data[:, 2048:]
    np.testing.assert_array_equal(images[..., 0].reshape(4, -1), red)
    np.testing.assert_array_equal(images[..., 1].reshape(4, -1), green)
    np.testing.assert_array_equal(images[..., 2].reshape(4, -1), blue)


def test_root_may_be_the_parent_or_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cifar_folder(tmp_path)
    assert len(load_cifar10(tmp_path, "test")) == 4
    monkeypatch.setenv("LOOKALIKE_CIFAR10", str(tmp_path))
    assert len(load_cifar10(split="test")) == 4


def test_no_root_says_where_to_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOKALIKE_CIFAR10", raising=False)
    with pytest.raises(DatasetNotFoundError, match="LOOKALIKE_CIFAR10"):
        load_cifar10()


def test_missing_folder_and_batch(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path / "absent")
    folder = write_cifar_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3: missing"):
        load_cifar10(folder, "train")
    assert len(load_cifar10(folder, "test")) == 4


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="'split' parameter of load_cifar10"):
        load_cifar10(tmp_path, "valid")


def _replace(folder: Path, name: str, content: bytes) -> None:
    (folder / name).write_bytes(content)


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"\(N, 3072\), got uint8 \(2, 3000\)"),
        ({b"labels": [0]}, "b'data' must be .* got NoneType"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"labels span \[10, 10\], not 0-9"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [b"x"]}, "not a list of ints"),
        ([1, 2], "expected a pickled dict, got list"),
    ],
)
def test_malformed_batch_is_rejected(batch: object, match: str, tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    _replace(folder, "test_batch", py2_pickle(batch))
    with pytest.raises(DatasetError, match=f"test_batch: .*{match}"):
        load_cifar10(folder, "test")


def test_truncated_pickle_is_rejected(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    _replace(folder, "test_batch", (folder / "test_batch").read_bytes()[:5000])
    with pytest.raises(DatasetError, match="test_batch: not a valid CIFAR-10 pickle"):
        load_cifar10(folder, "test")


def test_meta_without_label_names(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    _replace(folder, "batches.meta", py2_pickle({b"num_vis": 3072}))
    with pytest.raises(DatasetError, match="batches.meta: b'label_names' is missing"):
        load_cifar10(folder, "test")


class _Call:
    """Pickles as ``func(*args)``: how a hostile pickle runs code on load."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


@pytest.mark.parametrize(
    ("make_payload", "refused"),
    [
        (lambda marker: _Call(os.system, f"touch {marker}"), "refused global (posix|nt).system"),
        (lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"), "refused global __builtin__.eval"),
        (lambda marker: _Call(subprocess.call, ["touch", str(marker)]), "refused global [a-z]+.call"),
        (lambda marker: _Call(np.load, str(marker)), "refused global numpy"),
        (lambda marker: _Call(codecs.encode, "x", "zlib"), "_codecs.encode is allowed only for latin1"),
        (lambda marker: _Call(bytes, 10**12), r"bytes\(\) is allowed only without arguments"),
        (lambda marker: _Call(np.dtype, "O"), "numpy dtype object is not a plain numeric type"),
    ],
    ids=["os.system", "eval", "subprocess", "numpy.load", "codecs-zlib", "bytes-bomb", "object-dtype"],
)
def test_hostile_pickle_is_refused(make_payload: object, refused: str, tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    assert callable(make_payload)
    hostile = {b"data": make_payload(marker), b"labels": [0]}
    _replace(folder, "test_batch", pickle.dumps(hostile, protocol=2))
    with pytest.raises(DatasetError, match=f"test_batch: not a valid CIFAR-10 pickle: .*{refused}"):
        load_cifar10(folder, "test")
    assert not marker.exists()


def test_label_names_are_decoded(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    names = load_cifar10(folder, "test").class_names
    assert names == tuple(name.decode() for name in CIFAR_LABEL_NAMES)
