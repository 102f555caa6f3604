"""The catalogue's indexes: one per encoder, built by the index factory, loaded lazily from the store and
reloaded when another process commits -- or, with an external backend (``_backend.py``: Milvus), held by the
backend and brought up to date from the index journal instead of reloaded; and :class:`LiveIndex`, the thread-safe
view other packages search.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..index import Neighbors, ReadableIndex, VectorIndex, index_factory
from ..index.protocol import Metric
from ._backend import apply_or_warn, open_backend
from ._encoders import EncoderSet
from .store import Store


class IndexSet:
    """encoder number → its index of whole-image vectors (part 0), built with ``index_factory(dim, spec)``, or by
    an external backend (``backend``: a URI to attach, ``"local"`` to detach, None: the stored one; see
    :func:`._backend.open_backend`; then ``spec`` is not used)."""

    def __init__(self, store: Store, encoders: EncoderSet, spec: str = "Flat", backend: str | None = None) -> None:
        self.store, self.encoders, self.spec = store, encoders, spec
        self.backend = open_backend(store, backend)
        self._behind = False  # our own commit's journal entries did not reach the backend yet
        self.lock = store.lock
        self._indexes: dict[int, VectorIndex] = {}
        self._version = -1
        index_factory(8, spec, metric="hamming")  # a bad spec fails when the catalogue opens, not on first search

    def reset(self, encoders: EncoderSet) -> None:
        with self.lock:
            self.encoders = encoders
            self._indexes.clear()

    def get(self, num: int) -> VectorIndex:
        """The index of one encoder, reloaded when another process has committed since (a backend's: brought up
        to date from the journal)."""
        with self.lock:
            version = self.store.data_version()
            if self.backend is not None:
                index = self._backend_index(num)
                if version != self._version or self._behind:  # a search never answers from a stale backend
                    self.backend.apply(self._backend_index, self._shape)
                    self._version, self._behind = version, False
                return index
            if version != self._version:
                self._indexes.clear()
                self._version = version
            if num not in self._indexes:
                self._indexes[num] = self._load(num)
            return self._indexes[num]

    @property
    def describe(self) -> str:
        """What ``info`` shows: the backend's URI, or the index spec."""
        return self.backend.uri if self.backend is not None else self.spec

    def _shape(self, num: int) -> tuple[int, Metric]:
        enc = self.encoders.by_num(num)
        return enc.dim, "cosine" if enc.kind == "float" else "hamming"

    def _backend_index(self, num: int) -> VectorIndex:
        assert self.backend is not None
        if num not in self._indexes:
            self._indexes[num] = self.backend.build(num, *self._shape(num))
        return self._indexes[num]

    def applied(self) -> None:
        """After our own commit: a backend takes the journal now (or the next call retries; see _backend.py)."""
        backend = self.backend
        if backend is not None:
            with self.lock:
                self._behind = not apply_or_warn(lambda: backend.apply(self._backend_index, self._shape))

    def loaded(self, num: int) -> VectorIndex | None:
        """The index of one encoder if it is in memory and current, else None (nothing is loaded; a backend's index
        is never "in memory": re-ranking reads the candidates' vectors from the store rather than the backend)."""
        if self.backend is not None:
            return None
        with self.lock:
            if self.store.data_version() != self._version:
                return None
            return self._indexes.get(num)

    def _load(self, num: int) -> VectorIndex:
        enc = self.encoders.by_num(num)
        index = index_factory(enc.dim, self.spec, metric=self._shape(num)[1])
        reserve = getattr(index, "reserve", None)  # the flat indexes: one allocation of the right size
        if reserve is not None:
            reserve(self.store.vector_count(num))
        for keys, blobs in self.store.iter_vectors(num):  # a chunk at a time: no second copy of every vector
            index.add(keys, np.frombuffer(b"".join(blobs), dtype=enc.dtype).reshape(len(keys), enc.width))
        return index

    def add(self, keys: Sequence[int], vectors: dict[int, np.ndarray]) -> None:
        """Add just-committed vectors to the loaded indexes (our own commits do not change data_version)."""
        if not len(keys):
            return
        if self.backend is not None:
            return self.applied()
        with self.lock:
            for num, index in self._indexes.items():
                index.add(np.asarray(keys, dtype=np.int64), vectors[num])

    def remove(self, keys: Sequence[int]) -> None:
        if self.backend is not None:
            return self.applied()
        with self.lock:
            for index in self._indexes.values():
                index.remove(np.asarray(keys, dtype=np.int64))


class LiveIndex:
    """A thread-safe view of one encoder's index: each call holds the catalogue's lock and sees the index as it
    is now (reloaded after another process's commits). Hold ``catalog.lock`` around several calls that must
    see one state. Implements :class:`~lookalike.index.ReadableIndex` when the backend does."""

    def __init__(self, indexes: IndexSet, num: int) -> None:
        self._indexes, self._num = indexes, num

    @property
    def _index(self) -> VectorIndex:
        return self._indexes.get(self._num)

    @property
    def metric(self) -> Metric:
        return self._index.metric

    @property
    def dim(self) -> int:
        return self._index.dim

    def __len__(self) -> int:
        with self._indexes.lock:
            return len(self._index)

    def __contains__(self, key: object) -> bool:
        with self._indexes.lock:
            return key in self._index

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys().tolist())

    def keys(self) -> np.ndarray:
        with self._indexes.lock:
            return self._index.keys()

    def search(self, queries: Any, k: int, *, keys: Any = None) -> Neighbors:
        with self._indexes.lock:
            return self._index.search(queries, k, keys=keys)

    def _readable(self) -> ReadableIndex:
        index = self._index
        if not isinstance(index, ReadableIndex):
            raise TypeError(f"the {type(index).__name__} index cannot hand its vectors back")
        return index

    def get(self, key: int) -> np.ndarray:
        with self._indexes.lock:
            return self._readable().get(key)

    def vectors(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        with self._indexes.lock:
            return self._readable().vectors(keys)

    def add(self, keys: Any, vectors: Any) -> None:
        raise TypeError("a catalogue's index changes only through the catalogue (add, update, remove)")

    def remove(self, keys: Any) -> int:
        raise TypeError("a catalogue's index changes only through the catalogue (add, update, remove)")

