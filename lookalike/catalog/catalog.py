"""The catalogue: items with metadata in SQLite, their vectors per encoder, and search over them.

A catalogue is one directory (default ``./.lookalike``)::

    catalog.sqlite   items (id, path, sha256, size, times, metadata), every vector and feature, in one WAL database
    images/          copies of images that were added as bytes or arrays (content-addressed)

Example::

    with Catalog("shop.lookalike") as cat:            # created with the default encoder, efficientnet-lite0
        report = cat.index_folder("photos/")           # incremental: unchanged files are skipped by content hash
        hits = cat.search("query.jpg", k=10)           # [SearchResult(id, path, score, distance, metadata), ...]

:class:`Catalog` is a façade over the seams of ``docs/architecture.md``: store, encoders, indexes (``index=``),
the write path, the query pipeline and the registered extensions (features, the duplicate detector).
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders import Encoder, get_encoder
from ..errors import ItemNotFoundError
from ..images import DEFAULT_LIMITS, Box, ImageLimits, ImageSource
from ..validation import check_int
from . import _checks
from ._encoders import EncoderSet
from ._engine import Engine
from ._hashing import fit_hasher, learn_or_warn, wants_codes
from ._indexes import IndexSet, LiveIndex
from ._writer import Writer
from .extensions import detector_for
from .folder import index_folder as _index_folder
from .judgements import Judgements
from .query import QueryPipeline, check_k
from .store import DB_NAME, Store
from .types import BatchReport, DuplicateMatch, Item, Refuse, SearchResult

if TYPE_CHECKING:
    from ..dedup import Calibration, DedupReport

DEFAULT_ENCODER = "efficientnet-lite0"
DEFAULT_PATH = ".lookalike"


class Catalog:
    """An image catalogue on disk with similarity search.

    Args:
        path: the catalogue directory (created if missing and ``create`` is true).
        encoder: encoder spec for a new catalogue (default ``efficientnet-lite0``; a bad one writes nothing); for
            an existing one, None or one of its encoders (which then becomes the one searched by default).
        extra_encoders: further encoders a new catalogue keeps vectors of (e.g. ``["phash"]``).
        create: create the catalogue if it does not exist (else :class:`CatalogError`).
        limits: pixel and byte limits for every image read.
        index: the index factory string of every encoder's index (default ``"Flat"``: exact, in memory).
        read_only: True, False, or None (default): read-only when the files cannot be written (read-only media).
        backend: an external index, a Milvus URI (docs/deployment.md), kept as a setting ("local": none); None: kept.

    Raises:
        CatalogError: missing (with ``create=False``) or not a catalogue.
        IncompatibleCatalogError: another schema version, or ``encoder`` is not one of the catalogue's.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, encoder: str | None = None, *,
                 extra_encoders: Sequence[str] = (), create: bool = True, limits: ImageLimits = DEFAULT_LIMITS,
                 index: str = "Flat", read_only: bool | None = None, backend: str | None = None) -> None:
        self.path, self.limits = Path(path), limits
        specs = [encoder or DEFAULT_ENCODER, *extra_encoders]
        made = [get_encoder(s) for s in specs] if create and not (self.path / DB_NAME).exists() else None
        self._db = Store(self.path, create=create, read_only=read_only)
        if not self._db.is_initialised():
            self._db.initialise([(e.spec, e.kind, e.dim) for e in made or [get_encoder(s) for s in specs]])
        self._set = EncoderSet(self._db, str(self.path), encoder)
        self._indexes = IndexSet(self._db, self._set, index, backend)
        self.judgements = Judgements(self._db)  # people's similarity judgements: the triplets of deep ranking
        self._wire()

    def _wire(self) -> None:
        self._engine = Engine(self._db, self._set, self._indexes, self.limits)
        self._writer = Writer(self.path, self._db, self._set, self._indexes, self.limits, lambda: detector_for(self))
        self.pipeline = QueryPipeline(self._engine)

    # -- reading ------------------------------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The encoder searched by default."""
        return self._set.default[1]

    @property
    def encoders(self) -> builtins.list[Encoder]:
        return [e for _, e in self._set]

    @property
    def lock(self) -> threading.RLock:
        """The catalogue's lock: hold it around several reads that must see one state (writes wait)."""
        return self._db.lock

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    def __len__(self) -> int:
        return self.count()

    def count(self, where: dict[str, Any] | None = None) -> int:
        """Number of items (matching the metadata filter ``where``, if given)."""
        return self._db.count(where)

    def get(self, item_id: str) -> Item:
        """The item with this id. Raises ItemNotFoundError."""
        item = self._db.item(_checks.check_id(item_id))
        if item is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return item

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self._db.item(item_id) is not None

    def list(self, *, offset: int = 0, limit: int = 100, where: dict[str, Any] | None = None) -> builtins.list[Item]:
        """Items in insertion order, a page at a time."""
        check_int("offset", offset, 0, 2**62)
        return self._db.items(offset, check_int("limit", limit, 0, 2**62), where)

    def info(self) -> dict[str, Any]:
        """Counts, encoders and sizes on disk."""
        sizes, counts = {p.name: p.stat().st_size for p in self.path.glob("catalog.sqlite*")}, self._db.vector_counts()
        return {
            "path": str(self.path.absolute()), "items": self.count(), "index": self._indexes.describe,
            "read_only": self.read_only, "schema_version": self._db.schema_version(),
            "encoders": [{"spec": e.spec, "kind": e.kind, "dim": e.dim, "vectors": counts.get(n, 0)}
                         for n, e in self._set],
            "bytes_on_disk": sum(sizes.values()) + _checks.dir_size(self.path / "images"),
        }

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, image: ImageSource, *, id: str | None = None, metadata: dict[str, Any] | None = None,  # noqa: A002
            check_duplicates: bool | None = None, refuse: Refuse | None = None) -> Item:
        """Add one image (path, bytes, array or PIL image) and return its item.

        Without ``id``, a file gets its file name as id and other sources the first 12 hex digits of their sha256
        (with ``-2``, ``-3`` … appended while taken). Duplicates: by default (``check_duplicates=None``) a
        calibrated catalogue compares the image with its nearest items, an uncalibrated one looks for exact copies;
        the returned :class:`CheckedItem` has the verdicts in ``duplicates``. ``True`` insists on the full check
        (needs :meth:`calibrate_duplicates`), ``False`` skips it. ``refuse="exact"`` or ``"near"`` raises
        :class:`DuplicateImageError` instead, and nothing is written. Raises ImageError (the image cannot be used;
        the subclass says why), DuplicateItemError (``id`` taken), DuplicateImageError, CalibrationRequiredError.
        """
        return self._writer.add(image, None if id is None else _checks.check_id(id), metadata, check_duplicates, refuse)

    def add_many(self, images: Iterable[ImageSource], *, metadata: dict[str, Any] | None = None,
                 progress: bool = False, check_duplicates: bool | None = None, refuse: Refuse | None = None
                 ) -> BatchReport:
        """Add many images with auto ids; bad ones are listed in the report's ``skipped``, the rest committed.

        Commits every chunk of 64 images: a crash loses at most the chunk in flight. ``check_duplicates`` and
        ``refuse`` work as in :meth:`add`, image by image (checked images commit one at a time); found duplicates
        are in the report's ``duplicates`` (id → matches), refused images in ``refused``. Past ``search.codes_at``
        items the catalogue then learns codes (:meth:`learn_codes_if_large`).
        """
        return self._then_learn(self._writer.add_many(images, metadata, progress, check_duplicates, refuse))

    def index_folder(self, root: str | os.PathLike[str], *, progress: bool = False, ray: str | None = None,
                     ray_workers: int | None = None) -> BatchReport:
        """Index every image under ``root`` (recursively, recognised by content), incrementally.

        Unchanged files (same content hash) are skipped, changed files re-encoded, and items whose file has
        vanished from under ``root`` removed. Ids are paths relative to ``root``. Each chunk commits on its own.
        ``ray``: decode and encode on Ray actors (``"local"``, or a cluster's address; see ``catalog/_ray.py``).
        """
        return self._then_learn(_index_folder(self._writer, root, progress=progress, ray=ray, workers=ray_workers))

    def update(self, item_id: str, *, image: ImageSource | None = None, metadata: dict[str, Any] | None = None
               ) -> Item:
        """Replace an item's image and/or its metadata (the whole object). Raises ItemNotFoundError, ImageError."""
        self._writer.update(self.get(item_id), image, metadata)
        return self.get(item_id)

    def remove(self, item_id: str) -> None:
        """Remove one item. Raises ItemNotFoundError."""
        if not self.remove_many([item_id]):
            raise ItemNotFoundError(f"no item with id {item_id!r}")

    def remove_many(self, item_ids: Iterable[str]) -> builtins.list[str]:
        """Remove the items that exist among ``item_ids`` in one transaction; returns the ids removed."""
        return self._writer.remove_many([_checks.check_id(i) for i in item_ids])

    # -- searching ----------------------------------------------------------------------------------------------

    def search(self, image: ImageSource, *, k: int = 10, box: Box | str | None = None,
               where: dict[str, Any] | None = None, encoder: str | None = None, rerank: int | None = None,
               crop: str | None = None) -> builtins.list[SearchResult]:
        """The ``k`` items most similar to ``image`` (or to the region ``box`` of it), best first.

        Args:
            image: path, bytes, array or PIL image; ``k``: number of results (at most the number of items).
            box: a region ``Box(x, y, w, h)`` or ``"x,y,w,h"`` in pixels of the (EXIF-oriented) image.
            where: equality filter on metadata keys, e.g. ``{"category": "shoes"}``.
            encoder: which of the catalogue's encoders to search (default: the first).
            rerank: with learned codes, re-rank this many best candidates by exact cosine (search.rerank; 0: none)
            crop: ``"auto"``/``"auto:MODEL"``: cut to the box the localiser (crop.model/MODEL) finds; ``,mask``: masked
        """
        return self.search_many([image], k=k, box=box, where=where, encoder=encoder, rerank=rerank, crop=crop)[0]

    def search_many(self, images: Sequence[ImageSource], *, k: int = 10, box: Box | str | None = None,
                    where: dict[str, Any] | None = None, encoder: str | None = None, rerank: int | None = None,
                    crop: str | None = None) -> builtins.list[builtins.list[SearchResult]]:
        """:meth:`search` for several query images at once (one model call per batch)."""
        return self.pipeline.run(images, k=k, box=box, where=where, encoder=encoder, rerank=rerank, crop=crop)

    def similar(self, item_id: str | Sequence[str], *, unlike: Sequence[str] = (), k: int = 10,
                where: dict[str, Any] | None = None, encoder: str | None = None, rerank: int | None = None
                ) -> builtins.list[SearchResult]:
        """"More like this" (these, less like ``unlike``: QueryPipeline.similar): the ``k`` best, examples excluded."""
        return self.pipeline.similar(item_id, unlike=unlike, k=k, where=where, encoder=encoder, rerank=rerank)

    def search_vectors(self, vectors: np.ndarray, *, k: int = 10, where: dict[str, Any] | None = None,
                       encoder: str | None = None) -> builtins.list[builtins.list[SearchResult]]:
        """Search with ready-made query vectors ((n, dim) float32 or (n, bits/8) uint8 for binary encoders)."""
        return self.pipeline.retrieve(self.pipeline.vectors(vectors, encoder=encoder), k=k, where=where)

    def fit_hasher(self, name: str = "itq", n_bits: int = 64, *, encoder: str | None = None, random_state: int = 0
                   ) -> Encoder:
        """Learn codes (``"itq"``, ``"lsh"``, ...) on the float vectors and search by them (re-ranked); a refit replaces
        the fit of that name and size. Returns the hashed encoder."""
        hashed = fit_hasher(self._db, self._set, name, n_bits, encoder=encoder, random_state=random_state)
        self._set = EncoderSet(self._db, str(self.path))
        self._indexes.reset(self._set)
        self._wire()
        return hashed

    def learn_codes_if_large(self) -> Encoder | None:
        """Fit 64-bit ITQ codes once the catalogue is large (:func:`~._hashing.wants_codes`): the encoder or None."""
        large = wants_codes(self._set, self.read_only, self.setting("search.codes_at"), self.count)
        return self.fit_hasher("itq", 64) if large else None

    def _then_learn(self, report: BatchReport) -> BatchReport:  # add_many, index_folder: learn codes when large
        learn_or_warn(self.learn_codes_if_large, self.path)
        return report

    def find_hashed(self, name: str, n_bits: int) -> Encoder | None:
        """The catalogue's codes fitted with hasher ``name`` at ``n_bits``, or None."""
        return self._set.find_hashed(name, n_bits)

    # -- views for detectors and tools (keys are the items' int64 index keys, Item.key) -----------------------

    def vector_index(self, encoder: str | None = None) -> LiveIndex:
        """A thread-safe, always current, read-only view of one encoder's index (a ReadableIndex when built in)."""
        return LiveIndex(self._indexes, self._set.pick(encoder)[0])

    def items_by_key(self, keys: Sequence[int]) -> dict[int, Item]:
        return self._db.items_by_key(keys)

    def items_with_sha256(self, sha256: str) -> builtins.list[Item]:
        return self._db.items_with_sha256(sha256)

    def items_with_files(self) -> builtins.list[Item]:  # those with an image file (not pixels), in insertion order
        return self._db.items_with_files()

    def same_content_pairs(self) -> builtins.list[tuple[int, int]]:
        """(key a, key b), a < b, of every two items with the same content hash."""
        return self._db.same_content_pairs()

    def features(self, name: str, keys: Sequence[int] | None = None) -> dict[int, bytes]:
        """key → stored feature ``name`` (see :func:`~lookalike.catalog.extensions.register_feature`)."""
        return self._db.features(name, keys)

    def put_features(self, name: str, values: Mapping[int, bytes]) -> None:
        """Store (or replace) one feature of existing items (keys of items that are gone are skipped)."""
        with self._db.transaction() as tx:
            tx.put_features(name, values)

    def setting(self, name: str) -> str | None:
        """A named text value stored with the catalogue (e.g. the duplicate calibration), or None."""
        return self._db.meta(_checks.setting_name(name))

    def put_setting(self, name: str, value: str | None) -> None:
        self._db.set_meta(_checks.setting_name(name), value)

    # -- duplicates (lookalike.dedup, registered as the catalogue's detector) -----------------------------------

    def calibrate_duplicates(self, *, target_precision: float = 0.99, sample: int = 200, k: int = 10, seed: int = 0
                             ) -> Calibration:
        """Fit and store the near-duplicate threshold on edited copies of ``sample`` items (dedup.calibrate)."""
        return detector_for(self).calibrate(target_precision=target_precision, sample=sample, k=k, seed=seed)

    @property
    def duplicate_calibration(self) -> Calibration | None:
        """The stored :class:`lookalike.dedup.Calibration`, or None."""
        return detector_for(self).calibration()

    def find_duplicates(self, image: ImageSource, *, k: int = 10, min_cosine: float = 0.8
                        ) -> builtins.list[DuplicateMatch]:
        """Verdicts on the ``k`` nearest items of an image that is not added."""
        return detector_for(self).find(image, k=check_k(k), min_cosine=min_cosine)

    def dedup(self, *, k: int = 10, approximate: bool | None = None) -> DedupReport:
        """Duplicate groups of the whole catalogue with a keeper each (see :func:`lookalike.dedup.dedup`)."""
        return detector_for(self).report(k=k, approximate=approximate)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Catalog {str(self.path)!r} encoder={self.encoder.spec!r}>"
