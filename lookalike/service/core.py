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

import io
import json
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image

from ..catalog import Catalog, Item, SearchResult
from ..catalog.query import MAX_K, EncodedQueries
from ..errors import CalibrationRequiredError, ImageNotFoundError, PayloadTooLargeError
from ..images import Box, ImageLimits, load_image, sniff_format
from ..validation import Integer, check_choice, check_int, check_real, parameter_error, short_repr
from .config import ServiceConfig
from .metrics import Metrics
from .output import hit_out, item_out, match_out, urls
from .partial_state import PartialState

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
               "GIF": "image/gif", "TIFF": "image/tiff", "HEIC": "image/heic", "HEIF": "image/heif",
               "AVIF": "image/avif"}
THUMBNAIL_SIZES = (16, 512)
DEFAULT_THUMBNAIL = 160
CALIBRATE_BOUNDS = {"target_precision": (0.5, 0.999), "sample": (10, 2000), "seed": (0, 2**32 - 1)}
MAX_SPEC = 200  # longest encoder spec accepted
OBJECT = 'a JSON object, e.g. {"category": "shoes"}'


class _Pending:
    __slots__ = ("error", "k", "queries", "result", "where")

    def __init__(self, queries: EncodedQueries, k: int, where: dict[str, Any] | None) -> None:
        self.queries, self.k, self.where = queries, k, where
        self.result: list[list[SearchResult]] | None = None
        self.error: BaseException | None = None


class SearchBatcher:
    """Combine concurrent retrievals into batched scans (flat combining).

    Each caller queues its encoded queries, then takes the scan lock; whoever holds it retrieves for every query
    queued so far: one ``pipeline.retrieve`` per distinct (filter, :attr:`EncodedQueries.group`), at the largest k
    asked, each caller's lists cut to its own k. A caller whose queries were answered while it waited returns at
    once. With one caller at a time it is a plain retrieval. ``scans`` and ``scanned`` count the retrievals run and
    the queries they held.
    """

    def __init__(self, catalog: Catalog, max_batch: int = 64) -> None:
        self.cat = catalog
        self.max_batch = max_batch
        self.scans = 0
        self.scanned = 0
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._scan_lock = threading.Lock()

    def search(self, queries: EncodedQueries, k: int, where: dict[str, Any] | None) -> list[list[SearchResult]]:
        """The ``k`` best items of each query (best first) among those matching ``where``."""
        mine = _Pending(queries, k, where)
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
        groups: dict[tuple[str, tuple[str, int | None]], list[_Pending]] = {}
        for p in batch:
            key = (json.dumps(p.where, sort_keys=True, default=str), p.queries.group)
            groups.setdefault(key, []).append(p)
        for group in groups.values():
            try:
                joined = EncodedQueries.concat([p.queries for p in group])
                hits = self.cat.pipeline.retrieve(joined, k=max(p.k for p in group), where=group[0].where)
                self.scans += 1
                self.scanned += len(joined)
                for p, rows in zip(group, joined.split([len(p.queries) for p in group]), strict=True):
                    p.result = [found[: p.k] for found in hits[rows]]
            except BaseException as err:  # handed to each caller, who re-raises it
                for p in group:
                    p.error = err


class Service:
    """One opened catalogue behind the HTTP endpoints."""

    def __init__(self, config: ServiceConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self.limits = ImageLimits(max_pixels=config.max_pixels, max_bytes=config.max_upload_bytes)
        self.cat = catalog if catalog is not None else Catalog(config.catalog, create=False, limits=self.limits,
                                                               backend=config.backend)
        self.metrics = Metrics()
        self.metrics.items.set_function(lambda: float(self.cat.count()))
        self.started = time.time()
        self._write_lock = threading.RLock()
        self.batcher = SearchBatcher(self.cat)
        self._thumbs: OrderedDict[tuple[str, int], tuple[bytes, str]] = OrderedDict()
        self._thumbs_lock = threading.Lock()
        self.partial = PartialState(self.cat)  # the partial-image retriever, preloaded by warm_up

    def warm_up(self) -> None:
        """Open the encoder's model and load the index now, not on the first request; start loading the
        partial-search index in the background (:mod:`.partial_state`) when the catalogue has one."""
        pipe = self.cat.pipeline
        queries = pipe.encode([pipe.decode(Image.new("RGB", (32, 32), (128, 128, 128)))])
        if self.cat.count():
            pipe.retrieve(queries, k=1)
        self.partial.preload()

    def close(self) -> None:
        self.cat.close()

    @property
    def writable(self) -> bool:
        """Whether writes can succeed: an API key is set and the catalogue is not on read-only media."""
        return self.config.writable and not self.cat.read_only

    # -- parameters (text from a query string or a form field) --------------------------------------------------

    @staticmethod
    def parse_int(name: str, value: object, low: int, high: int, default: int | None) -> int | None:
        """An integer parameter in [low, high]; ``default`` when absent or empty."""
        if value is None or value == "":
            return default
        number: int | None = None
        if isinstance(value, str) and len(value) <= 24:
            try:
                number = int(value.strip(), 10)
            except ValueError:
                number = None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        if number is None:
            raise parameter_error(name, Integer(low, high).describe(), short_repr(value))
        return check_int(name, number, low, high)

    def parse_k(self, value: object, default: int = 10) -> int:
        k = self.parse_int("k", value, 1, self.config.max_k, default)
        assert k is not None
        return k

    def parse_rerank(self, value: object) -> int | None:
        """How many candidates by the codes a search re-ranks by exact cosine (None: no re-ranking)."""
        return self.parse_int("rerank", value, 0, MAX_K, None)

    @staticmethod
    def parse_encoder(value: object) -> str | None:
        """The spec of the encoder to search (None: the catalogue's default)."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > MAX_SPEC:
            raise parameter_error("encoder", f"an encoder spec of at most {MAX_SPEC} characters",
                                  short_repr(value))
        return value

    @staticmethod
    def parse_box(value: object) -> Box | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise parameter_error("box", "a string 'x,y,w,h'", short_repr(value))
        return Box.parse(value)

    @staticmethod
    def parse_crop(value: object) -> str | None:
        """``auto`` (the catalogue's localiser), ``auto,mask`` (its box's background removed) or none: no model file."""
        if value is None or value in ("", "none"):
            return None
        if value not in ("auto", "auto,mask"):
            raise parameter_error("crop", "'auto' (the catalogue's localiser), 'auto,mask' (and the background "
                                  "inside its box removed) or 'none'", short_repr(value))
        return str(value)

    def parse_object(self, text: object, what: str) -> dict[str, Any] | None:
        """A JSON object given as text (metadata, a filter); None for absent or empty."""
        if text is None or text == "":
            return None
        if not isinstance(text, str):
            raise parameter_error(what, "a JSON object in a text field", short_repr(text))
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > self.config.max_metadata_bytes:
            raise PayloadTooLargeError(f"The {what!r} parameter must be at most {self.config.max_metadata_bytes} "
                                       f"bytes of JSON. Got {size} bytes instead.")
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            reason = getattr(err, "msg", "nested too deeply")
            raise parameter_error(what, OBJECT, f"{short_repr(text)} (not JSON: {reason})") from err
        if not isinstance(obj, dict):
            raise parameter_error(what, OBJECT, short_repr(text))
        return obj

    @staticmethod
    def parse_refuse(value: object) -> str | None:
        if value is None or value == "":
            return None
        return str(check_choice("refuse", value, ("exact", "near")))

    # -- reading ------------------------------------------------------------------------------------------------

    def search(self, data: bytes, *, k: int, box: Box | None, where: dict[str, Any] | None,
               encoder: str | None = None, rerank: int | None = None, prefix: str = "", crop: str | None = None
               ) -> dict[str, Any]:
        """Search with uploaded image bytes (or the region ``box`` of them, or with ``crop="auto"`` the box the
        catalogue's localiser predicts) by the catalogue's query pipeline: decode (with the crop), encode and the
        (batched) retrieval are timed as stages."""
        timings: dict[str, float] = {}
        pipe = self.cat.pipeline
        enc = pipe.encoder(encoder)  # an unknown encoder or a rerank without codes fails before any decoding
        pipe.rerank_for(enc.spec, rerank)
        if box is None:
            pipe.localiser(crop)  # and so does crop=auto without a localiser
        with self.metrics.stage("decode", timings):
            query = pipe.decode(bytes(data), box=box, limits=self.limits, crop=crop)
        with self.metrics.stage("encode", timings):
            encoded = pipe.encode([query], encoder=enc.spec, rerank=rerank)
        with self.metrics.stage("search", timings):
            hits = self.batcher.search(encoded, k, where)[0]
        return self._response(query.info, k, enc.spec, hits, timings, prefix)

    def search_partial(self, data: bytes, *, k: int, box: Box | None, prefix: str = "", fallback: bool = False
                       ) -> dict[str, Any]:
        """Partial-image search (:class:`~lookalike.partial.PartialSearch`, one per service: its descriptor index
        is preloaded at start or built on the first call, and follows the store after); ``fallback``: the global
        search fills up to k."""
        timings: dict[str, float] = {}
        partial = self.partial.get()
        with self.metrics.stage("search", timings):
            answer = partial.search(bytes(data), k=k, box=box, limits=self.limits, fallback=fallback)
        self.partial.ready.set()
        results = [{"rank": rank, **{key: v for key, v in m.to_dict().items() if key != "path"},  # no paths out
                    **urls(m.id, None, prefix)} for rank, m in enumerate(answer.results, 1)]
        return {"query": {"box": None if box is None else str(box)}, "k": k, "keypoints": answer.query_keypoints,
                "reason": answer.reason, "results": results, "timings_ms": timings,
                "fallback": [hit_out(rank, h, prefix) for rank, h in enumerate(answer.fallback, len(results) + 1)]}

    def similar(self, item_id: str | list[str], *, k: int, where: dict[str, Any] | None, encoder: str | None = None,
                rerank: int | None = None, prefix: str = "", unlike: list[str] | None = None) -> dict[str, Any]:
        timings: dict[str, float] = {}  # the query is the item, or with ``unlike`` (POST /similar) both lists
        with self._write_lock, self.metrics.stage("search", timings):
            hits = self.cat.similar(item_id, unlike=unlike or [], k=k, where=where, encoder=encoder, rerank=rerank)
        query = {"item": item_id} if unlike is None else {"like": item_id, "unlike": unlike}
        return self._response(query, k, self.cat.pipeline.encoder(encoder).spec, hits, timings, prefix)

    @staticmethod
    def _response(query: dict[str, Any], k: int, encoder: str, hits: list[SearchResult],
                  timings: dict[str, float], prefix: str) -> dict[str, Any]:
        return {"query": query, "k": k, "encoder": encoder,
                "results": [hit_out(rank, h, prefix) for rank, h in enumerate(hits, 1)], "timings_ms": timings}

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
            "bytes_on_disk": info["bytes_on_disk"], "catalog": info["path"], "writable": self.writable,
            "limits": {"max_upload_bytes": self.config.max_upload_bytes, "max_pixels": self.config.max_pixels,
                       "max_metadata_bytes": self.config.max_metadata_bytes, "max_k": self.config.max_k},
            "uptime_s": round(time.time() - self.started, 3),
        }

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, data: bytes, *, item_id: str | None, metadata: dict[str, Any] | None,
            check_duplicates: bool | None = None, refuse: str | None = None) -> Item:
        """Add an image. ``check_duplicates``: None checks when the catalogue is calibrated and always reports exact
        copies, True insists on the full check (409 without a calibration), False skips it; a checked item carries
        ``duplicates`` (a CheckedItem). ``refuse`` raises DuplicateImageError (nothing written) for an exact (or
        near) duplicate."""
        if check_duplicates is True or refuse == "near":
            self.require_calibration()  # before the upload is decoded
        with self._write_lock, self.metrics.stage("write"):
            return self.cat.add(bytes(data), id=item_id, metadata=metadata, check_duplicates=check_duplicates,
                                refuse=refuse)  # type: ignore[arg-type]

    def update(self, item_id: str, *, data: bytes | None, metadata: dict[str, Any] | None) -> Item:
        with self._write_lock, self.metrics.stage("write"):
            return self.cat.update(item_id, image=None if data is None else bytes(data), metadata=metadata)

    def remove(self, item_id: str) -> None:
        with self._write_lock, self.metrics.stage("write"):
            self.cat.remove(item_id)

    def judge(self, reference: str, **lists: Any) -> dict[str, int]:  # similarity judgements (Judgements.judge)
        with self._write_lock, self.metrics.stage("write"):
            return self.cat.judgements.judge(reference, **lists)

    # -- duplicates (a CalibrationRequiredError gets the hint how to calibrate in the error handler) ------------

    def calibration(self) -> dict[str, Any] | None:
        """The stored duplicate calibration's summary, or None."""
        cal = self.cat.duplicate_calibration
        return None if cal is None else cal.summary()

    def require_calibration(self) -> None:
        if self.cat.duplicate_calibration is None:
            raise CalibrationRequiredError("this catalogue has no near-duplicate calibration yet")

    def find_duplicates(self, data: bytes, *, k: int, prefix: str = "") -> dict[str, Any]:
        """Verdicts on the ``k`` nearest items of an uploaded image that is not added."""
        timings: dict[str, float] = {}
        self.require_calibration()
        with self.metrics.stage("duplicates", timings):
            matches = self.cat.find_duplicates(bytes(data), k=k)
        return {"k": k, "duplicates": [match_out(m, prefix) for m in matches], "timings_ms": timings}

    def dedup(self, *, k: int) -> Any:
        """The duplicate groups of the whole catalogue (a DedupReport). Writes wait while it runs: the report is
        of one state of the catalogue."""
        self.require_calibration()
        with self._write_lock, self.metrics.stage("dedup"):
            return self.cat.dedup(k=k)

    def calibrate(self, *, target_precision: float, sample: int, seed: int) -> dict[str, Any]:
        """Fit and store the near-duplicate threshold; returns the calibration's summary."""
        precision = check_real("target_precision", target_precision, *CALIBRATE_BOUNDS["target_precision"])
        size = check_int("sample", sample, *map(int, CALIBRATE_BOUNDS["sample"]))
        start = check_int("seed", seed, *map(int, CALIBRATE_BOUNDS["seed"]))
        with self._write_lock, self.metrics.stage("calibrate"):
            cal = self.cat.calibrate_duplicates(target_precision=precision, sample=size, seed=start)
        return dict(cal.summary())
