"""What the hashers that train with PyTorch (``bingan-head``, ``adapt-spectral``) share: seeded layers and data
order drawn from the hasher's numpy generator without touching the caller's torch state, and CPU threads bounded
by the machine's cores for the fit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["cpu_threads", "seeded"]
T = TypeVar("T")


def seeded(rng: np.random.Generator, build: Callable[[], T]) -> tuple[torch.Generator, T]:
    """``(gen, build())``: a torch generator for the data order, then ``build()`` (the layers) under a torch seed,
    both drawn from ``rng`` in that order; the global torch RNG state is restored afterwards."""
    import torch

    gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    state = torch.get_rng_state()
    torch.manual_seed(int(rng.integers(2**63 - 1)))
    try:
        return gen, build()
    finally:
        torch.set_rng_state(state)


@contextlib.contextmanager
def cpu_threads() -> Iterator[None]:
    """torch's intra-op threads at most the machine's cores for the block, as they were after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
