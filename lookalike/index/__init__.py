"""Vector indexes behind one protocol (:mod:`.protocol`), and the exact top-k kernels under them.

- :class:`Neighbors`, :class:`VectorIndex`, :class:`ReadableIndex`, :class:`TrainableIndex` (``protocol``);
- :class:`BinaryFlatIndex`, :class:`FloatFlatIndex` (``flat``): exact, in memory, keyed by int64 item key;
- :class:`HashedIndex`, :class:`ProjectedIndex`, :class:`RefineIndex` (``composed``): learned codes, a projected
  space, exact re-scoring of candidates;
- :class:`FaissIDMapIndex` (``faiss_idmap``): faiss ``IndexIDMap2``, a second backend;
- :func:`index_factory`, :func:`register_index` (``factory``): indexes from strings (``"ITQ64,Refine(Flat,300)"``);
- :func:`hamming_topk`, :func:`cosine_topk` (``kernels``): top k over a packed array, by row.
"""

from lookalike.index.composed import HashedIndex, ProjectedIndex, RefineIndex, projection
from lookalike.index.factory import available_indexes, index_factory, register_index
from lookalike.index.faiss_idmap import FaissIDMapIndex
from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.kernels import BACKENDS, PAD_DISTANCE, PAD_ROW, cosine_topk, hamming_topk
from lookalike.index.protocol import Metric, Neighbors, ReadableIndex, TrainableIndex, VectorIndex

__all__ = [
    "BACKENDS",
    "BinaryFlatIndex",
    "FaissIDMapIndex",
    "FloatFlatIndex",
    "HashedIndex",
    "Metric",
    "Neighbors",
    "PAD_DISTANCE",
    "PAD_ROW",
    "ProjectedIndex",
    "ReadableIndex",
    "RefineIndex",
    "TrainableIndex",
    "VectorIndex",
    "available_indexes",
    "cosine_topk",
    "hamming_topk",
    "index_factory",
    "projection",
    "register_index",
]
