"""The write path of the catalogue: prepare and encode images, check them for duplicates, then commit items,
vectors and features in one transaction and update the loaded indexes under the same lock."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders.base import progress_bar
from ..errors import DuplicateDetectionError, DuplicateImageError, DuplicateItemError, ImageError
from ..images import ImageLimits, ImageSource, Skipped
from ..prefetch import pipelined
from ..validation import check_choice
from . import _ingest, crop
from ._encoders import EncoderSet
from ._indexes import IndexSet
from .extensions import DuplicateDetector
from .store import Store, Transaction, metadata_json
from .types import REFUSE_CHOICES, BatchReport, CheckedItem, DuplicateMatch, Item, Refuse, Refused

CHUNK = 64


class Writer:
    """Adds, updates and removes items of one catalogue (see the module docstring)."""

    def __init__(self, root: Path, store: Store, encoders: EncoderSet, indexes: IndexSet, limits: ImageLimits,
                 detector: Callable[[], DuplicateDetector]) -> None:
        self.root, self.store, self.encoders, self.indexes, self.limits = root, store, encoders, indexes, limits
        self._detector = detector

    # -- preparing ----------------------------------------------------------------------------------------------

    def prepare(self, source: ImageSource, known: dict[str, str] | None = None) -> _ingest.Outcome:
        return _ingest.prepare_image(source, self.encoders.pairs, self.limits, draft=self.encoders.draft,
                                     known=known, crop=self.localiser(),
                                     mask=crop.mask_setting(self.store.meta(crop.MASK_SETTING)))

    def localiser(self) -> crop.Localiser | None:
        """The crop stage of ingest: the localiser of the setting ``crop.model`` (None: images are not cropped)."""
        model = self.store.meta(crop.CROP_SETTING)
        return crop.resolve("auto", model) if model else None

    def encode(self, ready: Sequence[_ingest.Prepared]) -> dict[int, np.ndarray]:
        return _ingest.run_encoders(ready, self.encoders.pairs)

    def encode_one(self, image: ImageSource) -> tuple[_ingest.Prepared, dict[int, np.ndarray]]:
        """Load one image and run every encoder on it; raises its ImageError."""
        outcome = self.prepare(image)
        if isinstance(outcome, ImageError):
            raise outcome
        assert isinstance(outcome, _ingest.Prepared)
        return outcome, self.encode([outcome])

    @staticmethod
    def split_outcomes(chunk: Sequence[_ingest.Outcome], report: BatchReport) -> list[_ingest.Prepared]:
        ok = []
        for outcome in chunk:
            if isinstance(outcome, ImageError):
                report.skipped.append(Skipped(outcome.source, outcome.reason))
            elif isinstance(outcome, _ingest.Prepared):
                ok.append(outcome)
        return ok

    # -- committing ---------------------------------------------------------------------------------------------

    def insert(self, tx: Transaction, p: _ingest.Prepared, item_id: str | None, meta: str) -> int:
        if item_id is None:
            item_id = tx.free_id(Path(p.path).name if p.path is not None else p.sha256[:12])
        elif tx.id_taken(item_id):
            raise DuplicateItemError(f"an item with id {item_id!r} already exists")
        key = tx.insert_item(item_id, p.new_item(p.path if p.path is not None else self.keep_copy(p)), meta)
        self.put_features(tx, key, p)
        return key

    def replace_image(self, tx: Transaction, item_id: str, p: _ingest.Prepared) -> int:
        key = tx.replace_image(item_id, p.new_item(p.path if p.path is not None else self.keep_copy(p)))
        self.put_features(tx, key, p)
        return key

    @staticmethod
    def put_features(tx: Transaction, key: int, p: _ingest.Prepared) -> None:
        for name, value in p.features.items():
            tx.put_features(name, {key: value})

    @staticmethod
    def put_vectors(tx: Transaction, keys: Sequence[int], vectors: dict[int, np.ndarray]) -> None:
        for num, matrix in vectors.items():
            tx.put_vectors(num, keys, matrix)

    def commit(self, ready: Sequence[_ingest.Prepared], vectors: dict[int, np.ndarray], meta: str,
               ids: Sequence[str | None] | None = None) -> list[int]:
        """Insert ``ready`` with their vectors in one transaction, then update the indexes (one step under the
        lock: a concurrent remove cannot fall between)."""
        with self.store.lock:
            with self.store.transaction() as tx:
                keys = [self.insert(tx, p, None if ids is None else ids[i], meta) for i, p in enumerate(ready)]
                self.put_vectors(tx, keys, vectors)
            self.indexes.add(keys, vectors)
        return keys

    # -- adding -------------------------------------------------------------------------------------------------

    def add(self, image: ImageSource, item_id: str | None, metadata: dict[str, Any] | None,
            check: bool | None, refuse: Refuse | None) -> Item:
        self.store.require_writable()
        meta = metadata_json(metadata)
        check_choice("refuse", refuse, REFUSE_CHOICES)
        p, vectors = self.encode_one(image)
        matches = self.duplicates_of(p, vectors, image, check, refuse)
        with self.store.lock:  # read the item back before a concurrent remove can take it
            key = self.commit([p], vectors, meta, [item_id])[0]
            item = self.store.items_by_key([key])[key]
        if matches is None:
            return item
        fields = {f: getattr(item, f) for f in item.__dataclass_fields__}
        return CheckedItem(**fields, duplicates=tuple(matches))

    def duplicates_of(self, p: _ingest.Prepared, vectors: dict[int, np.ndarray], source: ImageSource | None,
                      check: bool | None, refuse: Refuse | None) -> list[DuplicateMatch] | None:
        """The duplicate verdicts on one image about to be added (None: not checked). ``check=None`` checks when
        the catalogue is calibrated and otherwise reports exact copies only; ``refuse`` raises
        DuplicateImageError for an exact (or near) duplicate."""
        if check is False and refuse is None:
            return None
        full = check is True or refuse == "near"
        if not full and not self.encoders.floats():  # binary codes only: exact copies by content hash
            matches = self.same_content(p.sha256)
        else:
            detector = self._detector()
            num = self.float_num()
            if full or (check is None and detector.is_calibrated()):
                matches = detector.check(vectors[num], p.features, p.sha256, source)
            else:
                matches = detector.exact(vectors[num], p.sha256, source)
        refused = [m for m in matches if m.verdict == "exact" or (refuse == "near" and m.is_duplicate)]
        if refuse is not None and refused:
            raise DuplicateImageError(f"refused: the image is {refused[0].describe()}", refused)
        return matches

    def float_num(self) -> int:
        floats = self.encoders.floats()
        if not floats:
            raise DuplicateDetectionError(f"duplicate detection needs float vectors (e.g. efficientnet-lite0); "
                                          f"catalogue {self.root} has only binary codes")
        return floats[0][0]

    def add_many(self, images: Iterable[ImageSource], metadata: dict[str, Any] | None, progress: bool,
                 check: bool | None, refuse: Refuse | None) -> BatchReport:
        self.store.require_writable()
        meta = metadata_json(metadata)
        check_choice("refuse", refuse, REFUSE_CHOICES)
        if check is True or refuse == "near":
            self._detector().require_calibration()  # before anything is read or written
        one_by_one = check is True or refuse is not None or (check is None and self.encoders.floats()
                                                              and self._detector().is_calibrated())
        report = BatchReport()
        sources = list(images)
        bar = progress_bar(len(sources), progress, "adding")
        for chunk in pipelined(sources, self.prepare, CHUNK):
            ok = self.split_outcomes(chunk, report)
            vectors = self.encode(ok)
            if one_by_one:
                self._add_checked(ok, vectors, meta, check, refuse, report)
            else:
                with self.store.lock:
                    keys = self.commit(ok, vectors, meta)
                    report.added += self.store.ids_of(keys)
                if check is None:
                    self._exact_by_content(ok, keys, report)
            bar.update(len(chunk))
        bar.close()
        return report

    def same_content(self, sha256: str, but: int | None = None) -> list[DuplicateMatch]:
        """Exact matches by content hash alone (items other than key ``but``)."""
        return [DuplicateMatch(i.id, i.path, "exact", 0.0, 1.0, None) for i in self.store.items_with_sha256(sha256)
                if i.key != but]

    def _exact_by_content(self, ok: Sequence[_ingest.Prepared], keys: Sequence[int], report: BatchReport) -> None:
        """The automatic check of an uncalibrated catalogue in a batch: items with the same content (cheap; the
        per-image pixel comparison of :meth:`add` would scan the index once per image)."""
        for p, key in zip(ok, keys, strict=True):
            others = self.same_content(p.sha256, but=key)
            if others:
                report.duplicates[self.store.ids_of([key])[0]] = others

    def _add_checked(self, ok: Sequence[_ingest.Prepared], vectors: dict[int, np.ndarray], meta: str,
                     check: bool | None, refuse: Refuse | None, report: BatchReport) -> None:
        for i, p in enumerate(ok):
            one = {num: matrix[i : i + 1] for num, matrix in vectors.items()}
            try:
                matches = self.duplicates_of(p, one, p.path if p.path is not None else p.data, check, refuse)
            except DuplicateImageError as err:
                report.refused.append(Refused(p.source, tuple(err.matches)))
                continue
            with self.store.lock:
                item_id = self.store.ids_of(self.commit([p], one, meta))[0]
            report.added.append(item_id)
            found = [m for m in matches or () if m.is_duplicate]
            if check is not False and found:
                report.duplicates[item_id] = found

    # -- updating and removing ----------------------------------------------------------------------------------

    def update(self, current: Item, image: ImageSource | None, metadata: dict[str, Any] | None) -> None:
        self.store.require_writable()
        meta = metadata_json(metadata) if metadata is not None else metadata_json(current.metadata)
        if image is None:
            with self.store.transaction() as tx:
                tx.set_metadata(current.id, meta)
            return
        p, vectors = self.encode_one(image)
        with self.store.lock:  # as in add: the index changes with the commit, before a remove can run
            with self.store.transaction() as tx:
                key = self.replace_image(tx, current.id, p)
                tx.set_metadata(current.id, meta)
                self.put_vectors(tx, [key], vectors)
            self.indexes.add([key], vectors)
        self.forget_copy(current.path)

    def remove_many(self, ids: Sequence[str]) -> list[str]:
        with self.store.lock:
            with self.store.transaction() as tx:
                removed = tx.delete_items(ids)
            self.indexes.remove([key for _id, key, _path in removed])
        for _id, _key, path in removed:
            self.forget_copy(path)
        return [item_id for item_id, _key, _path in removed]

    # -- the catalogue's own copies -----------------------------------------------------------------------------

    def keep_copy(self, p: _ingest.Prepared) -> str | None:
        """Store the bytes of an in-memory image in the catalogue (content-addressed); returns its path."""
        if p.data is None:
            return None  # arrays and PIL images have no original encoding worth keeping
        ext = (p.format or "img").lower()
        target = self.root / "images" / p.sha256[:2] / f"{p.sha256}.{ext}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(p.data)
            os.replace(tmp, target)
        return str(target.absolute())

    def forget_copy(self, path: str | None) -> None:
        """Delete a stored copy that no item refers to any more."""
        images = (self.root / "images").absolute()
        if path is None or not Path(path).is_relative_to(images):
            return
        if not self.store.path_in_use(path):
            Path(path).unlink(missing_ok=True)
