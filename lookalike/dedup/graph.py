"""Duplicate groups of a whole catalogue: kNN graph → verdict per edge → connected components.

The graph is read through the catalogue's public views: the float encoder's live index (searched with the items'
own vectors, read back a batch at a time) or, for large catalogues, a projected candidate index refined by exact
cosine (:class:`~lookalike.index.ProjectedIndex` inside a :class:`~lookalike.index.RefineIndex` over the live
index: the index factory's ``"PCA128,Flat,Refine"``, composed around the catalogue's own vectors).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..index import ProjectedIndex, ReadableIndex, RefineIndex
from ..validation import check_int
from .calibration import SIMILAR
from .groups import choose_keeper, components, edges_from_hits, unique_pairs
from .matching import EXACT_COSINE, colours_of, float_encoder, require_calibration, same_pixels, thumbs_of
from .report import DedupReport, DuplicateGroup, DuplicatePair
from .scoring import cosine_floor, scored_pairs
from .signals import THUMB

if TYPE_CHECKING:
    from ..catalog import Catalog

APPROXIMATE_FROM = 20_000  # catalogues this large search candidates in a reduced space (dedup(approximate=None))
PROJECTED_DIMS = 128  # dimensions of that space
_FIT_SAMPLE = 8192  # items the projection is fitted on
_RERANK_BATCH = 256  # queries whose candidates are rescored at once (256 x depth x dim floats)
_READ = 2048  # vectors read back at a time (2048 x 1280 floats: 10 MB, and two copies of it in flight)


def dedup(catalog: Catalog, *, k: int = 10, batch: int = 1024, approximate: bool | None = None,
          depth: int | None = None, seed: int = 0) -> DedupReport:
    """Duplicate groups of the whole catalogue (see the module docstring).

    The graph holds each item's ``k`` nearest items by cosine. Exact (every item against every other, in
    batches), or with ``approximate`` (default: from :data:`APPROXIMATE_FROM` items on) the ``depth`` (default
    ``4 (k + 1)``) nearest in a :data:`PROJECTED_DIMS`-dimension projection of the vectors are found first and
    rescored by their exact cosine. Memory is the projection (n x 128 floats), the candidates, the edges and the
    thumbnails.
    """
    started = time.perf_counter()
    k = check_int("k", k, 1, 1000)
    cal = require_calibration(catalog)
    view = catalog.vector_index(float_encoder(catalog).spec)
    keys = view.keys()
    if approximate is None:
        approximate = len(keys) >= APPROXIMATE_FROM
    floor = cosine_floor(cal)
    if approximate:
        depth = check_int("depth", 4 * (k + 1) if depth is None else depth, k + 1, 10_000)
        pairs, cos = approximate_edges(view, keys, k, depth, min_score=floor, seed=seed)
        search = f"top-{depth} in {PROJECTED_DIMS} projected dimensions, rescored by exact cosine"
    else:
        pairs, cos = exact_edges(view, keys, k, min_score=floor, batch=batch)
        search = "exact"
    timings = {"kNN graph": time.perf_counter() - started}
    same_sha = catalog.same_content_pairs()
    if same_sha:
        extra = np.array(same_sha, dtype=np.int64)
        pairs = np.concatenate([pairs, extra])
        cos = np.r_[cos, np.full(len(extra), np.nan, dtype=np.float32)]
    items = catalog.items_by_key(sorted(set(pairs.reshape(-1).tolist())))
    known = np.array([a in items and b in items for a, b in pairs.tolist()], dtype=bool)  # removed meanwhile: out
    pairs, cos = pairs[known], cos[known]
    thumbs = thumb_table(catalog, sorted(items))
    colours = colours_of(catalog, sorted(items)) if cal.colour_limit is not None else None
    exact = np.array([items[a].sha256 == items[b].sha256 or (c >= EXACT_COSINE and same_pixels(
        items[a].path, items[b].path, catalog)) for (a, b), c in zip(pairs.tolist(), cos.tolist(), strict=True)],
        dtype=bool)
    cos = np.where(np.isnan(cos), 1.0, cos)
    timings["rows and thumbnails"] = time.perf_counter() - started - sum(timings.values())
    sig = scored_pairs(cal, thumbs, pairs, cos, skip=exact, colours=colours)
    del thumbs, colours
    timings["signals"] = time.perf_counter() - started - sum(timings.values())
    geo = sig["geometric"]
    verdicts, evidence = cal.verdicts(sig, exact)
    dup = np.array([v != SIMILAR for v in verdicts], dtype=bool)
    groups_of = components(keys, pairs[dup])
    group_of = {m: g for g, members in enumerate(groups_of) for m in members}
    edges: list[list[DuplicatePair]] = [[] for _ in groups_of]
    for i in np.flatnonzero(dup).tolist():
        a, b = int(pairs[i, 0]), int(pairs[i, 1])
        g = geo[i]
        edges[group_of[a]].append(DuplicatePair(
            items[a].id, items[b].id, verdicts[i], evidence=round(float(evidence[i]), 3),
            cosine=round(float(cos[i]), 4), geometric=None if np.isnan(g) else round(float(g), 4)))
    groups = []
    for members, group_edges in zip(groups_of, edges, strict=True):
        members_items = [items[m] for m in members]
        groups.append(DuplicateGroup(keeper=choose_keeper(members_items).id, items=members_items,
                                     pairs=group_edges))
    return DedupReport(groups=groups, items=len(keys), pairs_checked=len(pairs), calibration=cal.summary(),
                       seconds=time.perf_counter() - started, search=search,
                       geometric_checks=int(np.count_nonzero(~np.isnan(geo))),
                       timings={**timings, "groups": time.perf_counter() - started - sum(timings.values())})


def exact_edges(view: ReadableIndex, keys: np.ndarray, k: int, *, min_score: float, batch: int = 1024,
                queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges to each item's ``k`` nearest by exact cosine, the items' own vectors read back from the index a batch
    at a time; only from the items at positions ``queries`` of ``keys``, if given. Items removed meanwhile are
    skipped."""
    which = np.arange(len(keys)) if queries is None else np.asarray(queries, dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(which), batch):
        own = keys[which[start : start + batch]]
        vectors, present = view.vectors(own)
        if present.any():
            scores, hits = view.search(vectors[present], min(k + 1, max(1, len(view))))
            found.append(edges_from_hits(own[present], scores, hits, min_score=min_score))
    return _merge(found)


def approximate_edges(view: ReadableIndex, keys: np.ndarray, k: int, depth: int, *, min_score: float, seed: int = 0,
                      dims: int = PROJECTED_DIMS, queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges to each item's ``k`` nearest among its ``depth`` nearest in a projection fitted on a sample of the
    vectors, by exact cosine; only from the items at positions ``queries`` of ``keys``, if given (to measure the
    recall of a subset against :func:`exact_edges`)."""
    n = len(keys)
    if n == 0:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    rng = np.random.default_rng(seed)
    projected = ProjectedIndex(dims)
    sample, present = view.vectors(keys[np.sort(rng.choice(n, size=min(n, _FIT_SAMPLE), replace=False))])
    projected.train(sample[present])
    for start in range(0, n, _READ):
        vectors, present = view.vectors(keys[start : start + _READ])
        projected.add(keys[start : start + _READ][present], vectors[present])
    refined = RefineIndex(projected, view, depth=depth)
    which = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(which), _RERANK_BATCH):
        own = keys[which[start : start + _RERANK_BATCH]]
        vectors, present = view.vectors(own)
        if present.any():
            scores, hits = refined.search(vectors[present], k + 1)
            found.append(edges_from_hits(own[present], scores, hits, min_score=min_score))
    return _merge(found)


def _merge(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not found:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    return unique_pairs(np.concatenate([p for p, _ in found]), np.concatenate([s for _, s in found]))


class ThumbTable(Mapping[int, np.ndarray]):
    """Thumbnails of many items in one (n, 2, 32, 32) uint8 array (no per-item objects), as a key → array map."""

    def __init__(self, capacity: int) -> None:
        self._pos: dict[int, int] = {}
        self._data = np.empty((capacity, 2, THUMB, THUMB), dtype=np.uint8)

    def put(self, key: int, thumbs: np.ndarray) -> None:
        self._pos.setdefault(key, len(self._pos))
        self._data[self._pos[key]] = thumbs

    def __getitem__(self, key: int) -> np.ndarray:
        return self._data[self._pos[key]]

    def __iter__(self) -> Iterator[int]:
        return iter(self._pos)

    def __len__(self) -> int:
        return len(self._pos)


def thumb_table(catalog: Catalog, keys: list[int], chunk: int = 8192) -> ThumbTable:
    """:func:`~.matching.thumbs_of` for many keys, read a chunk at a time into one array."""
    table = ThumbTable(len(keys))
    for start in range(0, len(keys), chunk):
        for key, thumbs in thumbs_of(catalog, keys[start : start + chunk]).items():
            table.put(key, thumbs)
    return table
