"""The index over every catalogue image's local descriptors: candidate images by descriptor votes.

All descriptors of all described items live in one binary inverted file (faiss ``IndexBinaryIVF``): a fixed
*vocabulary* of 256-bit centroids (:mod:`.vocabulary`, shipped with the package per descriptor kind, so nothing is
trained per catalogue or per process) splits the descriptors into lists by their nearest centroid; a query
descriptor is compared, by exact Hamming distance, with the descriptors of the ``nprobe`` lists whose centroids
are nearest to it, not with every descriptor. So a query costs about ``nprobe / len(vocabulary)`` of a scan, and
the answer is approximate: a true neighbour filed in an unprobed list is missed (``nprobe`` equal to the
vocabulary's size is an exact scan). The probe itself is the package's compiled scan (``kernels.inverted_topk``)
reading faiss's lists in place: each list a search probes is read once, tile by tile, against all the query
descriptors that probe it, where faiss reads it once per query descriptor (faster by the share of lists probed by
more than one of them: BENCHMARKS.md, "Partial-image search at 10,000 photographs"), with the same distances;
``probe="faiss"`` (or a build without the extension) reads the same lists with faiss's own scan
(``IndexBinaryIVF.search_preassigned``). Each descriptor's faiss id is ``key << SHIFT | row``: the item's key and
the descriptor's row in that item, so no id map is held and an item's descriptors are one id range.

A query descriptor's ``knn`` nearest descriptors within ``max_distance`` bits vote, at most once per item, for
their items; the items with the most votes are the candidates, and each candidate's putative matches for
:mod:`.verify` are the index's own neighbours: per query descriptor the nearest descriptor of that item among its
``knn``, then per item descriptor only its nearest query descriptor (one-to-one, so a repeated texture does not
stack inliers on one point).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import InvalidParameterError
from ..index import load_faiss
from ..index.kernels import compiled_available, hamming_topk, inverted_topk
from .features import BYTES, LocalFeatures

__all__ = ["PROBES", "SHIFT", "DescriptorIndex", "brute_force_votes", "vote_counts", "votes_from"]

PROBES = ("auto", "compiled", "faiss")

SHIFT = 16  # rows of one item: at most 2**16 (Extractor allows 20,000 keypoints)
_ROWS = (1 << SHIFT) - 1
_PAIR_SHIFT = 16  # (item, query row) in one int64 while a query has at most 2**16 descriptors


def vote_counts(distances: np.ndarray, owners: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, votes): each item key, ascending, and the number of query descriptors (rows) with at least one
    neighbour of that item within ``max_distance`` (``owners`` -1: no neighbour)."""
    ok = (owners >= 0) & (distances <= max_distance)
    rows, owner = np.nonzero(ok)[0].astype(np.int64), owners[ok].astype(np.int64)
    if len(owners) <= 1 << _PAIR_SHIFT:  # each (item, row) once: as one int64 (keys < 2**47), or as pairs
        item = np.unique((owner << _PAIR_SHIFT) | rows) >> _PAIR_SHIFT
    else:
        item = np.unique(np.stack([owner, rows], axis=1), axis=0)[:, 0]
    keys, counts = np.unique(item, return_counts=True)
    return keys, counts


def votes_from(distances: np.ndarray, owners: np.ndarray, max_distance: int) -> dict[int, int]:
    """item key → its votes (:func:`vote_counts`)."""
    keys, counts = vote_counts(distances, owners, max_distance)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def brute_force_votes(query: np.ndarray, items: Mapping[int, LocalFeatures], knn: int, max_distance: int
                      ) -> dict[int, int]:
    """The votes of an exact scan of every descriptor (ties at the k-th distance by insertion order): what the
    index answers with every list probed, the reference in the tests."""
    codes = np.concatenate([f.desc for f in items.values()]) if items else np.zeros((0, BYTES), np.uint8)
    owners = np.concatenate([np.full(len(f), key) for key, f in items.items()]) if items else np.zeros(0, int)
    bits = np.unpackbits(codes, axis=1).astype(np.float32)  # float32 products of 0/1 are exact up to 2**24
    qbits = np.unpackbits(query, axis=1).astype(np.float32)
    d = np.rint(qbits.sum(1)[:, None] + bits.sum(1)[None, :] - 2 * qbits @ bits.T).astype(np.int64)
    order = np.argsort(d, axis=1, kind="stable")[:, :knn]
    return votes_from(np.take_along_axis(d, order, 1), owners[order], max_distance)


class DescriptorIndex:
    """Every described item's descriptors in one inverted file; ``put`` replaces an item's, ``remove`` drops them.

    Args:
        vocabulary: (n, 32) uint8 centroids (:func:`.vocabulary.load`), at least one.
        nprobe: lists searched per query descriptor (1 .. len(vocabulary)).
        probe: ``"auto"`` (the compiled scan where it is built, else faiss), ``"compiled"`` or ``"faiss"``.
    """

    def __init__(self, vocabulary: np.ndarray, nprobe: int = 4, probe: str = "auto") -> None:
        vocabulary = np.ascontiguousarray(vocabulary, dtype=np.uint8)
        if vocabulary.ndim != 2 or vocabulary.shape[1] != BYTES or not len(vocabulary):
            raise InvalidParameterError(f"A vocabulary is (n, {BYTES}) uint8 centroids. Got {vocabulary.shape}.")
        faiss = load_faiss()
        self._vocabulary = vocabulary
        self.quantizer = faiss.IndexBinaryFlat(BYTES * 8)
        self.quantizer.add(vocabulary)
        self._ivf = faiss.IndexBinaryIVF(self.quantizer, BYTES * 8, len(vocabulary))
        self._ivf.is_trained = True  # the centroids are the vocabulary's: nothing to train
        self.nprobe = nprobe
        self._readable = compiled_available() and isinstance(faiss.downcast_InvertedLists(self._ivf.invlists),
                                                             faiss.ArrayInvertedLists)
        self.probe = probe
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # the lists' addresses and sizes
        self._rows: dict[int, int] = {}  # item key -> its number of descriptors

    @property
    def nprobe(self) -> int:
        return int(self._ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= self.lists:
            raise InvalidParameterError(f"The 'nprobe' parameter must be an integer in [1, {self.lists}]. "
                                        f"Got {value!r}.")
        self._ivf.nprobe = value

    @property
    def probe(self) -> str:
        """``"compiled"`` or ``"faiss"``: the scan that reads the lists (``"auto"`` is resolved when set)."""
        return self._probe

    @probe.setter
    def probe(self, value: str) -> None:
        if value not in PROBES:
            raise InvalidParameterError(f"The 'probe' parameter must be one of {', '.join(PROBES)}. Got {value!r}.")
        if value == "compiled" and not self._readable:
            raise InvalidParameterError("probe='compiled' needs the compiled extension: reinstall the package "
                                        "(pip install -e .) with a C compiler")
        self._probe = "compiled" if value != "faiss" and self._readable else "faiss"

    @property
    def lists(self) -> int:
        return int(self._ivf.nlist)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    @property
    def descriptors(self) -> int:
        return int(self._ivf.ntotal)

    def memory_bytes(self) -> int:
        """Codes and ids in the lists, the vocabulary, and the per-item counts (the index's memory; the keypoint
        positions are held by the caller). faiss's lists grow like vectors: up to 2x more may be reserved."""
        return self.descriptors * (BYTES + 8) + self.lists * BYTES + 64 * len(self._rows)

    def put(self, key: int, features: LocalFeatures) -> None:
        self.put_many({key: features})

    def put_many(self, items: Mapping[int, LocalFeatures]) -> None:
        """Add (or replace) several items' descriptors in one call (one quantisation pass)."""
        self.remove(items)
        codes, ids = [], []
        for key, f in items.items():
            key, n = int(key), len(f)
            if not 0 <= key < 1 << (63 - SHIFT):
                raise InvalidParameterError(f"An item key must be in [0, 2**{63 - SHIFT}). Got {key}.")
            if n > _ROWS + 1:
                raise InvalidParameterError(f"An item has at most {_ROWS + 1} descriptors. Got {n}.")
            self._rows[key] = n
            if n:
                codes.append(np.ascontiguousarray(f.desc, dtype=np.uint8))
                ids.append((key << SHIFT) + np.arange(n, dtype=np.int64))
        if codes:
            x, xids = np.concatenate(codes), np.concatenate(ids)
            lists = self.assign(x)
            faiss = load_faiss()
            self._table = None  # a list's codes may move when it grows
            self._ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(xids), faiss.swig_ptr(lists))

    def assign(self, codes: np.ndarray) -> np.ndarray:
        """Each descriptor's inverted list: its nearest centroid (ties: the lower list), by the package's Hamming
        scan (``lookalike.index.kernels``, 2x faster than faiss's flat quantiser for this, so loading a large
        catalogue's index takes half the time); a query descriptor's ``nprobe`` lists come from the same scan."""
        if not len(codes):
            return np.zeros(0, np.int64)
        _, rows = hamming_topk(np.ascontiguousarray(codes, dtype=np.uint8), self._vocabulary, 1)
        return np.ascontiguousarray(rows[:, 0], dtype=np.int64)

    def remove(self, keys: Iterable[int]) -> None:
        ranges = []
        for key in keys:
            n = self._rows.pop(int(key), None)
            if n:
                ranges.append((int(key) << SHIFT) + np.arange(n, dtype=np.int64))
        if ranges:
            self._table = None
            self._ivf.remove_ids(load_faiss().IDSelectorBatch(np.concatenate(ranges)))

    def _lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per inverted list: the address of its codes, of its ids, and its size (read again after a change; the
        caller holds no other reference, and faiss's ArrayInvertedLists keeps each list in one vector)."""
        if self._table is None:
            lists = self._ivf.invlists
            sizes = np.array([lists.list_size(i) for i in range(self.lists)], np.int64)
            codes, ids = np.zeros(len(sizes), np.uint64), np.zeros(len(sizes), np.uint64)
            for i in np.flatnonzero(sizes).tolist():
                codes[i], ids[i] = int(lists.get_codes(i)), int(lists.get_ids(i))
            self._table = codes, ids, sizes
        return self._table

    def neighbours(self, query: np.ndarray, knn: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distances, owners, rows), each (len(query), knn): each query descriptor's ``knn`` nearest descriptors
        among the probed lists, nearest first; owner -1 (and row -1) where fewer were found."""
        query = np.ascontiguousarray(query, dtype=np.uint8)
        if not len(query) or not self.descriptors:
            empty = np.full((len(query), knn), -1, np.int64)
            return np.full((len(query), knn), BYTES * 8 + 1, np.int64), empty, empty.copy()
        centroid_distances, lists = self.probes(query)
        if self.probe == "compiled":
            distances, ids = inverted_topk(query, lists, *self._lists(), knn)
        else:
            distances, ids = self._ivf.search_preassigned(query, knn, lists, centroid_distances)
        found = ids >= 0
        owners = np.where(found, ids >> SHIFT, -1)
        rows = np.where(found, ids & _ROWS, -1)
        return distances.astype(np.int64), owners, rows

    def probes(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centroid distances, lists), each (len(query), nprobe): the lists a search of each query descriptor
        reads, nearest centroid first, ties by the lower list."""
        return hamming_topk(np.ascontiguousarray(query, dtype=np.uint8), self._vocabulary, self.nprobe)

    def votes(self, query: np.ndarray, *, knn: int, max_distance: int) -> dict[int, int]:
        distances, owners, _rows = self.neighbours(query, knn)
        return votes_from(distances, owners, max_distance)

    def candidates(self, query: np.ndarray, n: int, *, knn: int, max_distance: int, min_votes: int = 2
                   ) -> list[tuple[int, int, np.ndarray]]:
        """The ``n`` items with the most votes (at least ``min_votes``), most first, ties by key, as (key, votes,
        matches): ``matches`` is (m, 2) of (query row, the item's descriptor row), one-to-one (see the module doc)
        — the putative matches geometric verification takes."""
        distances, owners, rows = self.neighbours(query, knn)
        keys, counts = vote_counts(distances, owners, max_distance)
        enough = counts >= min_votes
        keys, counts = keys[enough], counts[enough]
        top = np.lexsort((keys, -counts))[:n]  # most votes first, ties by key
        chosen, ranked = keys[top], counts[top]
        ok = np.isin(owners, chosen) & (distances <= max_distance)
        q, col = np.nonzero(ok)  # row-major: per query row, its neighbours nearest first
        own, ref, dist = owners[q, col], rows[q, col], distances[q, col]
        first = np.ones(len(q), bool)  # the nearest neighbour of each (item, query row)
        order = np.lexsort((col, q, own))
        first[order[1:]] = (own[order[1:]] != own[order[:-1]]) | (q[order[1:]] != q[order[:-1]])
        own, q, ref, dist = own[first], q[first], ref[first], dist[first]
        order = np.lexsort((q, dist, ref, own))  # then the nearest query row of each (item, item row)
        keep = np.ones(len(order), bool)
        keep[1:] = (own[order[1:]] != own[order[:-1]]) | (ref[order[1:]] != ref[order[:-1]])
        sel = order[keep]
        own, q, ref = own[sel], q[sel], ref[sel]
        out = []
        for key, v in zip(chosen.tolist(), ranked.tolist(), strict=True):
            mine = own == key
            pairs = np.stack([q[mine], ref[mine]], axis=1)
            out.append((key, v, pairs[np.argsort(pairs[:, 0], kind="stable")]))
        return out
