"""Fashion-MNIST, read from its IDX files (as the Debian package ``dataset-fashion-mnist`` installs them).

Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
Algorithms", arXiv:1708.07747 (2017). 70,000 grey 28x28 images of 10 clothing classes, 60,000 for training.

The IDX format (LeCun's, used by MNIST): a 4-byte magic number ``00 00 <type code> <number of dims>``, then
each dimension as a big-endian uint32, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from lookalike.datasets._common import (
    Dataset,
    StrPath,
    check_split,
    resolve_root,
)
from lookalike.errors import DatasetError, DatasetNotFoundError, InvalidParameterError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_ENV",
    "load_fashion_mnist",
    "read_idx",
    "write_idx",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "LOOKALIKE_FASHION_MNIST"

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(spec).newbyteorder("="): code for code, spec in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_FILE_PREFIX = {"train": "train", "test": "t10k"}


def load_fashion_mnist(split: str = "train", root: StrPath | None = None) -> Dataset:
    """Load one split of Fashion-MNIST.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: the folder holding the IDX files (``.gz`` or not); defaults to ``$LOOKALIKE_FASHION_MNIST``,
            then to ``/usr/share/datasets/fashion-mnist``.

    Returns:
        A :class:`Dataset` with uint8 images of shape (N, 28, 28) and labels 0-9.

    Raises:
        InvalidParameterError: ``split`` is neither ``"train"`` nor ``"test"``.
        DatasetNotFoundError: the folder or a file is missing (the message says how to install it).
        DatasetError: a file is corrupt, truncated, or the images and labels disagree.

    Example:
        >>> train = load_fashion_mnist("train")
        >>> train.images.shape, train.class_names[9]
        ((60000, 28, 28), 'Ankle boot')
    """
    check_split(split, "load_fashion_mnist")
    folder = resolve_root(root, FASHION_MNIST_ENV) or FASHION_MNIST_DIR
    if not folder.is_dir():
        raise DatasetNotFoundError(
            str(folder),
            "no Fashion-MNIST folder here; install it with `apt-get install dataset-fashion-mnist`, "
            f"or pass root= / set {FASHION_MNIST_ENV} to a folder holding the IDX files",
        )
    prefix = _FILE_PREFIX[split]
    images_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        got = f"{images.dtype} {images.shape}"
        raise DatasetError(str(images_path), f"expected uint8 images of shape (N, H, W), got {got}")
    if labels.dtype != np.uint8 or labels.shape != (len(images),):
        raise DatasetError(
            str(labels_path), f"expected {len(images)} uint8 labels, got {labels.dtype} {labels.shape}"
        )
    if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DatasetError(str(labels_path), f"label {labels.max()} is not a class id 0-9")
    return Dataset(images, labels.astype(np.int64), FASHION_MNIST_CLASSES, "fashion-mnist", split)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(
        str(folder / f"{stem}.gz"),
        "missing (nor is there an uncompressed copy); reinstall with `apt-get install --reinstall "
        "dataset-fashion-mnist`, or point root= at a folder holding it",
    )


def read_idx(path: StrPath) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (told apart by content, not by name).

    Returns:
        A read-only array of the file's shape, in native byte order (uint8, int8, int16, int32, float32 or
        float64).

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: unreadable, a broken gzip stream, a bad magic number or type code, or a size that does
            not match the header.
    """
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as err:
        raise DatasetNotFoundError(source, "no such file") from err
    except OSError as err:
        raise DatasetError(source, f"cannot read: {err.strerror or type(err).__name__}") from err
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise DatasetError(source, f"corrupt or truncated gzip stream ({err})") from err
    return _parse_idx(raw, source)


def _parse_idx(raw: bytes, source: str) -> np.ndarray:
    if len(raw) < 4:
        raise DatasetError(source, f"too short for an IDX header: {len(raw)} bytes")
    if raw[:2] != b"\x00\x00":
        magic = int.from_bytes(raw[:4], "big")
        raise DatasetError(source, f"bad magic number 0x{magic:08x}: not an IDX file")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DatasetError(source, f"unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DatasetError(source, "IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        need = f"{ndim} dimensions need {header_size} bytes"
        raise DatasetError(source, f"truncated header: {need}, got {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise DatasetError(
            source, f"{what}: shape {shape} of {dtype.name} needs {expected} data bytes, found {found}"
        )
    array = np.frombuffer(raw, dtype, count=math.prod(shape), offset=header_size).reshape(shape)
    native = array.astype(dtype.newbyteorder("="), copy=False)
    native.flags.writeable = False
    return native


def write_idx(path: StrPath, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz`` (reproducibly: no mtime).

    Raises:
        InvalidParameterError: the dtype has no IDX type code, or the array has no dimensions or a side
            larger than 2**32 - 1.
    """
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255 or max(array.shape) >= 2**32:
        raise InvalidParameterError(
            "write_idx needs a 1-255 dimensional array of uint8, int8, int16, int32, float32 or float64 "
            f"with sides below 2**32. Got {array.dtype} of shape {array.shape} instead."
        )
    header = bytes((0, 0, code, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).tobytes()
    if os.fspath(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    Path(path).write_bytes(payload)
