"""The catalogue: items with metadata in SQLite, their vectors per encoder, and exact search over them.

A catalogue is one directory (default ``./.lookalike``)::

    catalog.sqlite   items (id, path, sha256, size, times, metadata) and every vector, in one WAL database
    images/          copies of images that were added as bytes or arrays (content-addressed)

Example::

    with Catalog("shop.lookalike") as cat:            # created with the default encoder, efficientnet-lite0
        report = cat.index_folder("photos/")           # incremental: unchanged files are skipped by content hash
        hits = cat.search("query.jpg", k=10)           # [SearchResult(id, path, score, distance, metadata), ...]
        more = cat.similar(hits[0].id, k=5)            # "more like this"
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._pipeline import pipelined
from ..encoders import Encoder, get_encoder
from ..encoders.base import progress_bar
from ..encoders.hashed import HashedEncoder
from ..errors import (
    DuplicateImageError,
    DuplicateItemError,
    ImageError,
    IncompatibleCatalogError,
    InvalidParameterError,
    ItemNotFoundError,
)
from ..images import DEFAULT_LIMITS, Box, ImageLimits, ImageSource, Skipped, load_image
from ..index import BinaryFlatIndex, FloatFlatIndex
from . import _ingest
from ._hashing import fit_hasher, load_hashed, rerank
from ._store import Store, metadata_json, row_to_item
from .types import BatchReport, CheckedItem, Item, Refused, SearchResult

DEFAULT_ENCODER = "efficientnet-lite0"
DEFAULT_PATH = ".lookalike"
_CHUNK = 64

FlatIndex = FloatFlatIndex | BinaryFlatIndex


class Catalog:
    """An image catalogue on disk with exact similarity search.

    Args:
        path: the catalogue directory (created if missing and ``create`` is true).
        encoder: encoder spec for a new catalogue (default ``efficientnet-lite0``); for an existing one, None or
            one of its encoders (which then becomes the one searched by default).
        extra_encoders: further encoders a new catalogue keeps vectors of (e.g. ``["phash"]``).
        create: create the catalogue if it does not exist (else :class:`CatalogError`).
        limits: pixel and byte limits for every image read.

    Raises:
        CatalogError: missing (with ``create=False``) or not a catalogue.
        IncompatibleCatalogError: another schema version, or ``encoder`` is not one of the catalogue's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        encoder: str | None = None,
        *,
        extra_encoders: Sequence[str] = (),
        create: bool = True,
        limits: ImageLimits = DEFAULT_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._store = Store(self.path, create=create)
        if not self._store.is_initialised():
            specs = [get_encoder(s) for s in [encoder or DEFAULT_ENCODER, *extra_encoders]]
            self._store.initialise([(e.spec, e.kind, e.dim) for e in specs])
        self._encoders = self._load_encoders(encoder)
        self._indexes: dict[int, FlatIndex] = {}
        self._version = -1

    def _load_encoders(self, wanted: str | None) -> builtins.list[tuple[int, Encoder]]:
        """The catalogue's encoders, the one searched by default first: ``wanted``, else the one a fitted hasher
        made the default (``search_encoder`` in meta), else the first created."""
        hashers = self._store.hashers()  # hashed encoders are those with a stored hasher, whatever their spec says
        plain = {num: get_encoder(spec) for num, spec, _kind, _dim in self._store.encoders() if num not in hashers}
        encoders = dict(plain)
        for num, (source, name, blob) in hashers.items():
            encoders[num] = load_hashed(plain[source], name, blob)
        pairs = sorted(encoders.items())
        if wanted is not None:
            first = self._find_encoder(pairs, wanted)
        else:
            default = self._store.meta("search_encoder")
            first = next((p for p in pairs if default is not None and p[0] == int(default)), pairs[0])
        pairs.remove(first)
        return [first, *pairs]

    def _find_encoder(self, pairs: Sequence[tuple[int, Encoder]], wanted: str) -> tuple[int, Encoder]:
        exact = next((pair for pair in pairs if pair[1].spec == wanted), None)
        if exact is not None:
            return exact
        try:
            spec = get_encoder(wanted).spec  # the canonical spelling of "name:key=value" options
        except InvalidParameterError:
            spec = wanted  # e.g. a hashed spec, "efficientnet-lite0+itq:64", that this catalogue does not have
        for pair in pairs:
            if pair[1].spec == spec:
                return pair
        have = ", ".join(e.spec for _, e in pairs)
        raise IncompatibleCatalogError(f"catalogue {self.path} has no {spec!r} vectors (it has: {have})")

    # -- reading ------------------------------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The encoder searched by default."""
        return self._encoders[0][1]

    @property
    def encoders(self) -> builtins.list[Encoder]:
        return [e for _, e in self._encoders]

    def __len__(self) -> int:
        return self.count()

    def count(self, where: dict[str, Any] | None = None) -> int:
        """Number of items (matching the metadata filter ``where``, if given)."""
        return self._store.count(where)

    def get(self, item_id: str) -> Item:
        """The item with this id. Raises ItemNotFoundError."""
        row = self._store.item_row(_check_id(item_id))
        if row is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return row_to_item(row)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self._store.item_row(item_id) is not None

    def list(self, *, offset: int = 0, limit: int = 100, where: dict[str, Any] | None = None) -> builtins.list[Item]:
        """Items in insertion order, a page at a time."""
        if not (isinstance(offset, int) and offset >= 0 and isinstance(limit, int) and limit >= 0):
            raise InvalidParameterError(f"offset and limit must be ints >= 0. Got {offset!r}, {limit!r}.")
        return [row_to_item(r) for r in self._store.list_rows(offset, limit, where)]

    def info(self) -> dict[str, Any]:
        """Counts, encoders and sizes on disk."""
        sizes = {p.name: p.stat().st_size for p in self.path.glob("catalog.sqlite*")}
        counts = dict(self._store.query("SELECT encoder, count(*) FROM vectors GROUP BY encoder"))
        return {
            "path": str(self.path.absolute()),
            "items": self.count(),
            "encoders": [
                {"spec": e.spec, "kind": e.kind, "dim": e.dim, "vectors": int(counts.get(n, 0))}
                for n, e in self._encoders
            ],
            "bytes_on_disk": sum(sizes.values()) + _dir_size(self.path / "images"),
        }

    # -- writing ------------------------------------------------------------------------------------------------

    def add(
        self, image: ImageSource, *, id: str | None = None, metadata: dict[str, Any] | None = None,  # noqa: A002
        check_duplicates: bool = False, refuse: str | None = None,
    ) -> Item:
        """Add one image (path, bytes, array or PIL image) and return its item.

        Without ``id``, a file gets its file name as id and other sources the first 12 hex digits of their sha256
        (with ``-2``, ``-3`` … appended while taken).

        With ``check_duplicates=True`` the image is compared with its nearest items before it is written and a
        :class:`CheckedItem` is returned: the item plus ``duplicates``, the verdicts (``exact``,
        ``near-duplicate``, ``similar``) on those items. ``refuse="exact"`` or ``"near"`` (exact and near) raises
        :class:`DuplicateImageError` instead, and nothing is written. Near-duplicate verdicts need a calibrated
        catalogue (:meth:`calibrate_duplicates`); ``refuse="exact"`` alone does not.

        Raises:
            ImageError: the image cannot be used (the subclass says why). DuplicateItemError: ``id`` is taken.
            DuplicateImageError: refused as a duplicate. CalibrationRequiredError: a near-duplicate check without a
            calibration.
        """
        meta = metadata_json(metadata)
        if id is not None:
            _check_id(id)
        if refuse not in (None, "exact", "near"):
            raise InvalidParameterError(f"refuse must be None, 'exact' or 'near'. Got {refuse!r}.")
        outcome, vectors = self._encode_one(image)
        matches = self._duplicates_of(outcome, vectors, image, check_duplicates, refuse)
        with self._store.lock:  # commit and index update as one step: a concurrent remove cannot fall between
            with self._store.write() as db:
                key = self._insert(db, outcome, id, meta)
                self._write_vectors(db, [key], vectors)
            self._index_add([key], vectors)
            item = self.get(self._store.query("SELECT id FROM items WHERE key = ?", (key,))[0][0])
        if matches is None:
            return item
        return CheckedItem(**{f: getattr(item, f) for f in item.__dataclass_fields__}, duplicates=tuple(matches))

    def _duplicates_of(
        self, p: _ingest.Prepared, vectors: dict[int, np.ndarray], source: ImageSource | None, check: bool,
        refuse: str | None,
    ) -> builtins.list[Any] | None:
        if not check and refuse is None:
            return None
        from ..dedup import _catalog as dedup

        num, _enc = dedup.float_encoder(self)
        from ..dedup.signals import from_bytes

        thumb = None if p.thumb is None else from_bytes(p.thumb)
        if refuse == "exact" and not check and dedup.load_calibration(self) is None:
            matches = dedup.exact_matches(self, vectors[num], p.sha256, source)
        else:
            matches = dedup.match_vector(self, vectors[num], thumb, p.sha256, source)
        refused = [m for m in matches if m.verdict == "exact" or (refuse == "near" and m.is_duplicate)]
        if refuse is not None and refused:
            best = refused[0]
            raise DuplicateImageError(f"refused: the image is {'an exact ' if best.verdict == 'exact' else 'a near-'}"
                                      f"duplicate of item {best.id!r}", refused)
        return matches

    def calibrate_duplicates(
        self, *, target_precision: float = 0.99, sample: int = 200, k: int = 10, seed: int = 0
    ) -> Any:
        """Fit the near-duplicate threshold on edited copies of ``sample`` of this catalogue's items (distractors:
        their nearest other items, less those that already look like duplicates of the sampled item) for
        ``target_precision``, store it with the catalogue and return it (a :class:`lookalike.dedup.Calibration`
        with the expected precision and recall)."""
        from ..dedup import _catalog as dedup

        return dedup.calibrate(self, target_precision=target_precision, sample=sample, k=k, seed=seed)

    @property
    def duplicate_calibration(self) -> Any:
        """The stored :class:`lookalike.dedup.Calibration`, or None."""
        from ..dedup import _catalog as dedup

        return dedup.load_calibration(self)

    def find_duplicates(self, image: ImageSource, *, k: int = 10, min_cosine: float = 0.8) -> builtins.list[Any]:
        """Verdicts on the ``k`` nearest items of an image that is not added (:class:`DuplicateMatch` list)."""
        from ..dedup import _catalog as dedup

        return dedup.match_image(self, image, k=_check_k(k), min_cosine=min_cosine)

    def dedup(self, *, k: int = 10, approximate: bool | None = None) -> Any:
        """Duplicate groups of the whole catalogue with a keeper each (a :class:`lookalike.dedup.DedupReport`).

        Each item is compared with its ``k`` nearest items; ``approximate`` finds them in a reduced space first
        and rescores them exactly (default: from 20,000 items on; see :func:`lookalike.dedup._catalog.dedup`)."""
        from ..dedup import _catalog as dedup

        return dedup.dedup(self, k=k, approximate=approximate)

    def add_many(
        self,
        images: Iterable[ImageSource],
        *,
        metadata: dict[str, Any] | None = None,
        progress: bool = False,
        check_duplicates: bool = False,
        refuse: str | None = None,
    ) -> BatchReport:
        """Add many images with auto ids; bad ones are listed in the report's ``skipped``, the rest committed.

        Commits every chunk of 64 images: a crash loses at most the chunk in flight.

        ``check_duplicates`` and ``refuse`` work as in :meth:`add`, image by image in order (so a copy of an
        image earlier in the same batch is caught too): the exact and near duplicates found of each added image
        are in the report's ``duplicates`` (id → matches), refused images in ``refused`` (source and matches),
        not added. Checked images are committed one at a time.
        """
        meta = metadata_json(metadata)
        if refuse not in (None, "exact", "near"):
            raise InvalidParameterError(f"refuse must be None, 'exact' or 'near'. Got {refuse!r}.")
        checking = check_duplicates or refuse is not None
        if check_duplicates or refuse == "near":
            from ..dedup import _catalog as dedup

            dedup.require_calibration(self)  # before anything is read or written
        report = BatchReport()
        sources = list(images)
        bar = progress_bar(len(sources), progress, "adding")
        for chunk in pipelined(sources, self._prepare, _CHUNK):
            ok = self._split_outcomes(chunk, report)
            vectors = _ingest.run_encoders(ok, self._encoders)
            if checking:
                self._add_checked(ok, vectors, meta, check_duplicates, refuse, report)
                bar.update(len(chunk))
                continue
            with self._store.lock:
                with self._store.write() as db:
                    keys = [self._insert(db, p, None, meta) for p in ok]
                    self._write_vectors(db, keys, vectors)
                self._index_add(keys, vectors)
            if keys:
                report.added += [str(r[0]) for r in self._store.query(_ids_sql(keys), keys)]
            bar.update(len(chunk))
        bar.close()
        return report

    def _add_checked(
        self, ok: Sequence[_ingest.Prepared], vectors: dict[int, np.ndarray], meta: str, check: bool,
        refuse: str | None, report: BatchReport,
    ) -> None:
        for i, p in enumerate(ok):
            one = {num: matrix[i : i + 1] for num, matrix in vectors.items()}
            try:
                matches = self._duplicates_of(p, one, p.path if p.path is not None else p.data, check, refuse)
            except DuplicateImageError as err:
                report.refused.append(Refused(p.source, tuple(err.matches)))
                continue
            with self._store.lock:
                with self._store.write() as db:
                    key = self._insert(db, p, None, meta)
                    self._write_vectors(db, [key], one)
                self._index_add([key], one)
                item_id = str(self._store.query("SELECT id FROM items WHERE key = ?", (key,))[0][0])
            report.added.append(item_id)
            found = [m for m in matches or () if m.is_duplicate]
            if check and found:
                report.duplicates[item_id] = found

    def index_folder(self, root: str | os.PathLike[str], *, progress: bool = False) -> BatchReport:
        """Index every image under ``root`` (recursively, recognised by content), incrementally.

        Unchanged files (same content hash) are skipped, changed files re-encoded, and items whose file has
        vanished from under ``root`` removed. Ids are paths relative to ``root``. Each chunk commits on its own.
        """
        from .folder import index_folder

        return index_folder(self, Path(root), progress=progress)

    def update(
        self, item_id: str, *, image: ImageSource | None = None, metadata: dict[str, Any] | None = None
    ) -> Item:
        """Replace an item's image and/or its metadata (the whole object). Raises ItemNotFoundError, ImageError."""
        current = self.get(item_id)
        meta = metadata_json(metadata) if metadata is not None else metadata_json(current.metadata)
        if image is None:
            with self._store.write() as db:
                db.execute("UPDATE items SET metadata = ?, updated = ? WHERE id = ?", (meta, time.time(), item_id))
            return self.get(item_id)
        outcome, vectors = self._encode_one(image)
        with self._store.lock:  # as in add: the index changes with the commit, before a remove can run
            with self._store.write() as db:
                key = self.replace_image(db, item_id, outcome)
                db.execute("UPDATE items SET metadata = ? WHERE key = ?", (meta, key))
                self._write_vectors(db, [key], vectors)
            self._index_add([key], vectors)
        self._forget_copy(current.path)
        return self.get(item_id)

    def remove(self, item_id: str) -> None:
        """Remove one item. Raises ItemNotFoundError."""
        if not self.remove_many([item_id]):
            raise ItemNotFoundError(f"no item with id {item_id!r}")

    def remove_many(self, item_ids: Iterable[str]) -> builtins.list[str]:
        """Remove the items that exist among ``item_ids`` in one transaction; returns the ids removed."""
        ids = [_check_id(i) for i in item_ids]
        removed, keys, paths = [], [], []
        with self._store.lock:
            with self._store.write() as db:
                for item_id in ids:
                    row = db.execute("SELECT key, path FROM items WHERE id = ?", (item_id,)).fetchone()
                    if row is not None:
                        db.execute("DELETE FROM items WHERE key = ?", (row[0],))
                        removed.append(item_id)
                        keys.append(row[0])
                        paths.append(row[1])
            for index in self._indexes.values():
                index.remove(np.array(keys, dtype=np.int64))
        for p in paths:
            self._forget_copy(p)
        return removed

    # -- searching ----------------------------------------------------------------------------------------------

    def search(
        self,
        image: ImageSource,
        *,
        k: int = 10,
        box: Box | str | None = None,
        where: dict[str, Any] | None = None,
        encoder: str | None = None,
        rerank: int | None = None,
    ) -> builtins.list[SearchResult]:
        """The ``k`` items most similar to ``image`` (or to the region ``box`` of it), best first.

        Args:
            image: path, bytes, array or PIL image.
            k: number of results (at most the number of items).
            box: a region ``Box(x, y, w, h)`` or ``"x,y,w,h"`` in pixels of the (EXIF-oriented) image.
            where: equality filter on metadata keys, e.g. ``{"category": "shoes"}``.
            encoder: which of the catalogue's encoders to search (default: the first).
            rerank: with a hashed search (``fit_hasher``), take this many nearest codes and order them by exact
                cosine on the float vectors; the results then carry cosine scores.
        """
        return self.search_many([image], k=k, box=box, where=where, encoder=encoder, rerank=rerank)[0]

    def search_many(
        self,
        images: Sequence[ImageSource],
        *,
        k: int = 10,
        box: Box | str | None = None,
        where: dict[str, Any] | None = None,
        encoder: str | None = None,
        rerank: int | None = None,
    ) -> builtins.list[builtins.list[SearchResult]]:
        """:meth:`search` for several query images at once (one model call per batch)."""
        num, enc = self._pick_encoder(encoder)
        region = Box.parse(box) if isinstance(box, str) else box
        draft = None if region is not None else enc.input_size
        pil = [load_image(img, limits=self.limits, box=region, draft=draft).image for img in images]
        if rerank is None:
            return self.search_vectors(enc.encode_pil(pil), k=k, where=where, encoder=enc.spec)
        hashed = self._hashed(enc, rerank)
        floats = hashed.base.encode_pil(pil)
        return self._reranked(num, hashed.codes_of(floats), floats, k, rerank, where)

    def similar(
        self, item_id: str, *, k: int = 10, where: dict[str, Any] | None = None, encoder: str | None = None,
        rerank: int | None = None,
    ) -> builtins.list[SearchResult]:
        """"More like this": the ``k`` items most similar to an item of the catalogue, itself excluded."""
        num, enc = self._pick_encoder(encoder)
        key = self._key_of(item_id)
        query = self._vector_of(num, key, enc, item_id)
        if rerank is None:
            hits = self.search_vectors(query, k=_check_k(k) + 1, where=where, encoder=enc.spec)[0]
        else:
            hashed = self._hashed(enc, rerank)
            base_num = self._find_encoder(self._encoders, hashed.base.spec)[0]
            floats = self._vector_of(base_num, key, hashed.base, item_id)
            hits = self._reranked(num, query, floats, _check_k(k) + 1, rerank, where)[0]
        return [h for h in hits if h.id != item_id][:k]

    def fit_hasher(
        self, name: str = "itq", n_bits: int = 64, *, encoder: str | None = None, random_state: int = 0
    ) -> Encoder:
        """Learn binary codes on this catalogue's float vectors (``"itq"``, ``"lsh"``, ``"pcah"``, ``"sh"``,
        ``"sph"``), hash every item, and make Hamming search on the codes the default. Fitting again replaces the
        earlier fit of the same name and size. Returns the hashed encoder (its ``spec`` names it in ``encoder=``).
        """
        hashed = fit_hasher(self, name, n_bits, encoder=encoder, random_state=random_state)
        self._encoders = self._load_encoders(None)
        self._indexes.clear()
        return hashed

    def search_vectors(
        self, vectors: np.ndarray, *, k: int = 10, where: dict[str, Any] | None = None, encoder: str | None = None
    ) -> builtins.list[builtins.list[SearchResult]]:
        """Search with ready-made query vectors ((n, dim) float32 or (n, bits/8) uint8 for binary encoders)."""
        num, enc = self._pick_encoder(encoder)
        k = _check_k(k)
        keys = self._store.keys_where(where) if where else None
        with self._store.lock:
            scores, found = self._index(num).search(np.asarray(vectors), k, keys=keys)
        return self._hits(scores, found, enc)

    def _reranked(
        self, num: int, codes: np.ndarray, floats: np.ndarray, k: int, depth: int, where: dict[str, Any] | None
    ) -> builtins.list[builtins.list[SearchResult]]:
        keys = self._store.keys_where(where) if where else None
        with self._store.lock:
            scores, found, base = rerank(self, num, codes, floats, _check_k(k), depth, keys)
        return self._hits(scores, found, base)

    def _hashed(self, enc: Encoder, depth: object) -> HashedEncoder:
        if not isinstance(enc, HashedEncoder):
            raise InvalidParameterError(
                f"rerank needs a search by learned codes (fit a hasher: lookalike index DIR --hash itq); "
                f"{enc.spec!r} is not one")
        _check_k(depth, "rerank")
        return enc

    def _vector_of(self, num: int, key: int, enc: Encoder, item_id: str) -> np.ndarray:
        with self._store.lock:  # a concurrent remove moves rows (swap-remove): read the vector under the lock
            index = self._index(num)
            if key not in index:
                raise ItemNotFoundError(f"item {item_id!r} has no {enc.spec} vector")
            return index.get(key)[None, :]

    def _hits(self, scores: np.ndarray, found: np.ndarray, enc: Encoder) -> builtins.list[builtins.list[SearchResult]]:
        rows = self._store.rows_for_keys(np.unique(found[found >= 0]).tolist())
        return [self._results(s, f, rows, enc) for s, f in zip(scores, found, strict=True)]

    def _results(
        self, scores: np.ndarray, keys: np.ndarray, rows: dict[int, Any], enc: Encoder
    ) -> builtins.list[SearchResult]:
        out = []
        for s, key in zip(scores.tolist(), keys.tolist(), strict=True):
            row = rows.get(key)
            if row is None:
                continue  # padding (-1), or removed between the search and the lookup
            item = row_to_item(row)
            if enc.kind == "float":
                score, distance = float(s), 1.0 - float(s)
            else:
                score, distance = 1.0 - s / enc.dim, float(s)
            out.append(SearchResult(item.id, item.path, score, distance, item.metadata))
        return out

    # -- internals ----------------------------------------------------------------------------------------------

    def _encode_one(self, image: ImageSource) -> tuple[_ingest.Prepared, dict[int, np.ndarray]]:
        """Load one image and run every encoder on it; raises its ImageError."""
        outcome = _ingest.prepare_image(image, self._encoders, self.limits)
        if isinstance(outcome, ImageError):
            raise outcome
        assert isinstance(outcome, _ingest.Prepared)
        return outcome, _ingest.run_encoders([outcome], self._encoders)

    def _prepare(self, source: ImageSource) -> _ingest.Outcome:
        return _ingest.prepare_image(source, self._encoders, self.limits)

    @staticmethod
    def _split_outcomes(chunk: Sequence[_ingest.Outcome], report: BatchReport) -> builtins.list[_ingest.Prepared]:
        ok = []
        for outcome in chunk:
            if isinstance(outcome, ImageError):
                report.skipped.append(Skipped(outcome.source, outcome.reason))
            elif isinstance(outcome, _ingest.Prepared):
                ok.append(outcome)
        return ok

    def _pick_encoder(self, spec: str | None) -> tuple[int, Encoder]:
        return self._encoders[0] if spec is None else self._find_encoder(self._encoders, spec)

    def _key_of(self, item_id: str) -> int:
        rows = self._store.query("SELECT key FROM items WHERE id = ?", (_check_id(item_id),))
        if not rows:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return int(rows[0][0])

    def _index(self, num: int) -> FlatIndex:
        """The in-memory index of one encoder, reloaded when another process has committed since."""
        with self._store.lock:
            version = self._store.data_version()
            if version != self._version:
                self._indexes.clear()
                self._version = version
            if num not in self._indexes:
                self._indexes[num] = self._load_index(num)
            return self._indexes[num]

    def _load_index(self, num: int) -> FlatIndex:
        enc = dict(self._encoders)[num]
        index: FlatIndex = FloatFlatIndex(enc.dim) if enc.kind == "float" else BinaryFlatIndex(enc.dim)
        for keys, blobs in self._store.iter_vectors(num):  # a chunk at a time: no second copy of every vector
            index.add(keys, np.frombuffer(b"".join(blobs), dtype=enc.dtype).reshape(len(keys), enc.width))
        return index

    def _index_add(self, keys: Sequence[int], vectors: dict[int, np.ndarray]) -> None:
        # Our own commits do not change data_version, so the loaded indexes stay valid once updated here.
        if not len(keys):
            return
        with self._store.lock:
            for num, index in self._indexes.items():
                index.add(np.asarray(keys, dtype=np.int64), vectors[num])

    def _insert(self, db: Any, p: _ingest.Prepared, item_id: str | None, meta: str) -> int:
        item_id = item_id if item_id is not None else self._free_id(db, p)
        if db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
            raise DuplicateItemError(f"an item with id {item_id!r} already exists")
        now = time.time()
        path = p.path if p.path is not None else self._keep_copy(p)
        cur = db.execute(
            "INSERT INTO items (id, path, sha256, width, height, added, updated, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (item_id, path, p.sha256, p.width, p.height, now, now, meta))
        key = int(cur.lastrowid)
        self._write_thumb(db, key, p)
        return key

    def replace_image(self, db: Any, item_id: str, p: _ingest.Prepared) -> int:
        """Point an existing item at a new image (inside the caller's transaction); returns its key."""
        path = p.path if p.path is not None else self._keep_copy(p)
        db.execute("UPDATE items SET path = ?, sha256 = ?, width = ?, height = ?, updated = ? WHERE id = ?",
                   (path, p.sha256, p.width, p.height, time.time(), item_id))
        key = int(db.execute("SELECT key FROM items WHERE id = ?", (item_id,)).fetchone()[0])
        self._write_thumb(db, key, p)
        return key

    @staticmethod
    def _write_thumb(db: Any, key: int, p: _ingest.Prepared) -> None:
        if p.thumb is not None:
            db.execute("INSERT OR REPLACE INTO thumbs (key, thumb) VALUES (?, ?)", (key, p.thumb))

    def _write_vectors(self, db: Any, keys: Sequence[int], vectors: dict[int, np.ndarray]) -> None:
        for num, matrix in vectors.items():
            db.executemany("INSERT OR REPLACE INTO vectors (encoder, key, vec) VALUES (?, ?, ?)",
                           [(num, key, matrix[i].tobytes()) for i, key in enumerate(keys)])

    @staticmethod
    def _free_id(db: Any, p: _ingest.Prepared) -> str:
        base = Path(p.path).name if p.path is not None else p.sha256[:12]
        candidate, n = base, 1
        while db.execute("SELECT 1 FROM items WHERE id = ?", (candidate,)).fetchone():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _keep_copy(self, p: _ingest.Prepared) -> str | None:
        """Store the bytes of an in-memory image in the catalogue (content-addressed); returns its path."""
        if p.data is None:
            return None  # arrays and PIL images have no original encoding worth keeping
        ext = (p.format or "img").lower()
        target = self.path / "images" / p.sha256[:2] / f"{p.sha256}.{ext}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(p.data)
            os.replace(tmp, target)
        return str(target.absolute())

    def _forget_copy(self, path: str | None) -> None:
        """Delete a stored copy that no item refers to any more."""
        images = (self.path / "images").absolute()
        if path is None or not Path(path).is_relative_to(images):
            return
        if not self._store.query("SELECT 1 FROM items WHERE path = ? LIMIT 1", (path,)):
            Path(path).unlink(missing_ok=True)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Catalog {str(self.path)!r} encoder={self.encoder.spec!r}>"


def _ids_sql(keys: Sequence[int]) -> str:
    return f"SELECT id FROM items WHERE key IN ({','.join('?' * len(keys))}) ORDER BY key"


def _check_id(item_id: object) -> str:
    if not isinstance(item_id, str) or not item_id or len(item_id) > 1024 or not item_id.isprintable():
        raise InvalidParameterError(f"An item id must be a printable string of 1–1024 characters. Got {item_id!r}.")
    return item_id


def _check_k(k: object, name: str = "k") -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 10_000:
        raise InvalidParameterError(f"The {name!r} parameter must be an int in [1, 10000]. Got {k!r} instead.")
    return k


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
