"""Exact Hamming search by multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012), behind the index protocol.

Each ``b``-bit code is cut into ``m`` disjoint substrings and every substring gets a hash table (a direct-address
table: value -> the rows holding it). Two codes within Hamming distance ``d`` agree within ``floor(d / m)`` bits
on at least one substring (pigeonhole), so a search probes each table at substring radius 0, 1, 2, ... and checks
the full distance of the rows found. After radius ``r`` has been probed in substrings ``0..t-1`` (and ``r - 1``
in the rest), a row not yet seen is at least ``m r + t`` away: once the k-th best distance found is below that,
the answer is exact, ties included (an unseen row is strictly farther, so it cannot tie).

``m`` follows the paper: ``m = round(b / log2 n)``, so that a substring of ``~log2 n`` bits indexes about one row
per value. The tables are built from the codes on the first search after they change much (a rebuild is
``O(n)`` per table: 1M x 64-bit codes take ~0.3 s, measured by ``benchmarks/search.py``); codes added since are
searched exactly by the scan, and rows removed are masked, until more than an eighth of the rows changed.

MIH answers a query in work proportional to the rows near it, not to ``n``: on codes with close neighbours
(near-duplicates, learned codes of similar items) it is far below a scan; on codes spread uniformly it probes
thousands of buckets. So every search has a budget: a query whose probing would cost more than the compiled
scan of every row is answered by that scan instead (the same answer). :meth:`search_mode` says which a batch
would use; ``mode="mih"`` or ``"scan"`` forces one.

Results, ties and padding are exactly :class:`~lookalike.index.flat.BinaryFlatIndex`'s (this is one, with tables
on top): the tests compare both on the same data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lookalike.index import _compiled_topk, _numpy_topk
from lookalike.index._checks import check_k
from lookalike.index._mih_tables import Tables, substrings, weight_masks
from lookalike.index.flat import BinaryFlatIndex
from lookalike.index.kernels import PAD_DISTANCE, PAD_ROW, hamming_topk
from lookalike.validation import Choice, Integer, check

__all__ = ["MultiIndexHashIndex", "substring_count"]

_MAX_SUBSTRING_BITS = 24  # a direct-address table of 2**24 int32 offsets is 64 MiB: the most one table may take
_MIN_REBUILD = 4096  # changed rows tolerated before a rebuild, at least (else n / 8)
_ROW_BITS = 40  # a (distance, row) pair packs into one int64 as distance << 40 | row
MODES = ("auto", "mih", "scan")
# The budget, in units of one probed bucket or one checked row (~10-20 ns of numpy each): a step of probing
# (a dozen numpy calls) costs ~_STEP_COST units, the compiled scan ~_SCAN_UNITS_PER_ROW units per row.
_STEP_COST = 2000
_SCAN_UNITS_PER_ROW = 0.05
# The same for the C loop, measured on 1M x 64-bit codes: a probed bucket or a checked row costs ~100 ns (cache
# misses into the offsets, the row map and the codes), the compiled scan ~0.3 ns a row.
_C_STEP_COST = 16.0
_DELTA_SHARE = 0.015  # a quarter of the budget (0.003 units a row) at 0.05 units a delta row
_C_MAX_TABLES = 64  # the C probe's most substrings (1024-bit codes at 60k rows need more: numpy probes those)
_C_SCAN_UNITS_PER_ROW = 0.003


def substring_count(n_bits: int, n: int) -> int:
    """The paper's number of substrings for ``n`` codes of ``n_bits``: ``round(n_bits / log2 n)``, at least 1,
    and enough that no substring is wider than 24 bits (one table's direct addressing)."""
    m = max(1, round(n_bits / math.log2(max(n, 2))), -(-n_bits // _MAX_SUBSTRING_BITS))
    return min(m, n_bits)


_NONE = np.empty(0, np.int64)


class MultiIndexHashIndex(BinaryFlatIndex):
    """Exact Hamming k-NN and radius search by multi-index hashing over ``n_bits``-bit codes.

    Args:
        n_bits: code length, a multiple of 8.
        substrings: ``m``, the number of substring tables; ``None`` (default) chooses the paper's
            ``round(n_bits / log2 n)`` at each rebuild.
        mode: ``"auto"`` (MIH within a budget, else the scan), ``"mih"`` (always probe) or ``"scan"``.
        backend: the scan's backend (see :mod:`lookalike.index.kernels`).
        compiled: probe with the C loop of ``_hamming.c`` where it is built (``False``: numpy, for tests).

    Example:
        >>> index = MultiIndexHashIndex(16)
        >>> index.add([1, 2, 3], np.array([[0, 0], [255, 0], [255, 255]], dtype=np.uint8))
        >>> index.hamming(np.array([[1, 0]], dtype=np.uint8), k=2, )
        (array([[1, 7]], dtype=int32), array([[1, 2]]))
    """

    def __init__(self, n_bits: int, *, substrings: int | None = None, mode: str = "auto",
                 backend: str = "auto", compiled: bool = True) -> None:
        super().__init__(n_bits, backend=backend)
        if substrings is not None:  # at most 24 bits a substring: a table of 2**24 offsets is the largest built
            check("substrings", substrings, Integer(-(-int(n_bits) // _MAX_SUBSTRING_BITS), int(n_bits)),
                  owner="MultiIndexHashIndex")
        check("mode", mode, Choice(MODES), owner="MultiIndexHashIndex")
        self._m = substrings
        self._mode = mode
        self._compiled = bool(compiled)  # False: probe with numpy even where the C loop is built (tests)
        self._tables: Tables | None = None
        self._cur_of_build = np.empty(0, np.int64)  # build row -> current row, -1 once removed or rewritten
        self._build_of_cur = np.empty(0, np.int64)  # current row -> build row, -1 for rows the tables miss
        self._changed = 0  # rows changed since the build (added, rewritten or removed)
        self._delta: np.ndarray | None = None  # cached: live rows the tables miss
        self._over_budget = 0.0  # moving average of the share of queries that went over budget
        self._batches = 0
        self.stats = {"rebuilds": 0, "mih_queries": 0, "scan_queries": 0, "candidates": 0}

    def __repr__(self) -> str:
        m = self._tables and len(self._tables.widths)
        return f"<MultiIndexHashIndex {self.n_bits} bits, {len(self)} codes, {m or 'no'} tables>"

    # -- bookkeeping (hooks of the flat index) ---------------------------------------------------------------
    def _rewritten(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        if len(self._build_of_cur) < len(self._keys):
            grown = np.full(len(self._keys), -1, np.int64)
            grown[: len(self._build_of_cur)] = self._build_of_cur[: len(grown)]
            self._build_of_cur = grown
        built = self._build_of_cur[rows]
        self._cur_of_build[built[built >= 0]] = -1
        self._build_of_cur[rows] = -1
        self._changed += len(rows)
        self._delta = None

    def _dropped(self, row: int, last: int) -> None:
        built = int(self._build_of_cur[row]) if row < len(self._build_of_cur) else -1
        if built >= 0:
            self._cur_of_build[built] = -1
        if row != last and last < len(self._build_of_cur):
            moved = int(self._build_of_cur[last])
            self._build_of_cur[row] = moved
            self._build_of_cur[last] = -1
            if moved >= 0:
                self._cur_of_build[moved] = row
        elif row < len(self._build_of_cur):
            self._build_of_cur[row] = -1
        self._changed += 1
        self._delta = None

    def _resize(self, capacity: int) -> None:
        super()._resize(capacity)
        grown = np.full(capacity, -1, np.int64)
        keep = min(capacity, len(self._build_of_cur))
        grown[:keep] = self._build_of_cur[:keep]
        self._build_of_cur = grown

    def rebuild(self) -> None:
        """Build the tables from the codes held now (searches do it themselves when the codes changed much)."""
        n = len(self)
        m = self._m or substring_count(self.n_bits, n)
        self._tables = Tables(self._data[:n], min(m, self.n_bits))
        self._cur_of_build = np.arange(n, dtype=np.int64)
        self._build_of_cur = np.full(len(self._keys), -1, np.int64)
        self._build_of_cur[:n] = np.arange(n)
        self._changed = 0
        self._delta = None
        self.stats["rebuilds"] += 1

    def _ready(self) -> Tables:
        # Rebuild after an eighth of the rows changed, or sooner when the delta (searched row by row) grows past a
        # quarter of a query's budget and would send every query to the scan.
        if (self._tables is None or self._changed > max(_MIN_REBUILD, self._tables.n // 8)
                or len(self._delta_rows()) > max(_MIN_REBUILD, _DELTA_SHARE * len(self))):
            self.rebuild()
        assert self._tables is not None
        return self._tables

    def _delta_rows(self) -> np.ndarray:
        if self._delta is None:
            self._delta = np.flatnonzero(self._build_of_cur[: len(self)] < 0)
        return self._delta

    @property
    def table_bytes(self) -> int:
        """Memory of the tables and row maps, bytes (the codes themselves are the flat index's)."""
        tables = self._tables.nbytes if self._tables else 0
        return tables + self._cur_of_build.nbytes + self._build_of_cur.nbytes

    # -- search ------------------------------------------------------------------------------------------------
    def search_mode(self, nq: int, k: int) -> str:
        """``"mih"`` or ``"scan"``: what :meth:`hamming` starts with for a batch of ``nq`` queries (``"mih"``
        still falls back to the scan for a query that exceeds its budget)."""
        if self._mode != "auto":
            return self._mode
        # Measured (benchmarks/search.py): below ~50k codes the compiled scan of everything costs less than the
        # probing's cache misses, and a k near n needs most rows anyway.
        if len(self) < 50_000 or k > 1000:
            return "scan"
        # Codes spread evenly (no close neighbours) send most queries over budget: then go straight to the scan,
        # trying the tables again on every 16th batch in case the data or the queries changed.
        self._batches += 1
        return "scan" if self._over_budget > 0.5 and self._batches % 16 else "mih"

    def _nearest_rows(self, queries: Any, k: Any, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        k = check_k(k, type(self).__name__)
        queries = self._check_vectors("queries", queries, rows=None)
        if self.search_mode(len(queries), k) == "scan" or not len(self):
            return super()._nearest_rows(queries, k, keys)
        allowed = None
        if keys is not None:
            rows = self._subset(keys)
            assert rows is not None
            if 8 * len(rows) < len(self):  # a narrow filter: its rows are fewer than MIH would check
                return super()._nearest_rows(queries, k, keys)
            allowed = np.zeros(len(self), bool)
            allowed[rows] = True
        tables = self._ready()
        inner = min(k, len(self) if allowed is None else int(allowed.sum()))
        if not inner or not len(queries):  # nothing to find, or no query (a (0, k) answer)
            return np.full((len(queries), k), PAD_DISTANCE, np.int32), np.full((len(queries), k), PAD_ROW, np.int64)
        compiled = self._compiled and _compiled_topk.available() and len(tables.widths) <= _C_MAX_TABLES
        d, r = (self._probe_compiled if compiled else self._probe_numpy)(tables, queries, inner, allowed)
        if inner == k:  # the common case: k live rows found for every query, nothing to pad
            return d, r
        distances = np.full((len(queries), k), PAD_DISTANCE, np.int32)
        found = np.full((len(queries), k), PAD_ROW, np.int64)
        distances[:, :inner], found[:, :inner] = d, r
        return distances, found

    def _probe_compiled(self, tables: Tables, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[
            np.ndarray, np.ndarray]:
        """Every query probed by the C loop (``_hamming.mih_search``, both cores); those over budget scanned."""
        hamming = _compiled_topk.extension()
        assert hamming is not None
        nq = len(queries)
        distances, rows = np.empty((nq, k), np.int32), np.empty((nq, k), np.int64)
        fell_back = np.zeros(nq, np.uint8)
        budget = -1.0 if self._mode == "mih" else len(self) * _C_SCAN_UNITS_PER_ROW
        self.stats["candidates"] += hamming.mih_search(
            queries, self._data[: len(self)], queries.shape[1], k, tables.widths_array, tables.starts_array,
            tables.all_offsets, tables.offset_base, tables.all_members, tables.member_codes, tables.member_base,
            self._cur_of_build,
            self._delta_rows(), None if allowed is None else allowed.view(np.uint8), budget, _C_STEP_COST,
            distances, rows, fell_back, 1 if nq == 1 else _numpy_topk.n_threads())  # one query: one thread
        over = np.flatnonzero(fell_back) if fell_back.any() else _NONE
        if len(over):
            subset = None if allowed is None else np.flatnonzero(allowed)
            distances[over], rows[over] = hamming_topk(queries[over], self._data[: len(self)], k, subset=subset,
                                                       backend=self._backend)
        self.stats["scan_queries"] += len(over)
        self.stats["mih_queries"] += nq - len(over)
        weight = min(1.0, nq / 16)
        self._over_budget = (1 - weight) * self._over_budget + weight * len(over) / nq
        return distances, rows

    def _probe_numpy(self, tables: Tables, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[
            np.ndarray, np.ndarray]:
        """The same search with numpy, one query at a time (where the compiled module is not built)."""
        distances, rows = np.empty((len(queries), k), np.int32), np.empty((len(queries), k), np.int64)
        for i, query in enumerate(queries):
            distances[i], rows[i] = self._query(tables, query, k, allowed)
        return distances, rows

    def within(self, queries: Any, radius: int, *, keys: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every code within Hamming distance ``radius`` of each query (among ``keys`` if given).

        By the pigeonhole principle a code within ``radius`` agrees within ``radius // m`` bits on some
        substring, so only those buckets are probed; the scan answers instead when they are more than it costs.
        Same result as :meth:`BinaryFlatIndex.within`: ``(distances, keys)`` per query, ties by row.
        """
        queries, radius, rows = self._radius_arguments(queries, radius, keys)
        if self.search_mode(len(queries), 1) == "scan" or not len(self):
            return super().within(queries, radius, keys=keys)
        tables = self._ready()
        m = len(tables.widths)
        sub_radius = radius // m
        probes = sum(math.comb(w, r) for w in tables.widths for r in range(min(sub_radius, w) + 1))
        if self._mode == "auto" and probes * 4 > len(self):  # the buckets alone would cost more than a scan
            return super().within(queries, radius, keys=keys)
        allowed = None
        if rows is not None:
            allowed = np.zeros(len(self), bool)
            allowed[rows] = True
        out = []
        for query in queries:
            qsubs = [int(substrings(query[None, :], tables.starts[t], tables.widths[t])[0]) for t in range(m)]
            found = [self._delta_rows()]
            for t in range(m):
                for r in range(min(sub_radius, tables.widths[t]) + 1):
                    built = tables.probe(t, weight_masks(tables.widths[t], r) ^ np.uint32(qsubs[t]))
                    found.append(self._cur_of_build[built])
            cand = np.unique(np.concatenate(found))
            cand = cand[cand >= 0]
            if allowed is not None:
                cand = cand[allowed[cand]]
            d = self._distances(query, cand)
            keep = d <= radius
            d, cand = d[keep], cand[keep]
            order = np.lexsort((cand, d))
            out.append((d[order].astype(np.int32), self._to_keys(cand[order])))
        return out

    def _distances(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        xor = np.bitwise_xor(self._data[rows], query[None, :])
        return np.bitwise_count(xor).sum(axis=1, dtype=np.int64)

    def _query(self, tables: Tables, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[
            np.ndarray, np.ndarray]:
        """One query's top k as (distances, rows), by probing; the scan when probing would cost more."""
        m = len(tables.widths)
        qsubs = [int(substrings(query[None, :], tables.starts[t], tables.widths[t])[0]) for t in range(m)]
        budget = len(self) * _SCAN_UNITS_PER_ROW  # what the compiled scan of every row costs, in probe units
        best = np.empty(0, np.int64)  # packed (distance << 40 | row), ascending, at most k
        delta = self._delta_rows()
        if allowed is not None:
            delta = delta[allowed[delta]]
        if len(delta):
            best = self._merge(best, delta, self._distances(query, delta), k)
        work = len(delta)
        for r in range(max(tables.widths) + 1):
            for t in range(m):
                if len(best) == k and int(best[-1] >> _ROW_BITS) < m * r + t:
                    return self._unpack(best)
                if r > tables.widths[t]:
                    continue
                work += _STEP_COST + math.comb(tables.widths[t], r)
                if self._mode == "auto" and work > budget:
                    return self._scan_one(query, k, allowed)
                built = tables.probe(t, weight_masks(tables.widths[t], r) ^ np.uint32(qsubs[t]))
                rows = self._cur_of_build[built]
                rows = rows[rows >= 0]
                if allowed is not None:
                    rows = rows[allowed[rows]]
                work += len(rows)
                self.stats["candidates"] += len(rows)
                if len(rows):
                    best = self._merge(best, rows, self._distances(query, rows), k)
        return self._unpack(best)

    @staticmethod
    def _merge(best: np.ndarray, rows: np.ndarray, distances: np.ndarray, k: int) -> np.ndarray:
        packed = np.concatenate([best, (distances << _ROW_BITS) | rows])
        return np.unique(packed)[:k]  # a row seen twice has the same distance: unique drops the copy

    def _unpack(self, best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.stats["mih_queries"] += 1
        return (best >> _ROW_BITS).astype(np.int32), best & ((1 << _ROW_BITS) - 1)

    def _scan_one(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        self.stats["scan_queries"] += 1
        subset = None if allowed is None else np.flatnonzero(allowed)
        d, r = hamming_topk(query[None, :], self._data[: len(self)], k, subset=subset, backend=self._backend)
        keep = r[0] >= 0
        return d[0][keep], r[0][keep]
