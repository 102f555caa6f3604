"""Tests of lookalike.datasets, and the fixture writers they share."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

# (row, col) of image 0 of batch number b (0-5, test last), whose RGB is set to (10 + b, 20 + b, 30 + b).
CIFAR_KNOWN_PIXEL = (1, 2)


def py2_pickle(obj: object) -> bytes:
    """Pickle ``obj`` as Python 2's cPickle with numpy 1.x wrote the CIFAR-10 files: protocol 2, ``bytes`` as
    (SHORT_)BINSTRING, and ndarray via ``numpy.core.multiarray._reconstruct``. Supports dict, list, int,
    bytes and uint8 arrays, all CIFAR needs (memo opcodes are left out; they do not change the value)."""
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    return bytes(out + b".")


def _emit(obj: object, out: bytearray) -> None:
    if isinstance(obj, dict):
        out += b"}("
        for key, value in obj.items():
            _emit(key, out)
            _emit(value, out)
        out += b"u"  # SETITEMS
    elif isinstance(obj, list):
        out += b"]("
        for item in obj:
            _emit(item, out)
        out += b"e"  # APPENDS
    elif isinstance(obj, int):
        out += b"K" + bytes([obj]) if 0 <= obj < 256 else b"J" + struct.pack("<i", obj)
    elif isinstance(obj, bytes):
        out += b"U" + bytes([len(obj)]) + obj if len(obj) < 256 else b"T" + struct.pack("<I", len(obj)) + obj
    elif isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and obj.ndim == 2:
        out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        out += b"(K\x01"  # state: (version 1, shape, dtype, fortran order, raw bytes)
        _emit(obj.shape[0], out)
        _emit(obj.shape[1], out)
        out += b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
        out += b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # the dtype's state, then BUILD
        out += b"\x89"
        _emit(obj.tobytes(), out)
        out += b"tb"
    else:
        raise TypeError(f"py2_pickle does not write {type(obj).__name__}")


def cifar_batches(n_per_batch: int = 4, seed: int = 0) -> dict[str, dict[bytes, object]]:
    """The dicts of a tiny CIFAR-10 folder: labels cycle 0-9 across batches, random pixels, a known pixel."""
    rng = np.random.default_rng(seed)
    batches: dict[str, dict[bytes, object]] = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for number, name in enumerate(names):
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        row, col = CIFAR_KNOWN_PIXEL
        for plane, value in enumerate((10, 20, 30)):
            data[0, plane * 1024 + row * 32 + col] = value + number
        labels = [(number * n_per_batch + i) % 10 for i in range(n_per_batch)]
        batches[name] = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{number}_{i}.png".encode() for i in range(n_per_batch)],
        }
    return batches


CIFAR_LABEL_NAMES = [
    b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck",
]


def write_cifar_folder(parent: Path, *, py2: bool = True, n_per_batch: int = 4) -> Path:
    """Write ``parent/cifar-10-batches-py``, return it; ``py2=False`` pickles as Python 3 does (proto 2)."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    meta = {b"num_cases_per_batch": n_per_batch, b"label_names": CIFAR_LABEL_NAMES, b"num_vis": 3072}
    files = {"batches.meta": meta, **cifar_batches(n_per_batch)}
    for name, content in files.items():
        (folder / name).write_bytes(py2_pickle(content) if py2 else pickle.dumps(content, protocol=2))
    return folder
