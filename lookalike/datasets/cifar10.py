"""CIFAR-10, read from its "python version" folder ``cifar-10-batches-py/``.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, University of Toronto
(2009). 60,000 colour 32x32 images of 10 classes: ``data_batch_1`` ... ``data_batch_5`` (10,000 each) for
training, ``test_batch`` for testing, ``batches.meta`` for the class names.

Each file is a Python 2 pickle (protocol 2) of a dict with bytes keys: ``b"data"`` a uint8 numpy array of
shape (N, 3072) whose rows hold the red, green and blue 32x32 planes one after the other, ``b"labels"`` a list
of N ints; the meta dict has ``b"label_names"``. Unpickling can run arbitrary code, so the files are read with
an unpickler that resolves only the few globals those files name (see :class:`_CifarUnpickler`).
"""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.datasets._common import (
    Dataset,
    StrPath,
    check_split,
    resolve_root,
)
from lookalike.errors import DatasetError, DatasetNotFoundError

__all__ = ["CIFAR10_ENV", "load_cifar10"]

CIFAR10_ENV = "LOOKALIKE_CIFAR10"
_FOLDER_NAME = "cifar-10-batches-py"
_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_SIDE = 32
# A malformed pickle can fail in any of these ways; all mean the same to the caller.
_MALFORMED_PICKLE = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
)


def load_cifar10(root: StrPath | None = None, split: str = "train") -> Dataset:
    """Load one split of CIFAR-10 from its python-pickle folder.

    Args:
        root: the ``cifar-10-batches-py`` folder, or the folder that contains it; defaults to
            ``$LOOKALIKE_CIFAR10``.
        split: ``"train"`` (the five data batches, in order) or ``"test"``.

    Returns:
        A :class:`Dataset` with uint8 images of shape (N, 32, 32, 3) (RGB) and labels 0-9.

    Raises:
        InvalidParameterError: ``split`` is neither ``"train"`` nor ``"test"``.
        DatasetNotFoundError: no root given and none in the environment, or the folder or a file is missing.
        DatasetError: a file is corrupt, not in the CIFAR format, or names a global outside the allow-list.
    """
    check_split(split, "load_cifar10")
    folder = _find_folder(root)
    names = _label_names(folder / "batches.meta")
    images, labels = [], []
    for batch in _BATCHES[split]:
        batch_images, batch_labels = _read_batch(folder / batch, len(names))
        images.append(batch_images)
        labels.append(batch_labels)
    return Dataset(np.concatenate(images), np.concatenate(labels), names, "cifar10", split)


def _find_folder(root: StrPath | None) -> Path:
    folder = resolve_root(root, CIFAR10_ENV)
    if folder is None:
        raise DatasetNotFoundError(
            f"${CIFAR10_ENV}",
            f"unset and no root given; extract cifar-10-python.tar.gz and pass root= or set {CIFAR10_ENV} to "
            f"its {_FOLDER_NAME} folder",
        )
    if (folder / _FOLDER_NAME).is_dir():
        folder = folder / _FOLDER_NAME
    if not folder.is_dir():
        raise DatasetNotFoundError(str(folder), f"no such folder; expected CIFAR-10's {_FOLDER_NAME} here")
    return folder


def _label_names(path: Path) -> tuple[str, ...]:
    meta = _unpickle_dict(path)
    names = meta.get(b"label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, bytes | str) for n in names):
        raise DatasetError(str(path), "b'label_names' is missing or not a list of names")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle_dict(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(str(path), f"b'data' must be a uint8 array of shape (N, 3072), got {got}")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels):
        raise DatasetError(str(path), "b'labels' is missing or not a list of ints")
    if len(labels) != len(data):
        raise DatasetError(str(path), f"{len(data)} images but {len(labels)} labels")
    label_array = np.array(labels, dtype=np.int64)
    if len(label_array) and (label_array.min() < 0 or label_array.max() >= n_classes):
        span = f"[{label_array.min()}, {label_array.max()}]"
        raise DatasetError(str(path), f"labels span {span}, not 0-{n_classes - 1}")
    # Each row is three 32x32 planes (R, G, B); move the channel axis last for (N, H, W, 3).
    planes = data.reshape(len(data), 3, _SIDE, _SIDE)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1)), label_array


def _unpickle_dict(path: Path) -> dict[Any, Any]:
    try:
        with open(path, "rb") as file:
            loaded = _CifarUnpickler(file, encoding="bytes").load()
    except FileNotFoundError as err:
        raise DatasetNotFoundError(str(path), "missing from the CIFAR-10 folder") from err
    except OSError as err:
        raise DatasetError(str(path), f"cannot read: {err.strerror or type(err).__name__}") from err
    except _MALFORMED_PICKLE as err:
        raise DatasetError(str(path), f"not a valid CIFAR-10 pickle: {err}") from err
    if not isinstance(loaded, dict):
        raise DatasetError(str(path), f"expected a pickled dict, got {type(loaded).__name__}")
    return loaded


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle: accepted as _reconstruct's subtype, but not callable."""


def _reconstruct(subtype: object, shape: object, dtype_code: object) -> np.ndarray:
    if subtype is not _NdarrayToken or shape != (0,):
        raise pickle.UnpicklingError("numpy _reconstruct may only build an empty ndarray to be filled in")
    return np.ndarray((0,), dtype=np.uint8)


def _dtype(spec: object, align: object = False, copy: object = False) -> np.dtype[Any]:
    if not isinstance(spec, str | bytes) or len(spec) > 3:
        raise pickle.UnpicklingError(f"numpy dtype {spec!r} is not a plain numeric type")
    text = spec.decode("ascii") if isinstance(spec, bytes) else spec
    dtype = np.dtype(text, align=bool(align), copy=bool(copy))
    if dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"numpy dtype {dtype} is not a plain numeric type")
    return dtype


def _latin1_encode(text: object, encoding: object = "utf-8") -> bytes:
    # How Python 3 writes bytes at protocol 2: _codecs.encode(str, "latin1"). Any other codec is refused.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin1 text")
    return codecs.encode(text, "latin1")


def _empty_bytes(*args: object) -> bytes:
    # How Python 3 writes b"" at protocol 2: bytes(). Arguments are refused: bytes(10**12) would allocate.
    if args:
        raise pickle.UnpicklingError("bytes() is allowed only without arguments")
    return b""


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    # What the original (Python 2, numpy 1) files name ...
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NdarrayToken,
    ("numpy", "dtype"): _dtype,
    # ... and what the same dicts name when re-pickled by Python 3 and numpy 2 at protocol 2.
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR-10 batch needs, each through a checking wrapper.

    Dicts, lists, ints, bytes and str need no global; a numpy array needs ``_reconstruct``, ``ndarray`` and
    ``dtype``, whose state (shape, dtype, raw bytes) numpy's own ``__setstate__`` then checks. Any other
    global, ``os.system`` or ``builtins.eval`` included, raises :class:`pickle.UnpicklingError` unresolved.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: not part of the CIFAR-10 format")
        return allowed
