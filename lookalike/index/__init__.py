"""Vector indexes behind one protocol (:mod:`.protocol`), and the exact top-k kernels under them.

- :class:`Neighbors`, :class:`VectorIndex`, :class:`ReadableIndex`, :class:`TrainableIndex`, :func:`distances`,
  :data:`MAX_K`, :data:`PAD_KEY`, :data:`PAD_SCORE` (``protocol``);
- :class:`BinaryFlatIndex`, :class:`FloatFlatIndex` (``flat``): exact, in memory, keyed by int64 item key;
- :class:`HashedIndex`, :class:`ProjectedIndex`, :class:`RefineIndex`, :func:`projection` (``composed``): learned
  codes, a projected space, exact re-scoring of candidates;
- :class:`FaissIDMapIndex` (``faiss_idmap``): faiss ``IndexIDMap2``, a second backend;
- :class:`MultiIndexHashIndex` (``mih``): exact Hamming k-NN and radius search by multi-index hashing;
- :class:`MilvusIndex` (``milvus``): Milvus (Lite or a server) behind the protocol, ``"Milvus(milvus://...)"``;
- :func:`index_factory`, :func:`register_index`, :func:`available_indexes` (``factory``): indexes from strings
  (``"ITQ64,Refine(Flat,300)"``);
- :func:`hamming_topk`, :func:`cosine_topk` (``kernels``): top k over a packed array, by row.
"""

from lookalike.index._faiss_topk import _faiss as load_faiss
from lookalike.index.composed import HashedIndex, ProjectedIndex, RefineIndex, projection
from lookalike.index.factory import available_indexes, index_factory, register_index
from lookalike.index.faiss_idmap import FaissIDMapIndex
from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.kernels import BACKENDS, PAD_DISTANCE, PAD_ROW, cosine_topk, hamming_topk
from lookalike.index.mih import MultiIndexHashIndex
from lookalike.index.milvus import MilvusIndex
from lookalike.index.milvus import build as _build_milvus
from lookalike.index.protocol import (
    MAX_K,
    PAD_KEY,
    PAD_SCORE,
    Metric,
    Neighbors,
    ReadableIndex,
    TrainableIndex,
    VectorIndex,
    distances,
)

__all__ = [
    "BACKENDS",
    "BinaryFlatIndex",
    "FaissIDMapIndex",
    "FloatFlatIndex",
    "HashedIndex",
    "MAX_K",
    "Metric",
    "MilvusIndex",
    "MultiIndexHashIndex",
    "Neighbors",
    "PAD_DISTANCE",
    "PAD_KEY",
    "PAD_ROW",
    "PAD_SCORE",
    "ProjectedIndex",
    "ReadableIndex",
    "RefineIndex",
    "TrainableIndex",
    "VectorIndex",
    "available_indexes",
    "cosine_topk",
    "distances",
    "hamming_topk",
    "index_factory",
    "load_faiss",
    "projection",
    "register_index",
]

register_index("Milvus", _build_milvus)
