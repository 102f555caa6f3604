"""The ``"compiled"`` backend of :mod:`lookalike.index.kernels`: the C scan of ``_hamming.c`` over threads.

The extension is built by the package's own build (``setup.py``, on ``pip install``). Where it is missing (a source
tree that was never built) :func:`available` is False: ``"auto"`` then picks among the other backends and an
explicit ``backend="compiled"`` is refused with a message saying how to build it.

Threads: the C function releases the GIL and starts its own POSIX threads, one per core this process may use
(``os.sched_getaffinity``): by queries when there are enough of them, else by contiguous database rows whose
partial top-k lists it merges (lower rows first on equal distances, as one scan would keep them).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from lookalike.index import _numpy_topk
from lookalike.index._numpy_topk import PAD_DISTANCE, _TopK

# Overrides of the C defaults, for tests that must cross tile boundaries and split small searches over threads:
_TILE_ROWS = 0  # rows per tile; 0: 256 KiB of codes (at least 64 rows)
_MIN_THREADED_PAIRS = -1  # query x row pairs before threads start; -1: 2**18
_COUNTING_K = 512  # from this k on, selection by counting distances (two passes) instead of sorted lists


def _load() -> ModuleType | None:
    try:
        from lookalike.index import _hamming
    except ImportError:
        return None
    return _hamming


_HAMMING = _load()


def extension() -> ModuleType | None:
    """The compiled module, or None where it was not built."""
    return _HAMMING


def available() -> bool:
    """Whether the compiled kernel was built and imports."""
    return _HAMMING is not None


def flavour() -> str:
    """``"avx2"`` or ``"popcnt"`` (x86-64's instructions, chosen at import), ``"portable"``, or ``"missing"``."""
    return "missing" if _HAMMING is None else str(_HAMMING.flavour())


def compiled_search(queries: np.ndarray, codes: np.ndarray, subset: np.ndarray | None, k: int) -> _TopK:
    """Top k of every query over ``codes`` (or its ascending ``subset`` rows), on all of this process's cores."""
    assert _HAMMING is not None
    acc = _TopK(queries.shape[0], k, np.int32, PAD_DISTANCE)
    _HAMMING.topk(queries, codes, codes.shape[1], k, subset, acc.keys, acc.rows, _numpy_topk.n_threads(), _TILE_ROWS,
                  float(_MIN_THREADED_PAIRS), _COUNTING_K)
    return acc
