"""The retrieval stage behind :class:`~lookalike.catalog.query.QueryPipeline`: pick the index (or compose the
re-ranking one), search it among the keys a metadata filter allows, and hydrate keys into results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..encoders import Encoder
from ..encoders.hashed import HashedEncoder
from ..errors import InvalidParameterError, ItemNotFoundError
from ..images import ImageLimits
from ..index import (
    FloatFlatIndex,
    HashedIndex,
    Metric,
    Neighbors,
    ProjectedIndex,
    ReadableIndex,
    RefineIndex,
    VectorIndex,
    distances,
)
from ._encoders import EncoderSet
from ._indexes import IndexSet
from ._stored import StoredVectors
from .query import SKETCH_POOL, EncodedQueries, id_list
from .store import Store
from .types import SearchResult


class Engine:
    """Everything a query needs of one open catalogue."""

    def __init__(self, store: Store, encoders: EncoderSet, indexes: IndexSet, limits: ImageLimits) -> None:
        self.store, self.encoders, self.indexes, self.limits = store, encoders, indexes, limits

    def search(self, queries: EncodedQueries, k: int, where: dict[str, Any] | None) -> Neighbors:
        """Top ``k`` keys of each query (for a re-ranked search: by exact cosine of the base encoder)."""
        num, enc = self.encoders.pick(queries.encoder)
        keys = self.store.keys_where(where) if where else None
        with self.store.lock:
            if queries.rerank is None:
                return self.indexes.get(num).search(queries.vectors, k, keys=keys)
            assert queries.floats is not None
            return self.reranker(num, enc, queries.rerank).search(queries.floats, k, keys=keys)

    def reranker(self, num: int, enc: Encoder, depth: int) -> RefineIndex:
        """Candidates by the learned codes (Hamming shortlist, then the float query's projection against them),
        refined by exact cosine on the float vectors of the candidates only: from the float index when it is
        already in memory, else read from the store (:class:`~._stored.StoredVectors`), so that a search by codes
        never loads every float vector. With a sketch of the float encoder (in memory, like the codes) a middle
        stage picks the ``depth`` worth reading among the codes' ``max(SKETCH_POOL, 10 x depth)``: far fewer
        reads (80 instead of 400 by default) for a better recall (query.py, SKETCHED_RERANK)."""
        if not isinstance(enc, HashedEncoder):
            raise InvalidParameterError(f"rerank needs a search by learned codes; {enc.spec!r} is not one")
        base = self.encoders.base_of(num)
        if base is None:
            raise InvalidParameterError(f"the float vectors of {enc.base.spec!r} are not stored, so {enc.spec!r} "
                                        "cannot be re-ranked")
        codes: VectorIndex = HashedIndex(enc.hasher, codes=self.indexes.get(num))
        middle = self.sketch(base)
        if middle is not None:
            codes = RefineIndex(codes, middle, depth=max(SKETCH_POOL, 10 * depth))
        return RefineIndex(codes, self.floats(base), depth=depth)

    def sketch(self, base: int) -> ProjectedIndex | None:
        """The in-memory sketch of float encoder ``base`` as a re-ranking stage, if the catalogue has one it can
        gather rows from (a flat index: not another index spec, not an external backend)."""
        found = self.encoders.sketch_of(base)
        if found is None or self.indexes.backend is not None:
            return None
        held = self.indexes.get(found[0])
        return ProjectedIndex.over(found[1].basis, held) if isinstance(held, FloatFlatIndex) else None

    def floats(self, base: int) -> ReadableIndex:
        """The float vectors of encoder ``base`` for reading a few: its index if it is in memory, else the store."""
        loaded = self.indexes.loaded(base)
        if isinstance(loaded, ReadableIndex):
            return loaded
        enc = self.encoders.by_num(base)
        return StoredVectors(self.store, base, enc.dim, enc.dtype, "cosine")

    def vectors_of(self, num: int, keys: Sequence[int], item_ids: Sequence[str], *, stored: bool = False
                   ) -> np.ndarray:
        """The stored vectors of some items for one encoder, (len(keys), width), in order; ``stored``: read them
        without loading the encoder's index (the float vectors of a re-ranked ``similar``). Raises
        ItemNotFoundError naming the items without one (removed meanwhile)."""
        with self.store.lock:  # a concurrent remove moves rows: read the vectors under the lock
            index = self.floats(num) if stored else self.indexes.get(num)
            missing = [i for key, i in zip(keys, item_ids, strict=True)
                       if not isinstance(index, ReadableIndex) or key not in index]
            if missing:
                raise ItemNotFoundError(f"{id_list(missing)} {'has' if len(missing) == 1 else 'have'} no "
                                        f"{self.encoders.by_num(num).spec} vector")
            assert isinstance(index, ReadableIndex)
            return np.stack([index.get(key) for key in keys])

    def hydrate(self, found: Neighbors, enc: Encoder) -> list[list[SearchResult]]:
        """Results for found keys; padding and items removed meanwhile are left out. Scores are clamped to the
        metric's range (a self-match can round to 1.0000004)."""
        scores, keys = found
        items = self.store.items_by_key(np.unique(keys[keys >= 0]).tolist())
        metric: Metric = "cosine" if enc.kind == "float" else "hamming"
        dist = distances(np.clip(scores, -1.0, 1.0), metric, enc.dim)
        sim = 1.0 - dist if metric == "cosine" else 1.0 - dist / enc.dim  # exact again for Hamming (1 - d/bits)
        out = []
        for row_sim, row_dist, row_keys in zip(sim.tolist(), dist.tolist(), keys.tolist(), strict=True):
            out.append([SearchResult(items[key].id, items[key].path, s, d, items[key].metadata)
                        for s, d, key in zip(row_sim, row_dist, row_keys, strict=True) if key in items])
        return out
