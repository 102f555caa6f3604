"""Duplicate detection on a :class:`~lookalike.catalog.Catalog`: calibrate, check one image, group the catalogue.

The catalogue's methods (``calibrate_duplicates``, ``find_duplicates``, ``dedup``, ``add(check_duplicates=...)``)
call these; they use its float vectors, its thumbnails and its exact index.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..encoders import Encoder
from ..encoders.hashed import HashedEncoder
from ..errors import CalibrationRequiredError, CatalogError, ImageError, InvalidParameterError
from ..images import ImageSource, load_image
from .calibration import EXACT, SIMILAR, Calibration, check_precision, evidence_against, fit_calibration
from .edits import EDIT_KINDS, STRENGTHS, apply_edit
from .groups import choose_keeper, components, edges_from_hits, projected_topk, projection, unique_pairs
from .report import DedupReport, DuplicateGroup, DuplicateMatch
from .signals import THUMB, from_bytes, pair_signals, thumbnail, thumbnail_bytes

if TYPE_CHECKING:
    from ..catalog import Catalog, Item

META_KEY = "dedup_calibration"
MIN_ITEMS = 20
_EXACT_COSINE = 0.9999  # above this, two images are compared pixel by pixel
_EDIT_SIDE = 512  # sampled images are edited at most this large (as re-listed photos are)


def float_encoder(catalog: Catalog) -> tuple[int, Encoder]:
    for num, enc in catalog._encoders:
        if enc.kind == "float" and not isinstance(enc, HashedEncoder):
            return num, enc
    raise CatalogError(f"duplicate detection needs float vectors (e.g. efficientnet-lite0); catalogue {catalog.path} "
                       "has only binary codes")


def load_calibration(catalog: Catalog) -> Calibration | None:
    text = catalog._store.meta(META_KEY)
    return None if text is None else Calibration.from_json(text)


def require_calibration(catalog: Catalog) -> Calibration:
    cal = load_calibration(catalog)
    if cal is None:
        raise CalibrationRequiredError(f"catalogue {catalog.path} has no near-duplicate calibration yet; run "
                                       "'lookalike dedup --calibrate' (or Catalog.calibrate_duplicates()) first")
    spec = float_encoder(catalog)[1].spec
    if cal.encoder != spec:
        raise CalibrationRequiredError(f"the duplicate calibration is for {cal.encoder}, not {spec}; calibrate again "
                                       "(lookalike dedup --calibrate)")
    return cal


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(f"{name} must be an int in [{low}, {high}]. Got {value!r}.")
    return value


def thumbs_of(catalog: Catalog, keys: list[int]) -> dict[int, np.ndarray]:
    """Stored thumbnails of ``keys``; items from before schema 2 get theirs made from their file, and stored."""
    blobs = catalog._store.thumbs(keys)
    missing = [k for k in keys if k not in blobs]
    if missing:
        rows = catalog._store.rows_for_keys(missing)
        made = {}
        for key, row in rows.items():
            try:
                made[key] = thumbnail_bytes(load_image(row[2], limits=catalog.limits, draft=(64, 64)).image)
            except (ImageError, InvalidParameterError, TypeError):
                continue  # no file (an array was added) or it is gone: no geometric evidence for this item
        if made:
            with catalog._store.write() as db:
                db.executemany("INSERT OR REPLACE INTO thumbs (key, thumb) SELECT ?, ? WHERE EXISTS "
                               "(SELECT 1 FROM items WHERE key = ?)", [(k, b, k) for k, b in made.items()])
        blobs.update(made)
    return {k: from_bytes(b) for k, b in blobs.items()}


def calibrate(catalog: Catalog, *, target_precision: float = 0.99, sample: int = 200, k: int = 10,
              seed: int = 0) -> Calibration:
    """Fit and store the near-duplicate threshold on edited copies of a sample of the catalogue's own items."""
    target_precision = check_precision(target_precision)
    sample, k = _check_int("sample", sample, 10, 100_000), _check_int("k", k, 1, 1000)
    num, enc = float_encoder(catalog)
    n_items = catalog.count()
    if n_items < MIN_ITEMS:
        raise CatalogError(f"calibration needs at least {MIN_ITEMS} items (distractors for the edited copies); the "
                           f"catalogue has {n_items}")
    rng = np.random.default_rng(seed)
    rows = catalog._store.query("SELECT key, path, sha256 FROM items WHERE path IS NOT NULL ORDER BY key")
    sources: list[int] = []
    copies: list[Image.Image] = []
    kinds: list[str] = []
    for i in rng.permutation(len(rows)).tolist():
        if len(copies) == sample:
            break
        key, path, _sha = rows[i]
        try:
            image = load_image(path, limits=catalog.limits, draft=(_EDIT_SIDE, _EDIT_SIDE)).image
        except ImageError:
            continue
        image.thumbnail((_EDIT_SIDE, _EDIT_SIDE))
        kind = EDIT_KINDS[len(copies) % len(EDIT_KINDS)]
        strengths = STRENGTHS[kind]
        copies.append(apply_edit(image, kind, strengths[int(rng.integers(len(strengths)))], rng))
        sources.append(int(key))
        kinds.append(kind)
    if len(copies) < 10:
        raise CatalogError(f"calibration needs at least 10 readable image files; found {len(copies)}")
    vectors = enc.encode_pil(copies)
    depth = min(k, n_items)
    with catalog._store.lock:
        index = catalog._index(num)
        scores, hits = index.search(vectors, depth)
        vector_of = {key: index.get(key) for key in set(hits[hits >= 0].tolist()) | set(sources) if key in index}
    sha = {int(r[0]): r[2] for r in rows}
    query_of = np.repeat(np.arange(len(copies)), depth)
    hit_keys = hits.reshape(-1)
    valid = hit_keys >= 0
    labels = np.array([h == sources[q] or (h in sha and sha[h] == sha[sources[q]])
                       for q, h in zip(query_of.tolist(), hit_keys.tolist(), strict=True)])
    thumbs = thumbs_of(catalog, sorted(set(hit_keys[valid].tolist()) | set(sources)))
    for i, image in enumerate(copies):
        thumbs[-(i + 1)] = thumbnail(image)
    query_of, hit_keys, labels = query_of[valid], hit_keys[valid], labels[valid]
    pairs = np.stack([-(query_of + 1), hit_keys], axis=1)
    signals = {"cosine": scores.reshape(-1)[valid].astype(np.float64), **pair_signals(thumbs, pairs)}
    relisted = _relistings(thumbs, vector_of, sources, query_of, hit_keys, labels, signals)
    keep = ~relisted
    cal = fit_calibration({n: v[keep] for n, v in signals.items()}, labels[keep], query_of[keep], kinds,
                          target_precision=target_precision, encoder=enc.spec, k=k, seed=seed, created=time.time())
    if relisted.any():
        cal.notes.append(f"{int(relisted.sum())} distractor pair(s) left out: the candidate looks like a duplicate "
                         "of the copy's source already in the catalogue")
    catalog._store.set_meta(META_KEY, cal.to_json())
    return cal


def _relistings(thumbs: Mapping[int, np.ndarray], vector_of: Mapping[int, np.ndarray], sources: list[int],
                query_of: np.ndarray, hit_keys: np.ndarray, labels: np.ndarray, signals: dict[str, np.ndarray]
                ) -> np.ndarray:
    """The distractor pairs (edited copy c of source s, candidate h) that calibration leaves out: those where h is
    most likely a duplicate of s the catalogue already holds (a re-listing), which would count as a non-duplicate
    scoring like a true copy and push the threshold past the catalogue's real duplicates.

    Left out when the pair (s, h), by the summed evidence against every distractor, is (1) at least as strong as
    the pair (c, h): h resembles the copy no more than it resembles the source, so (c, h) adds nothing to what
    (s, h) says, and that pair is what dedup itself judges; and (2) at least as strong as the lower quartile of the
    copies' own matches to their sources: by the calibration's own examples, s and h look like a duplicate pair.
    A different item that meets both is one the verdicts could not tell from a re-listing anyway; (2) keeps the
    tables of the distractors almost whole (on benchmarks/duplicates.py's catalogue: 21 of 2,700 pairs left out).
    """
    cand = ~labels
    if not labels.any() or not cand.any():
        return np.zeros_like(labels)
    tables = {n: np.sort(v[cand][np.isfinite(v[cand])]) for n, v in signals.items()}
    copy_ev = evidence_against(tables, signals)
    bar = np.maximum(copy_ev, np.quantile(copy_ev[labels], 0.25))
    src = np.asarray(sources, dtype=np.int64)[query_of]
    src_pairs = np.stack([src, hit_keys], axis=1)
    cosine = np.array([float(np.dot(vector_of[s], vector_of[h])) if c and s in vector_of and h in vector_of
                       else np.nan for s, h, c in zip(src.tolist(), hit_keys.tolist(), cand, strict=True)])
    theirs = {"cosine": cosine, **pair_signals(thumbs, src_pairs, np.zeros(len(src_pairs), dtype=bool))}
    most = float(-np.log10(0.5 / (len(tables["geometric"]) + 1.0)) + 0.01)  # the most geometric evidence
    open_ = cand & (evidence_against(tables, theirs) + most >= bar)  # the geometric check only where it could decide
    theirs["geometric"] = pair_signals(thumbs, src_pairs, open_)["geometric"]
    return open_ & (evidence_against(tables, theirs) >= bar)


def _same_pixels(a: ImageSource | None, b: str | None, catalog: Catalog) -> bool:
    if a is None or b is None:
        return False
    try:
        one, two = load_image(a, limits=catalog.limits).image, load_image(b, limits=catalog.limits).image
    except ImageError:
        return False
    return one.size == two.size and np.array_equal(np.asarray(one), np.asarray(two))


def match_vector(catalog: Catalog, vector: np.ndarray, thumb: np.ndarray | None, sha256: str,
                 source: ImageSource | None, *, k: int = 10, min_cosine: float = 0.8) -> list[DuplicateMatch]:
    """Verdicts on the ``k`` nearest items of one image (exact and near duplicates, and similar items whose cosine
    is at least ``min_cosine``), best first."""
    cal = require_calibration(catalog)
    num, _enc = float_encoder(catalog)
    if not len(catalog._index(num)):
        return []
    with catalog._store.lock:
        scores, hits = catalog._index(num).search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
    keep = hits[0] >= 0
    keys, cos = hits[0][keep].tolist(), scores[0][keep].astype(np.float64)
    rows = catalog._store.rows_for_keys(keys)
    same = catalog._store.query("SELECT key FROM items WHERE sha256 = ?", (sha256,))
    extra = [int(r[0]) for r in same if int(r[0]) not in keys]  # identical files beyond the k nearest
    rows.update(catalog._store.rows_for_keys(extra))
    keys, cos = keys + extra, np.r_[cos, np.ones(len(extra))]
    thumbs = thumbs_of(catalog, keys)
    if thumb is not None:
        thumbs[-1] = thumb
    sig = scored_pairs(cal, thumbs, np.array([[-1, key] for key in keys], dtype=np.int64).reshape(-1, 2), cos)
    geo = sig["geometric"]
    exact = np.array([key in rows and (rows[key][3] == sha256 or (c >= _EXACT_COSINE and _same_pixels(
        source, rows[key][2], catalog))) for key, c in zip(keys, cos, strict=True)], dtype=bool)
    verdicts, evidence = cal.verdicts(sig, exact)
    out = []
    for key, verdict, ev, c, g in zip(keys, verdicts, evidence, cos, geo, strict=True):
        if key not in rows or (verdict == SIMILAR and c < min_cosine):
            continue
        out.append(DuplicateMatch(rows[key][1], rows[key][2], verdict, float(ev), float(c),
                                  None if np.isnan(g) else float(g)))
    rank = {EXACT: 0, "near-duplicate": 1, SIMILAR: 2}
    return sorted(out, key=lambda m: (rank[m.verdict], -m.evidence))


def exact_matches(catalog: Catalog, vector: np.ndarray, sha256: str, source: ImageSource | None
                  ) -> list[DuplicateMatch]:
    """Items with the same content or pixels as one image (needs no calibration)."""
    num, _enc = float_encoder(catalog)
    keys = [int(r[0]) for r in catalog._store.query("SELECT key FROM items WHERE sha256 = ?", (sha256,))]
    cos = {key: 1.0 for key in keys}
    if len(catalog._index(num)):
        with catalog._store.lock:
            scores, hits = catalog._index(num).search(np.asarray(vector, dtype=np.float32).reshape(1, -1), 3)
        for s, h in zip(scores[0].tolist(), hits[0].tolist(), strict=True):
            if h >= 0 and s >= _EXACT_COSINE and h not in cos:
                cos[h] = s
    rows = catalog._store.rows_for_keys(list(cos))
    return [DuplicateMatch(row[1], row[2], EXACT, 0.0, cos[key], None) for key, row in rows.items()
            if row[3] == sha256 or _same_pixels(source, row[2], catalog)]


def match_image(catalog: Catalog, image: ImageSource, *, k: int = 10, min_cosine: float = 0.8
                ) -> list[DuplicateMatch]:
    """:func:`match_vector` for an image that is not (yet) in the catalogue."""
    num, enc = float_encoder(catalog)
    loaded = load_image(image, limits=catalog.limits)
    vector = enc.encode_pil([loaded.image])
    return match_vector(catalog, vector, thumbnail(loaded.image), loaded.sha256, image, k=k, min_cosine=min_cosine)


APPROXIMATE_FROM = 20_000  # catalogues this large search candidates in a reduced space (dedup(approximate=None))
PROJECTED_DIMS = 128  # dimensions of that space
_FIT_SAMPLE = 8192  # items the projection is fitted on
_RERANK_BATCH = 256  # queries whose candidates are rescored at once (256 x depth x dim floats)


def dedup(catalog: Catalog, *, k: int = 10, batch: int = 1024, approximate: bool | None = None,
          depth: int | None = None, seed: int = 0) -> DedupReport:
    """Duplicate groups of the whole catalogue: kNN graph → verdict per edge → connected components.

    The graph holds each item's ``k`` nearest items by cosine. Exact (every item against every other, in
    batches), or with ``approximate`` (default: from :data:`APPROXIMATE_FROM` items on) the ``depth`` (default
    ``4 (k + 1)``) nearest in a :data:`PROJECTED_DIMS`-dimension projection of the vectors are found first and
    rescored by their exact cosine. Vectors are read in place from the catalogue's index, a batch at a time
    under its lock; memory is the projection (n x 128 floats), the candidates, the edges and the thumbnails.
    """
    started = time.perf_counter()
    k = _check_int("k", k, 1, 1000)
    cal = require_calibration(catalog)
    num, _enc = float_encoder(catalog)
    with catalog._store.lock:
        keys = catalog._index(num).keys()
    if approximate is None:
        approximate = len(keys) >= APPROXIMATE_FROM
    floor = _cosine_floor(cal)
    if approximate:
        depth = _check_int("depth", 4 * (k + 1) if depth is None else depth, k + 1, 10_000)
        pairs, cos = approximate_edges(catalog, num, keys, k, depth, min_score=floor, seed=seed)
        search = f"top-{depth} in {PROJECTED_DIMS} projected dimensions, rescored by exact cosine"
    else:
        pairs, cos = exact_edges(catalog, num, keys, k, min_score=floor, batch=batch)
        search = "exact"
    timings = {"kNN graph": time.perf_counter() - started}
    same_sha = catalog._store.query("SELECT a.key, b.key FROM items a JOIN items b ON a.sha256 = b.sha256 "
                                    "AND a.key < b.key")
    if same_sha:
        extra = np.array(same_sha, dtype=np.int64)
        pairs = np.concatenate([pairs, extra])
        cos = np.r_[cos, np.full(len(extra), np.nan, dtype=np.float32)]
    rows = catalog._store.rows_for_keys(sorted(set(pairs.reshape(-1).tolist())))
    known = np.array([a in rows and b in rows for a, b in pairs.tolist()], dtype=bool)  # removed meanwhile: out
    pairs, cos = pairs[known], cos[known]
    thumbs = thumb_table(catalog, sorted(rows))
    exact = np.array([rows[a][3] == rows[b][3] or (c >= _EXACT_COSINE and _same_pixels(rows[a][2], rows[b][2],
                      catalog)) for (a, b), c in zip(pairs.tolist(), cos.tolist(), strict=True)], dtype=bool)
    cos = np.where(np.isnan(cos), 1.0, cos)
    timings["rows and thumbnails"] = time.perf_counter() - started - sum(timings.values())
    sig = scored_pairs(cal, thumbs, pairs, cos, skip=exact)
    del thumbs
    timings["signals"] = time.perf_counter() - started - sum(timings.values())
    geo = sig["geometric"]
    verdicts, evidence = cal.verdicts(sig, exact)
    dup = np.array([v != SIMILAR for v in verdicts], dtype=bool)
    groups_of = components(keys, pairs[dup])
    group_of = {m: g for g, members in enumerate(groups_of) for m in members}
    edges: list[list[dict[str, Any]]] = [[] for _ in groups_of]
    for i in np.flatnonzero(dup).tolist():
        a, b = int(pairs[i, 0]), int(pairs[i, 1])
        g = geo[i]
        edges[group_of[a]].append({"a": rows[a][1], "b": rows[b][1], "verdict": verdicts[i],
                                   "evidence": round(float(evidence[i]), 3), "cosine": round(float(cos[i]), 4),
                                   "geometric": None if np.isnan(g) else round(float(g), 4)})
    groups = []
    for members, group_edges in zip(groups_of, edges, strict=True):
        items = [_item(rows[m]) for m in members]
        groups.append(DuplicateGroup(keeper=choose_keeper(items).id, items=items, pairs=group_edges))
    return DedupReport(groups=groups, items=len(keys), pairs_checked=len(pairs), calibration=cal.summary(),
                       seconds=time.perf_counter() - started, search=search,
                       geometric_checks=int(np.count_nonzero(~np.isnan(geo))),
                       timings={**timings, "groups": time.perf_counter() - started - sum(timings.values())})


class _Rows:
    """Where the items of a snapshot of keys are in the index now (-1: removed). Call under the catalogue's lock:
    the index moves rows when items are removed, and is replaced when another process commits."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self._seen: tuple[object, np.ndarray] | None = None
        self._rows = np.arange(len(keys), dtype=np.int64)

    def __call__(self, index: Any) -> np.ndarray:
        live = index._keys[: len(index)]
        if self._seen is None or self._seen[0] is not index or not np.array_equal(self._seen[1], live):
            if np.array_equal(live, self.keys):
                self._rows = np.arange(len(self.keys), dtype=np.int64)
            else:
                row_of = index._row_of
                self._rows = np.fromiter((row_of.get(key, -1) for key in self.keys.tolist()), dtype=np.int64,
                                         count=len(self.keys))
            self._seen = (index, live.copy())
        return self._rows


def _data(index: Any) -> np.ndarray:
    """The index's live (n, dim) vectors, in place (a view: valid while the lock is held)."""
    return index._data[: len(index)]


def exact_edges(catalog: Catalog, num: int, keys: np.ndarray, k: int, *, min_score: float, batch: int = 1024,
                queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges to each item's ``k`` nearest by exact cosine (as :func:`~.groups.knn_edges`), queries read in place;
    only from the items at positions ``queries`` of ``keys``, if given."""
    rows_now = _Rows(keys)
    which = np.arange(len(keys)) if queries is None else np.asarray(queries, dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(which), batch):
        pos = which[start : start + batch]
        with catalog._store.lock:
            index = catalog._index(num)
            rows = rows_now(index)[pos]
            live = rows >= 0
            scores, hits = index.search(_data(index)[rows[live]], min(k + 1, max(1, len(index))))
        found.append(edges_from_hits(keys[pos][live], scores, hits, min_score=min_score))
    return _merge(found)


def approximate_edges(catalog: Catalog, num: int, keys: np.ndarray, k: int, depth: int, *, min_score: float,
                      seed: int = 0, dims: int = PROJECTED_DIMS, queries: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Edges to each item's ``k`` nearest among its ``depth`` nearest in a projection (:func:`~.groups.projection`
    fitted on a sample of the vectors), by exact cosine; only from the items at positions ``queries`` of
    ``keys``, if given (to measure the recall of a subset against :func:`exact_edges`)."""
    n = len(keys)
    if n == 0:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    rows_now = _Rows(keys)
    rng = np.random.default_rng(seed)
    with catalog._store.lock:
        index = catalog._index(num)
        rows, data = rows_now(index), _data(index)
        sample = np.sort(rng.choice(n, size=min(n, _FIT_SAMPLE), replace=False))
        basis = projection(data[rows[sample][rows[sample] >= 0]], dims)
        projected = np.zeros((n, basis.shape[1]), dtype=np.float32)
        for start in range(0, n, 8192):
            r = rows[start : start + 8192]
            projected[start : start + 8192][r >= 0] = data[r[r >= 0]] @ basis
    which = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    candidates = projected_topk(projected, depth, queries=which)  # positions in ``keys``
    del projected
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(which), _RERANK_BATCH):
        cand, pos = candidates[start : start + _RERANK_BATCH], which[start : start + _RERANK_BATCH]
        with catalog._store.lock:
            index = catalog._index(num)
            rows, data = rows_now(index), _data(index)
            qrow, crow = rows[pos], np.where(cand >= 0, rows[np.maximum(cand, 0)], -1)
            scores = np.matmul(data[np.maximum(crow, 0)], data[np.maximum(qrow, 0)][:, :, None])[:, :, 0]
        scores[(crow < 0) | (qrow < 0)[:, None]] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, : k + 1]
        best = np.take_along_axis(scores, top, axis=1)
        hits = np.where(np.isfinite(best), keys[np.take_along_axis(np.maximum(cand, 0), top, axis=1)], -1)
        found.append(edges_from_hits(keys[pos], best, hits, min_score=min_score))
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
    """:func:`thumbs_of` for many keys, read a chunk at a time into one array."""
    table = ThumbTable(len(keys))
    for start in range(0, len(keys), chunk):
        for key, thumbs in thumbs_of(catalog, keys[start : start + chunk]).items():
            table.put(key, thumbs)
    return table


def scored_pairs(cal: Calibration, thumbs: Mapping[int, np.ndarray], pairs: np.ndarray, cosine: np.ndarray, *,
                 skip: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every signal of each pair; the slow geometric check only where the others leave the verdict open (the
    evidence so far plus the most the geometric check could add reaches the threshold) and ``skip`` is false."""
    sig = {"cosine": np.asarray(cosine, dtype=np.float64), **pair_signals(thumbs, pairs, np.zeros(len(pairs), bool))}
    partial = cal.evidence(sig)
    open_ = partial + cal.max_evidence("geometric") >= cal.threshold
    if skip is not None:
        open_ &= ~np.asarray(skip, dtype=bool)
    sig["geometric"] = pair_signals(thumbs, pairs, open_)["geometric"]
    return sig


def _cosine_floor(cal: Calibration) -> float:
    """The lowest cosine at which the evidence could still reach the threshold: edges below it are not checked."""
    needed = cal.threshold - sum(cal.max_evidence(name) for name in cal.distractors if name != "cosine")
    cosines = np.sort(np.asarray(cal.distractors["cosine"], dtype=np.float64))
    n = len(cosines)
    if not n or needed <= 0:
        return -1.0
    above = np.arange(n, -1, -1)  # distractors at or above a cosine just over cosines[i - 1]: n - i
    reach = np.flatnonzero(-np.log10((above + 0.5) / (n + 1.0)) + 0.01 >= needed)
    if not len(reach):
        return 2.0  # no cosine is evidence enough: nothing can be a near-duplicate
    return float(cosines[reach[0] - 1]) if reach[0] > 0 else -1.0


def _item(row: Any) -> Item:
    from ..catalog._store import row_to_item

    return row_to_item(row)
