"""Argument checks every index shares, worded by :mod:`lookalike.validation` (one message style).

    The 'k' parameter of FloatFlatIndex must be an integer in [1, 1000000]. Got 0 instead.
    The 'queries' parameter of FaissIDMapIndex must be a (n, 12) array of float32. Got shape (3,), dtype ...
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.index.protocol import MAX_K, PAD_KEY
from lookalike.validation import check_int, parameter_error

__all__ = ["check_k", "check_keys", "check_matrix", "check_new_keys", "in_key_order"]


def check_k(k: Any, owner: str) -> int:
    """``k`` as an int in [1, :data:`~lookalike.index.protocol.MAX_K`] (bools refused)."""
    return check_int("k", k, 1, MAX_K, owner=owner)


def check_keys(keys: Any, owner: str, name: str = "keys") -> np.ndarray:
    """``keys`` as a 1-D int64 array (an empty sequence is fine)."""
    array = np.asarray(keys)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise parameter_error(name, "a 1-D sequence of integer keys", f"{array.ndim}-D {array.dtype} values",
                              owner=owner)
    if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise parameter_error(name, "int64 keys", f"{int(array.max())}", owner=owner)
    return array.astype(np.int64, copy=False)


def check_new_keys(keys: Any, owner: str) -> np.ndarray:
    """Keys to store: as :func:`check_keys`, and never the padding key -1 (a result could not tell it apart)."""
    array = check_keys(keys, owner)
    if array.size and bool((array == PAD_KEY).any()):
        raise parameter_error("keys", f"integer keys other than {PAD_KEY} (the padding key)", f"{PAD_KEY}",
                              owner=owner)
    return array


def check_matrix(name: str, values: Any, width: int, dtype: np.dtype[Any], owner: str, *,
                 rows: int | None = None) -> np.ndarray:
    """``values`` as a C-contiguous (rows, width) array of ``dtype``: any float dtype converts to a float
    ``dtype``, a binary one must already be ``dtype``; float values must be finite (no NaN, no infinity)."""
    array = np.asarray(values)
    convertible = array.dtype == dtype or (dtype.kind == "f" and array.dtype.kind == "f")
    if not (array.ndim == 2 and array.shape[1] == width and (rows is None or len(array) == rows) and convertible):
        expected = f"a ({'n' if rows is None else rows}, {width}) array of {dtype.name}"
        raise parameter_error(name, expected, f"shape {array.shape}, dtype {array.dtype}", owner=owner)
    with np.errstate(invalid="ignore", over="ignore"):  # a float64 beyond float32, inf - inf: refused below
        out = np.ascontiguousarray(array, dtype=dtype)
        # one float64 sum is a single buffered pass (no n x d mask); it is finite iff every value is
        if dtype.kind != "f" or not out.size or np.isfinite(out.sum(dtype=np.float64)):
            return out
    bad = int(np.count_nonzero(~np.isfinite(out)))
    raise parameter_error(name, "finite (no NaN or infinity)", f"{bad} non-finite values", owner=owner)


def in_key_order(scores: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of a backend's answer sorted best first with equal scores in ascending key, padding (key -1)
    last with score -inf: a backend's own order among ties (a heap's, a server's) made deterministic."""
    valid = found != PAD_KEY
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    found = np.where(valid, found, PAD_KEY)
    order = np.lexsort((np.where(valid, found, np.iinfo(np.int64).max), -scores.astype(np.float64)), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(found, order, axis=1)
