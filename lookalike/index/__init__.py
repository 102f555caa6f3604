"""Exact top-k search: Hamming and cosine kernels, and in-memory flat indexes keyed by item key.

- :func:`hamming_topk`, :func:`cosine_topk` (``kernels``): top k over a packed array, by row.
- :class:`BinaryFlatIndex`, :class:`FloatFlatIndex` (``flat``): add / remove / search by int64 item key.
"""

from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.kernels import BACKENDS, PAD_DISTANCE, PAD_ROW, cosine_topk, hamming_topk

__all__ = [
    "BACKENDS",
    "BinaryFlatIndex",
    "FloatFlatIndex",
    "PAD_DISTANCE",
    "PAD_ROW",
    "cosine_topk",
    "hamming_topk",
]
