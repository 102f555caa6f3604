"""Partial-image search: the retriever that finds catalogue images containing (part of) a query, and where.

A catalogue takes part once it has the setting ``partial.descriptors`` (``"teblid:4000"``: descriptor kind and the
most keypoints per image), set by :meth:`PartialSearch.enable` (``lookalike index DIR --partial``). Each item's
keypoints and descriptors are the per-item feature ``partial.local`` (:mod:`.features` packs them, with the
sha256 of the content described), made from the item's image file at up to 1024 pixels a side by
:meth:`PartialSearch.sync` — at index time by the CLI, and for items added or changed since on the next partial
search of a writable catalogue. A feature whose sha256 is not the item's (the image was replaced) is stale and
made again; a removed item's feature goes with it (the store's cascade), and the in-memory index follows the
store on every search (:meth:`PartialSearch.refresh`).

A search describes the query, takes the ``candidates`` items with the most descriptor votes in the inverted file
(:class:`.index.DescriptorIndex`, the shipped vocabulary of the descriptor kind), verifies each on the index's own
neighbours by RANSAC (a similarity, or a homography when it earns its keep: :mod:`.verify`) and ranks the verified
ones by inliers. Memory: the index (40 bytes a descriptor) and the keypoint positions (8 bytes); the descriptors
are not held twice. ``score`` is the inliers divided by the query's keypoints (the share of the query explained, in
[0, 1]); ``box`` is the matched region in the catalogue item's pixels, ``query_box`` the part of the query that
lies on the item, in the query's pixels.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import ImageError, IncompatibleCatalogError
from ..images import Box, ImageLimits, ImageSource, load_image
from ..validation import Integer, Real, check
from .dense import MIN_DETAIL as DENSE_DETAIL
from .dense import MIN_SCORE as DENSE_MIN
from .dense import dense_match, grey
from .features import MAX_SIDE, Extractor, Keypoints, LocalFeatures, pack, unpack
from .index import DescriptorIndex
from .verify import Verified, verify
from .vocabulary import load as load_vocabulary

if TYPE_CHECKING:
    from ..catalog import Catalog, Item, SearchResult

__all__ = ["FEATURE", "SETTING", "PartialAnswer", "PartialMatch", "PartialSearch", "SyncReport"]

SETTING = "partial.descriptors"
FEATURE = "partial.local"
DEFAULT_SPEC = "teblid:4000"  # these three: chosen on the validation crops of benchmarks/partial.py
NPROBE = 4
QUERY_KEYPOINTS = 750
DENSE = 3  # global candidates checked by correlation when nothing verifies by keypoints


@dataclass(frozen=True)
class PartialMatch:
    """One verified result: ``box`` in the item's pixels, ``query_box`` in the query's (see the module doc)."""

    id: str
    path: str | None
    score: float
    inliers: int
    matches: int
    box: Box
    query_box: Box
    metadata: dict[str, Any] = field(default_factory=dict)
    method: str = "keypoints"  # or "dense": found by correlation (:mod:`.dense`); score = the correlation

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "score": round(self.score, 6), "inliers": self.inliers,
                "matches": self.matches, "box": _box_dict(self.box), "query_box": _box_dict(self.query_box),
                "metadata": self.metadata, "method": self.method}


def _box_dict(b: Box) -> dict[str, int]:
    return {"x": b.x, "y": b.y, "w": b.w, "h": b.h}


@dataclass
class PartialAnswer:
    """The results of one partial search (best first), and ``reason`` when there are none for a known cause."""

    results: list[PartialMatch]
    reason: str | None = None
    query_keypoints: int = 0
    candidates: int = 0
    fallback: list[SearchResult] = field(default_factory=list)  # with fallback=True: the global search's others

    def ids(self) -> list[str]:
        """The fused ranking: the verified results, then the fallback's items."""
        return [m.id for m in self.results] + [h.id for h in self.fallback]


@dataclass
class SyncReport:
    described: list[str] = field(default_factory=list)
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (id, why): no file, unreadable


def _to_box(b: tuple[float, float, float, float], sx: float, sy: float, dx: int = 0, dy: int = 0) -> Box:
    x0, y0 = int(round(b[0] * sx)), int(round(b[1] * sy))
    x1, y1 = int(round(b[2] * sx)), int(round(b[3] * sy))
    return Box(x0 + dx, y0 + dy, max(1, x1 - x0), max(1, y1 - y0))


class PartialSearch:
    """The partial-image retriever of one catalogue (thread-safe; keep one per catalogue, as the service does).

    Args:
        catalog: an open :class:`~lookalike.catalog.Catalog` (its public views only).
        candidates: items verified per query (the most voted). ``knn``/``max_distance``: the vote of each query
            descriptor (its nearest descriptors within that many bits of 256). ``min_inliers``: a result's least.
        nprobe: inverted lists searched per query descriptor (of the vocabulary's 4,096).
        query_keypoints: the most keypoints a query is described with (the strongest, spread over the grid), fewer
            than a catalogue image's: a crop's strongest corners are the ones its source repeats, and each query
            descriptor costs a probe of ``nprobe`` lists. ``nprobe``, ``query_keypoints`` and the default spec were
            chosen together on the validation crops of ``benchmarks/partial.py`` (BENCHMARKS.md, "Partial-image
            search").
        dense: when no candidate verifies by keypoints (a textureless crop), the global search's first ``dense``
            items are checked by correlation of the query's pixels (:mod:`.dense`; 0: never); ``dense_min`` is the
            correlation a match needs, ``dense_detail`` the correlation of its fine detail.
    """

    def __init__(self, catalog: Catalog, *, candidates: int = 20, knn: int = 8, max_distance: int = 64,
                 min_inliers: int = 10, nprobe: int = NPROBE, query_keypoints: int = QUERY_KEYPOINTS,
                 dense: int = DENSE, dense_min: float = DENSE_MIN, dense_detail: float = DENSE_DETAIL) -> None:
        owner = "PartialSearch"
        self.catalog = catalog
        self.candidates = check("candidates", candidates, Integer(1, 1000), owner=owner)
        self.knn = check("knn", knn, Integer(1, 64), owner=owner)
        self.max_distance = check("max_distance", max_distance, Integer(0, 256), owner=owner)
        self.min_inliers = check("min_inliers", min_inliers, Integer(4, 10000), owner=owner)
        self.nprobe = check("nprobe", nprobe, Integer(1, 1 << 20), owner=owner)
        self.query_keypoints = check("query_keypoints", query_keypoints, Integer(16, 20000), owner=owner)
        self.dense = check("dense", dense, Integer(0, 100), owner=owner)
        self.dense_min = check("dense_min", dense_min, Real(0.0, True, 1.0), owner=owner)
        self.dense_detail = check("dense_detail", dense_detail, Real(-1.0, True, 1.0), owner=owner)
        self.index: DescriptorIndex | None = None  # made for the catalogue's descriptor kind on the first refresh
        self._keypoints: dict[int, Keypoints] = {}
        self._seen: dict[int, str] = {}  # key -> sha256 the index holds (or tried and could not describe)
        self._lock = threading.RLock()
        self._extractor: Extractor | None = None
        self._query_extractor: Extractor | None = None
        self._built_for: str | None = None  # the descriptor spec the in-memory index holds

    # -- enabling and describing ---------------------------------------------------------------------------------

    @classmethod
    def enable(cls, catalog: Catalog, spec: str = DEFAULT_SPEC) -> SyncReport:
        """Turn partial search on for ``catalog`` (descriptor ``spec``, e.g. ``"beblid:1000"``) and describe every
        item with an image file; returns what was described and what could not be."""
        extractor = Extractor.from_spec(spec)
        current = catalog.setting(SETTING)
        if current != extractor.spec:
            catalog.put_setting(SETTING, extractor.spec)
        return cls(catalog).sync(force=current is not None and current != extractor.spec)

    @property
    def extractor(self) -> Extractor:
        spec = self.catalog.setting(SETTING)
        if spec is None:
            raise IncompatibleCatalogError(
                f"catalogue {self.catalog.path} has no partial-search descriptors: index it with "
                f"'lookalike index DIR --partial' (PartialSearch.enable(catalog) in Python)")
        if self._extractor is None or self._extractor.spec != spec:
            self._extractor = Extractor.from_spec(spec)
        return self._extractor

    @property
    def query_extractor(self) -> Extractor:
        """The catalogue's descriptor kind at ``query_keypoints`` keypoints at most."""
        kind = self.extractor.kind
        if self._query_extractor is None or self._query_extractor.spec != f"{kind}:{self.query_keypoints}":
            self._query_extractor = Extractor(kind, self.query_keypoints)
        return self._query_extractor

    def describe_item(self, item: Item) -> LocalFeatures:
        """Keypoints and descriptors of one item's image file (ImageError when it cannot be read)."""
        assert item.path is not None
        loaded = load_image(item.path, limits=self.catalog.limits, draft=(MAX_SIDE, MAX_SIDE))
        return self.extractor.describe(loaded.image, item.sha256)

    def sync(self, items: Sequence[Item] | None = None, *, force: bool = False) -> SyncReport:
        """Describe the items (default: every item with a file) whose stored feature is missing or stale (every one
        with ``force``: the descriptor spec changed)."""
        report = SyncReport()
        kind = self.extractor.kind
        items = list(self.catalog.items_with_files() if items is None else items)
        stored = self.catalog.features(FEATURE, [i.key for i in items])
        fresh: dict[int, bytes] = {}
        for item in items:
            blob = stored.get(item.key)
            if blob is not None and not force:
                f = unpack(blob)
                if f.sha256 == item.sha256 and f.kind == kind:
                    continue
            if item.path is None:
                report.unavailable.append((item.id, "no image file (added as an array or PIL image)"))
                continue
            try:
                fresh[item.key] = pack(self.describe_item(item))
            except ImageError as err:
                report.unavailable.append((item.id, str(err)))
                continue
            report.described.append(item.id)
            if len(fresh) >= 256:
                self.catalog.put_features(FEATURE, fresh)
                fresh = {}
        if fresh:
            self.catalog.put_features(FEATURE, fresh)
        return report

    # -- the in-memory index -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the descriptor index in step with the store: drop removed items, (re)load added or replaced ones,
        describing them first when the catalogue is writable."""
        with self._lock:
            extractor = self.extractor
            kind = extractor.kind
            if self.index is None or self._built_for != extractor.spec:  # new, or the spec changed: start again
                vocabulary = load_vocabulary(kind)
                self.index = DescriptorIndex(vocabulary, min(self.nprobe, len(vocabulary)))
                self._built_for = extractor.spec
                self._keypoints.clear()
                self._seen.clear()
            index = self.index
            items = {i.key: i for i in self.catalog.items_with_files()}
            gone = [k for k in self._seen if k not in items]
            index.remove(gone)
            for k in gone:
                self._seen.pop(k, None)
                self._keypoints.pop(k, None)
            changed = [i for k, i in items.items() if self._seen.get(k) != i.sha256]
            if not changed:
                return
            if not self.catalog.read_only:
                self.sync(changed)
            for start in range(0, len(changed), 256):  # a batch of blobs in memory at a time
                batch = changed[start : start + 256]
                stored = self.catalog.features(FEATURE, [i.key for i in batch])
                fresh: dict[int, LocalFeatures] = {}
                for item in batch:
                    blob = stored.get(item.key)
                    f = unpack(blob) if blob is not None else None
                    self._seen[item.key] = item.sha256
                    if f is None or f.sha256 != item.sha256 or f.kind != kind:
                        index.remove([item.key])
                        self._keypoints.pop(item.key, None)
                        continue
                    fresh[item.key] = f
                    self._keypoints[item.key] = f.keypoints()
                index.put_many(fresh)

    def memory_per_image(self) -> float:
        """Bytes held per described image: the index plus the keypoint positions kept for verification."""
        with self._lock:
            n = len(self.index) if self.index is not None else 0
            xy = sum(k.xy.nbytes for k in self._keypoints.values())
            return (self.index.memory_bytes() + xy) / n if self.index is not None and n else 0.0

    # -- searching -----------------------------------------------------------------------------------------------

    def search(self, image: ImageSource, *, k: int = 10, box: Box | str | None = None,
               refresh: bool = True, limits: ImageLimits | None = None, fallback: bool = False) -> PartialAnswer:
        """The ``k`` catalogue items that contain part of ``image`` (or of its region ``box``), verified, best
        first, each with the matched boxes; the query is decoded within ``limits`` (default: the catalogue's; the
        service passes its upload limits). IncompatibleCatalogError: the catalogue has no partial descriptors.

        When nothing verifies by keypoints, the global search's first ``dense`` items are checked by correlation
        (results with ``method="dense"``, a box, and the correlation as score). ``fallback``: fill the answer up to
        ``k`` with the catalogue's global search (``Catalog.search``, same image and box) in ``answer.fallback``,
        the items already verified left out, so the fused ranking (``answer.ids()``) finds what the global search
        finds where nothing verifies."""
        k = check("k", k, Integer(1, 10000), owner="search")
        region = Box.parse(box) if isinstance(box, str) else box
        loaded = load_image(image, limits=self.catalog.limits if limits is None else limits, box=region)
        offset = (region.x, region.y) if region is not None else (0, 0)
        answer = self._search(loaded.image, k, offset, refresh)
        hits: list[SearchResult] | None = None
        if self.dense and not answer.results:
            hits = self.catalog.search(loaded.image, k=max(self.dense, k if fallback else 0))
            answer.results = self._dense_verify(loaded.image, offset, hits[: self.dense], k)
            answer.reason = None if answer.results else answer.reason
        if fallback and len(answer.results) < k:
            found = {m.id for m in answer.results}
            hits = hits if hits is not None and len(hits) >= k else self.catalog.search(loaded.image, k=k)
            answer.fallback = [h for h in hits if h.id not in found][: k - len(answer.results)]
        return answer

    def _dense_verify(self, query: Image.Image, offset: tuple[int, int], hits: Sequence[SearchResult], k: int
                      ) -> list[PartialMatch]:
        """The ``hits`` in which the query's pixels are found by correlation (:func:`.dense.dense_match`)."""
        q = grey(query)
        out = []
        for hit in hits:
            if hit.path is None:
                continue
            try:
                ref = load_image(hit.path, limits=self.catalog.limits, draft=(MAX_SIDE, MAX_SIDE))
            except ImageError:  # moved or unreadable since it was indexed: not verifiable
                continue
            m = dense_match(q, grey(ref.image), min_score=self.dense_min, min_detail=self.dense_detail)
            if m is None:
                continue
            sx, sy = ref.width / ref.image.size[0], ref.height / ref.image.size[1]
            x, y, w, h = m.box
            out.append(PartialMatch(
                hit.id, hit.path, m.score, 0, 0, _to_box((x, y, x + w, y + h), sx, sy),
                Box(offset[0], offset[1], query.size[0], query.size[1]), dict(hit.metadata), "dense"))
        out.sort(key=lambda m: -m.score)
        return out[:k]

    def _search(self, image: Image.Image, k: int, offset: tuple[int, int], refresh: bool) -> PartialAnswer:
        extractor = self.query_extractor
        if min(image.size) < 16:
            return PartialAnswer([], f"the query is {image.size[0]}x{image.size[1]} pixels: too small "
                                 f"to describe (16 a side at least)")
        query = extractor.describe(image)
        if len(query) < self.min_inliers:
            return PartialAnswer([], f"the query has {len(query)} keypoints ({self.min_inliers} needed): it is too "
                                 f"small or featureless to match", len(query))
        with self._lock:
            if refresh or self.index is None:  # the index of this kind is made on the first refresh
                self.refresh()
            assert self.index is not None
            ranked = self.index.candidates(query.desc, self.candidates, knn=self.knn, max_distance=self.max_distance)
            refs = {key: self._keypoints[key] for key, _, _ in ranked}
        verified: list[tuple[int, Verified]] = []
        for key, _votes, pairs in ranked:
            v = verify(query, refs[key], min_inliers=self.min_inliers, matches=pairs)
            if v is not None:
                verified.append((key, v))
        verified.sort(key=lambda kv: (-kv[1].inliers, kv[0]))
        verified = verified[:k]
        items = self.catalog.items_by_key([key for key, _ in verified])
        dx, dy = offset
        results = []
        for key, v in verified:
            item = items.get(key)
            if item is None:  # removed since the refresh
                continue
            ref = refs[key]
            results.append(PartialMatch(
                item.id, item.path, v.inliers / len(query), v.inliers, v.matches,
                _to_box(v.box, item.width / ref.width, item.height / ref.height),
                _to_box(v.query_box, image.size[0] / query.width, image.size[1] / query.height,
                        dx, dy), dict(item.metadata)))
        reason = None if results else (
            "no catalogue image shares enough descriptors with the query" if not ranked else
            f"no candidate passed geometric verification ({self.min_inliers} RANSAC inliers needed)")
        return PartialAnswer(results, reason, len(query), len(ranked))
