"""What the endpoints do, without HTTP: search, similar, add/update/delete and thumbnails over one catalogue.

Thread safety: the endpoints run in a thread pool. The catalogue serialises its own SQL and index access, but a
write is several steps (encode, commit, update the in-memory index), and ``similar`` reads an item's vector from
the index; so writes and ``similar`` share one lock here, while searches by image (decode and encode, the slow
part) run in parallel and only the index scan is serialised inside the catalogue. The duplicate report and the
calibration take the write lock too (one state of the catalogue; writes wait for them); checking an upload for
duplicates does not.

Searches that arrive while a scan is running are combined into one batched scan (:class:`SearchBatcher`): an exact
scan is memory-bound, so scanning the vectors once for eight queries costs little more than for one, and queued
searches do not wait for one another's scans in turn.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from ..catalog import Catalog, Item, SearchResult
from ..errors import CalibrationRequiredError, CatalogError, ImageNotFoundError, InvalidParameterError
from ..images import Box, ImageLimits, load_image, sniff_format
from .config import ServiceConfig
from .metrics import Metrics

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
               "GIF": "image/gif", "TIFF": "image/tiff"}
THUMBNAIL_SIZES = (16, 512)
DEFAULT_THUMBNAIL = 160


class PayloadTooLargeError(InvalidParameterError):
    """A request field (metadata, filter) is larger than the service accepts (413)."""


class DuplicateDetectionError(CatalogError):
    """The catalogue cannot do duplicate detection as it is (too few items to calibrate, only binary codes): a
    conflict with its state, 409."""


CALIBRATE_HINT = ("calibrate it first: POST /duplicates/calibrate with the API key (the Calibrate button of the "
                  "Duplicates page), or run 'lookalike dedup --calibrate' on the catalogue")
CALIBRATE_BOUNDS = {"target_precision": (0.5, 0.999), "sample": (10, 2000), "seed": (0, 2**32 - 1)}


class _Pending:
    __slots__ = ("error", "k", "result", "vector", "where")

    def __init__(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> None:
        self.vector, self.k, self.where = vector, k, where
        self.result: list[SearchResult] | None = None
        self.error: BaseException | None = None


class SearchBatcher:
    """Combine concurrent ``search_vectors`` calls into batched scans (flat combining).

    Each caller queues its query, then takes the scan lock; whoever holds it scans for every query queued so far
    (one scan per distinct filter, at the largest k asked, each caller's list cut to its own k). A caller whose
    query was answered while it waited returns at once. With one caller at a time it is a plain search.
    """

    def __init__(self, catalog: Catalog, max_batch: int = 64) -> None:
        self.cat = catalog
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._scan_lock = threading.Lock()

    def search(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[SearchResult]:
        mine = _Pending(vector, k, where)
        with self._queue_lock:
            self._queue.append(mine)
        while mine.result is None and mine.error is None:
            with self._scan_lock:
                if mine.result is None and mine.error is None:
                    with self._queue_lock:
                        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                    self._run(batch)
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _run(self, batch: list[_Pending]) -> None:
        groups: dict[str, list[_Pending]] = {}
        for p in batch:
            groups.setdefault(json.dumps(p.where, sort_keys=True, default=str), []).append(p)
        for group in groups.values():
            try:
                hits = self.cat.search_vectors(np.concatenate([p.vector for p in group]),
                                               k=max(p.k for p in group), where=group[0].where)
                for p, found in zip(group, hits, strict=True):
                    p.result = found[: p.k]
            except BaseException as err:  # handed to each caller, who re-raises it
                for p in group:
                    p.error = err


class Service:
    """One opened catalogue behind the HTTP endpoints."""

    def __init__(self, config: ServiceConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self.limits = ImageLimits(max_pixels=config.max_pixels, max_bytes=config.max_upload_bytes)
        self.cat = catalog if catalog is not None else Catalog(config.catalog, create=False, limits=self.limits)
        self.metrics = Metrics()
        self.metrics.items.set_function(lambda: float(self.cat.count()))
        self.started = time.time()
        self._write_lock = threading.RLock()
        self.batcher = SearchBatcher(self.cat)
        self._thumbs: OrderedDict[tuple[str, int], tuple[bytes, str]] = OrderedDict()
        self._thumbs_lock = threading.Lock()

    def warm_up(self) -> None:
        """Open the encoder's model and load the index now, not on the first request."""
        enc = self.cat.encoder
        vector = enc.run_prepared([enc.prepare(Image.new("RGB", (32, 32), (128, 128, 128)))])
        if self.cat.count():
            self.cat.search_vectors(vector, k=1)

    def close(self) -> None:
        self.cat.close()

    # -- parameters ---------------------------------------------------------------------------------------------

    def parse_k(self, value: object, default: int = 10) -> int:
        if value is None or value == "":
            return default
        try:
            k = int(str(value).strip(), 10)
        except ValueError:
            k = 0
        if not 1 <= k <= self.config.max_k or len(str(value)) > 12:
            raise InvalidParameterError(f"k must be an integer in [1, {self.config.max_k}]. Got {_short(value)}.")
        return k

    @staticmethod
    def parse_box(value: object) -> Box | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidParameterError(f"box must be a string 'x,y,w,h'. Got {_short(value)}.")
        return Box.parse(value)

    def parse_object(self, text: object, what: str) -> dict[str, Any] | None:
        """A JSON object given as text (metadata, a filter); None for absent or empty."""
        if text is None or text == "":
            return None
        if not isinstance(text, str):
            raise InvalidParameterError(f"{what} must be a JSON object in a text field. Got {_short(text)}.")
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > self.config.max_metadata_bytes:
            raise PayloadTooLargeError(f"{what} is {size} bytes; the limit is {self.config.max_metadata_bytes}")
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise InvalidParameterError(f"{what} is not valid JSON: {_short(text)}") from err
        if not isinstance(obj, dict):
            raise InvalidParameterError(f"{what} must be a JSON object, e.g. {{\"category\": \"shoes\"}}. "
                                        f"Got {_short(text)}.")
        return obj

    # -- reading ------------------------------------------------------------------------------------------------

    def search(self, data: bytes, *, k: int, box: Box | None, where: dict[str, Any] | None,
               prefix: str = "") -> dict[str, Any]:
        """Search with uploaded image bytes (or the region ``box`` of them); the stages are timed."""
        timings: dict[str, float] = {}
        enc = self.cat.encoder
        with self.metrics.stage("decode", timings):
            loaded = load_image(bytes(data), limits=self.limits, box=box,
                                draft=None if box is not None else enc.input_size)
        with self.metrics.stage("encode", timings):
            vectors = enc.run_prepared([enc.prepare(loaded.image)])
        with self.metrics.stage("search", timings):
            hits = self.batcher.search(vectors, k, where)
        query = {"width": loaded.width, "height": loaded.height, "format": loaded.format,
                 "box": str(box) if box is not None else None}
        return self._response(query, k, hits, timings, prefix)

    def similar(self, item_id: str, *, k: int, where: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
        timings: dict[str, float] = {}
        with self._write_lock, self.metrics.stage("search", timings):
            hits = self.cat.similar(item_id, k=k, where=where)
        return self._response({"item": item_id}, k, hits, timings, prefix)

    def _response(self, query: dict[str, Any], k: int, hits: list[SearchResult], timings: dict[str, float],
                  prefix: str) -> dict[str, Any]:
        results = [{"rank": rank, "id": h.id, "score": h.score, "distance": h.distance, "metadata": h.metadata,
                    **urls(h.id, None, prefix)} for rank, h in enumerate(hits, 1)]
        return {"query": query, "k": k, "encoder": self.cat.encoder.spec, "results": results,
                "timings_ms": timings}

    def get(self, item_id: str) -> Item:
        return self.cat.get(item_id)

    def page(self, *, offset: int, limit: int, where: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
        items = self.cat.list(offset=offset, limit=limit, where=where)
        return {"items": [item_out(i, prefix) for i in items], "total": self.cat.count(where), "offset": offset,
                "limit": limit}

    def image_file(self, item_id: str) -> tuple[str, str]:
        """(path, media type) of an item's original image."""
        item = self.cat.get(item_id)
        if item.path is None:
            raise ImageNotFoundError(item_id, "this item has no stored image (it was added as pixels)")
        try:
            with open(item.path, "rb") as f:
                head = f.read(16)
        except FileNotFoundError as err:
            raise ImageNotFoundError(item_id, "the item's image file is gone") from err
        return item.path, MEDIA_TYPES.get(sniff_format(head) or "", "application/octet-stream")

    def thumbnail(self, item_id: str, size: int) -> tuple[bytes, str, str]:
        """(bytes, media type, sha256) of a thumbnail at most ``size`` pixels on a side (never enlarged)."""
        item = self.cat.get(item_id)
        key = (item.sha256, size)
        with self._thumbs_lock:
            cached = self._thumbs.get(key)
            if cached is not None:
                self._thumbs.move_to_end(key)
                return cached[0], cached[1], item.sha256
        if item.path is None:
            raise ImageNotFoundError(item_id, "this item has no stored image (it was added as pixels)")
        with self.metrics.stage("thumbnail"):
            image = load_image(item.path, limits=self.limits, draft=(size, size)).image
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if max(image.size) <= 64:
                image.save(out, "PNG")
                media = "image/png"
            else:
                image.save(out, "JPEG", quality=85)
                media = "image/jpeg"
        data = out.getvalue()
        with self._thumbs_lock:
            self._thumbs[key] = (data, media)
            while len(self._thumbs) > self.config.thumbnail_cache:
                self._thumbs.popitem(last=False)
        return data, media, item.sha256

    def stats(self) -> dict[str, Any]:
        info = self.cat.info()
        enc = self.cat.encoder
        return {
            "items": info["items"], "encoder": enc.spec, "encoders": info["encoders"],
            "index": {"type": "exact flat (brute-force) in memory", "kind": enc.kind, "dim": enc.dim,
                      "vectors": next((e["vectors"] for e in info["encoders"] if e["spec"] == enc.spec), 0),
                      "bytes": int(info["items"] * enc.width * np.dtype(enc.dtype).itemsize)},
            "bytes_on_disk": info["bytes_on_disk"], "catalog": info["path"], "writable": self.config.writable,
            "limits": {"max_upload_bytes": self.config.max_upload_bytes, "max_pixels": self.config.max_pixels,
                       "max_metadata_bytes": self.config.max_metadata_bytes, "max_k": self.config.max_k},
            "uptime_s": round(time.time() - self.started, 3),
        }

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, data: bytes, *, item_id: str | None, metadata: dict[str, Any] | None,
            check_duplicates: bool = False, refuse: str | None = None) -> Item:
        """Add an image; with ``check_duplicates`` or ``refuse`` the item carries ``duplicates`` (a CheckedItem),
        and ``refuse`` raises DuplicateImageError (nothing written) for an exact (or near) duplicate."""
        if check_duplicates or refuse == "near":
            self.require_calibration()
        with self._write_lock, self.metrics.stage("write"):
            if not check_duplicates and refuse is None:
                return self.cat.add(bytes(data), id=item_id, metadata=metadata)
            with _dedup_errors():
                return self.cat.add(bytes(data), id=item_id, metadata=metadata, check_duplicates=check_duplicates,
                                    refuse=refuse)

    def update(self, item_id: str, *, data: bytes | None, metadata: dict[str, Any] | None) -> Item:
        with self._write_lock, self.metrics.stage("write"):
            return self.cat.update(item_id, image=None if data is None else bytes(data), metadata=metadata)

    def remove(self, item_id: str) -> None:
        with self._write_lock, self.metrics.stage("write"):
            self.cat.remove(item_id)


    # -- duplicates ---------------------------------------------------------------------------------------------

    @staticmethod
    def parse_refuse(value: object) -> str | None:
        if value is None or value == "":
            return None
        if value not in ("exact", "near"):
            raise InvalidParameterError(f"refuse must be 'exact' or 'near' (or absent). Got {_short(value)}.")
        return str(value)

    def calibration(self) -> dict[str, Any] | None:
        """The stored duplicate calibration's summary, or None."""
        with _dedup_errors():
            cal = self.cat.duplicate_calibration
        return None if cal is None else cal.summary()

    def require_calibration(self) -> None:
        with _dedup_errors():
            if self.cat.duplicate_calibration is None:
                raise CalibrationRequiredError(f"this catalogue has no near-duplicate calibration yet; "
                                               f"{CALIBRATE_HINT}")

    def find_duplicates(self, data: bytes, *, k: int, prefix: str = "") -> dict[str, Any]:
        """Verdicts on the ``k`` nearest items of an uploaded image that is not added."""
        timings: dict[str, float] = {}
        self.require_calibration()
        with self.metrics.stage("duplicates", timings), _dedup_errors():
            matches = self.cat.find_duplicates(bytes(data), k=k)
        return {"k": k, "duplicates": [match_out(m, prefix) for m in matches], "timings_ms": timings}

    def dedup(self, *, k: int) -> Any:
        """The duplicate groups of the whole catalogue (a DedupReport). Writes wait while it runs: the report is
        of one state of the catalogue."""
        self.require_calibration()
        with self._write_lock, self.metrics.stage("dedup"), _dedup_errors():
            return self.cat.dedup(k=k)

    def calibrate(self, *, target_precision: float, sample: int, seed: int) -> dict[str, Any]:
        """Fit and store the near-duplicate threshold; returns the calibration's summary."""
        for name, value in (("target_precision", target_precision), ("sample", sample), ("seed", seed)):
            low, high = CALIBRATE_BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise InvalidParameterError(f"{name} must be in [{low}, {high}]. Got {_short(value)}.")
        with self._write_lock, self.metrics.stage("calibrate"), _dedup_errors():
            cal = self.cat.calibrate_duplicates(target_precision=float(target_precision), sample=int(sample),
                                                seed=int(seed))
        return dict(cal.summary())


@contextlib.contextmanager
def _dedup_errors() -> Iterator[None]:
    """A missing or unusable calibration is 409 with the hint how to calibrate; any other plain CatalogError from
    duplicate detection is a conflict with the catalogue's state (409); other subclasses (unknown item, id taken,
    refused duplicate) keep their own status."""
    try:
        yield
    except CalibrationRequiredError as err:
        if CALIBRATE_HINT in str(err):  # already the service's own message
            raise
        raise CalibrationRequiredError(f"{err} ({CALIBRATE_HINT})") from err
    except CatalogError as err:
        if type(err) is not CatalogError:
            raise
        raise DuplicateDetectionError(str(err)) from err


def match_out(match: Any, prefix: str = "") -> dict[str, Any]:
    """A DuplicateMatch as JSON, with the matched item's links."""
    return {**match.to_dict(), **urls(match.id, None, prefix)}


def report_out(report: Any, k: int, prefix: str = "") -> dict[str, Any]:
    """A DedupReport as JSON, each group's items with their links."""
    out = dict(report.to_dict())
    shas = {item.id: item.sha256 for group in report.groups for item in group.items}
    for group in out["groups"]:
        group["items"] = [{**item, **urls(item["id"], shas.get(item["id"]), prefix)} for item in group["items"]]
    return {"k": k, **out}


def urls(item_id: str, sha256: str | None, prefix: str = "") -> dict[str, str]:
    """The links of an item. Ids are fully percent-encoded ('/' too), so no id forms a '..' path segment."""
    base = f"{prefix}/items/{quote(item_id, safe='')}"
    version = f"?v={sha256[:12]}" if sha256 else ""
    return {"image_url": f"{base}/image{version}", "thumbnail_url": f"{base}/thumbnail{version}",
            "similar_url": f"{base}/similar"}


def item_out(item: Item, prefix: str = "") -> dict[str, Any]:
    return {"id": item.id, "sha256": item.sha256, "width": item.width, "height": item.height, "added": item.added,
            "updated": item.updated, "metadata": item.metadata, **urls(item.id, item.sha256, prefix)}


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
