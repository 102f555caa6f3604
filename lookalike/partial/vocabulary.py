"""The vocabularies of the descriptor index: 256-bit centroids that split descriptors into inverted lists.

One vocabulary per descriptor kind ships with the package (``vocabulary-{kind}.npy``, (4096, 32) uint8, 128 KiB
each), trained once by ``benchmarks/partial_vocabulary.py`` on descriptors of photographs that are *not* in the
benchmark's catalogue or its queries (which ones: that script's docstring), so a catalogue never trains one and two
processes always agree. :func:`train` is the same k-means for anyone who wants a vocabulary of their own: faiss's
binary k-means (Lloyd's iterations on the bits as floats, centroids binarised at 0.5), seeded.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import CatalogError, InvalidParameterError
from ..index import load_faiss
from .features import BYTES, DESCRIPTOR_KINDS

__all__ = ["load", "train"]


@lru_cache(maxsize=8)
def _load(kind: str) -> np.ndarray:
    try:
        with resources.files(__package__).joinpath(f"vocabulary-{kind}.npy").open("rb") as fh:
            centroids = np.load(fh, allow_pickle=False)
    except (FileNotFoundError, OSError, ValueError) as err:
        raise CatalogError(f"the '{kind}' descriptor vocabulary is missing or damaged in this install of "
                           f"lookalike ({err}): reinstall the package") from err
    if centroids.dtype != np.uint8 or centroids.ndim != 2 or centroids.shape[1] != BYTES:
        raise CatalogError(f"the '{kind}' descriptor vocabulary is damaged (shape {centroids.shape})")
    centroids.setflags(write=False)
    return centroids


def load(kind: str) -> np.ndarray:
    """The shipped (n, 32) uint8 vocabulary of a descriptor kind (read-only; cached)."""
    if kind not in DESCRIPTOR_KINDS:
        raise InvalidParameterError(f"The descriptor must be one of {', '.join(DESCRIPTOR_KINDS)}. Got {kind!r}.")
    return _load(kind)


def train(descriptors: np.ndarray, size: int = 4096, *, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """A vocabulary of ``size`` centroids by binary k-means over ``descriptors`` ((n, 32) uint8, n >= size);
    at most 64 descriptors a centroid are sampled (seeded), as faiss does."""
    faiss = load_faiss()
    descriptors = np.ascontiguousarray(descriptors, dtype=np.uint8)
    if descriptors.ndim != 2 or descriptors.shape[1] != BYTES:
        raise InvalidParameterError(f"Descriptors are (n, {BYTES}) uint8. Got {descriptors.shape}.")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= len(descriptors):
        raise InvalidParameterError(f"The vocabulary 'size' must be an integer in [1, {len(descriptors)}] (the "
                                    f"descriptors given). Got {size!r}.")
    quantizer = faiss.IndexBinaryFlat(BYTES * 8)
    ivf = faiss.IndexBinaryIVF(quantizer, BYTES * 8, size)
    ivf.cp.niter = iterations
    ivf.cp.seed = seed
    ivf.cp.max_points_per_centroid = 64
    ivf.cp.verbose = False
    ivf.train(descriptors)
    return faiss.vector_to_array(quantizer.xb).reshape(-1, BYTES).copy()
