"""One query pipeline for the library, the CLI and the service: decode → (region) → encode → retrieve → hydrate.

Decoding uses the same recipe as ingest (:meth:`QueryPipeline.decode`: the catalogue's decode hint, computed from
all of its encoders), so an image of the catalogue searched by itself gives the vector that was stored for it and
scores 1.0 whichever extra encoders the catalogue keeps. The stages are separate so that a caller can time them and
batch the retrieval of many queries (the service's :class:`~lookalike.service.core.SearchBatcher`)::

    pipe = catalog.pipeline
    query = pipe.decode("query.jpg", box=Box(10, 10, 200, 200))
    encoded = pipe.encode([query], encoder=None, rerank=100)     # EncodedQueries; .concat() joins batches
    hits = pipe.retrieve(encoded, k=10, where={"brand": "acme"})  # [[SearchResult, ...]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders import Encoder
from ..encoders.hashed import HashedEncoder
from ..errors import InvalidParameterError, ItemNotFoundError
from ..images import Box, ImageLimits, ImageSource, LoadedImage, load_image
from ..validation import check_int
from . import crop as crops
from .types import SearchResult

if TYPE_CHECKING:
    from ._engine import Engine

MAX_K = 10_000
# Candidates a search by learned codes re-ranks by exact cosine unless told otherwise (the catalogue setting
# "search.rerank", or rerank= per search; 0: the codes' own order). Chosen on a validation split (Fashion-MNIST
# train vectors, 50k items, 1,000 other train vectors as queries; benchmarks/refine_stages.py): the fewest of 100,
# 200, 300, 400, 800 for which ITQ-64 + re-ranking finds >= 95% of the exact top 10 (400: 0.967; 300: 0.947).
# benchmarks/catalog_scale.py measures it on other data (0.93 at 100k, 0.99 at 1M items).
DEFAULT_RERANK = 400
# With a sketch (learned with the codes of a wide float encoder: SketchEncoder), the codes' best
# max(SKETCH_POOL, 10 x depth) candidates are scored by the in-memory sketch and only the best SKETCHED_RERANK read and
# re-ranked exactly. Same validation split: 1,000 then 80 finds 0.995 of the exact top 10 (40: 0.989, 20: 0.947).
SKETCHED_RERANK, SKETCH_POOL = 80, 1000

__all__ = ["MAX_K", "DecodedQuery", "EncodedQueries", "QueryPipeline"]


@dataclass(frozen=True)
class DecodedQuery:
    """A query image decoded by the catalogue's recipe: ``loaded`` (the RGB image and its facts) and the
    region searched."""

    loaded: LoadedImage
    box: Box | None
    crop: str | None = None  # "auto" ("auto,mask") when ``box`` was predicted by the localiser (None then: no
    # object found)

    @property
    def info(self) -> dict[str, Any]:
        return {"width": self.loaded.width, "height": self.loaded.height, "format": self.loaded.format,
                "box": None if self.box is None else str(self.box), "crop": self.crop}


@dataclass(frozen=True)
class EncodedQueries:
    """Query vectors ready for retrieval: ``vectors`` in the searched encoder's space (float rows or packed codes)
    and, for a re-ranked search by learned codes, ``floats`` (the base encoder's float rows)."""

    encoder: str
    vectors: np.ndarray
    rerank: int | None = None
    floats: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def group(self) -> tuple[str, int | None]:
        """Queries of one group can be retrieved together."""
        return self.encoder, self.rerank

    @staticmethod
    def concat(parts: Sequence[EncodedQueries]) -> EncodedQueries:
        """One batch of several (of the same :attr:`group`)."""
        if not parts or len({p.group for p in parts}) != 1:
            raise InvalidParameterError("EncodedQueries.concat needs one or more batches of the same group")
        floats = None if parts[0].floats is None else np.concatenate([p.floats for p in parts if p.floats is not None])
        return EncodedQueries(parts[0].encoder, np.concatenate([p.vectors for p in parts]), parts[0].rerank, floats)

    def split(self, sizes: Sequence[int]) -> list[slice]:
        bounds = np.cumsum([0, *sizes]).tolist()
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def default_rerank(value: str | None, sketched: bool = False) -> int:
    """The depth a stored ``search.rerank`` setting names (None: the default, :data:`SKETCHED_RERANK` when the
    codes have a sketch; "0": no re-ranking)."""
    default = SKETCHED_RERANK if sketched else DEFAULT_RERANK
    if value is None:
        return default
    try:
        return check_int("search.rerank", int(value), 0, MAX_K)
    except ValueError:
        return default


def check_k(k: object, name: str = "k") -> int:
    return check_int(name, k, 1, MAX_K)


class QueryPipeline:
    """The stages of a search over one catalogue (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def encoder(self, spec: str | None = None) -> Encoder:
        """The encoder a search with ``encoder=spec`` uses (default: the catalogue's default)."""
        return self._engine.encoders.pick(spec)[1]

    def decode(self, image: ImageSource, *, box: Box | str | None = None, limits: ImageLimits | None = None,
               crop: str | None = None) -> DecodedQuery:
        """Decode a query as ingest decodes an item (the same draft hint), cropped to ``box`` if given, within
        ``limits`` (default: the catalogue's; the service passes its own upload limits). ``crop="auto"`` (the
        catalogue's localiser) or ``"auto:MODEL"``: cut to the product's predicted box (:mod:`.crop`; with
        ``",mask"``, its background removed), unless a ``box`` is given: a manual box wins."""
        region = Box.parse(box) if isinstance(box, str) else box
        spec = crops.parse_crop(crop)
        localiser = self.localiser(spec) if region is None and spec else None
        draft = None if region is not None else self._engine.encoders.draft
        chosen = self._engine.limits if limits is None else limits
        loaded = load_image(image, limits=chosen, box=region, draft=draft)
        if localiser is None:
            return DecodedQuery(loaded, region)
        mask = crops.masks(spec)
        cut, found = crops.crop_loaded(loaded, localiser, mask=mask)
        return DecodedQuery(cut, found, "auto,mask" if mask else "auto")

    def localiser(self, crop: object) -> crops.Localiser | None:
        """The localiser a search with ``crop`` uses (None: no crop); raises InvalidParameterError (a bad value, or
        ``auto`` on a catalogue without the setting ``crop.model``) or EncoderError (not a localiser model)."""
        auto = crop in ("auto", "auto" + crops.MASK_SUFFIX)
        return crops.resolve(crop, self._engine.store.meta(crops.CROP_SETTING) if auto else None)

    def rerank_for(self, encoder: str | None, rerank: object) -> int | None:
        """The re-ranking depth a search with ``encoder`` and ``rerank`` uses: ``None`` (the default) is the
        catalogue's depth (setting ``search.rerank``, else :data:`DEFAULT_RERANK`) for a search by learned codes
        whose float vectors are stored, and no re-ranking otherwise; ``0`` is none; ``N`` is N candidates (a
        search by learned codes only). Raises InvalidParameterError for anything else."""
        encoders = self._engine.encoders
        num, enc = encoders.pick(encoder)
        if rerank is None:
            base = encoders.base_of(num)
            if not isinstance(enc, HashedEncoder) or base is None:
                return None
            depth = default_rerank(self._engine.store.meta("search.rerank"), self._engine.sketch(base) is not None)
            return depth or None
        if isinstance(rerank, int) and not isinstance(rerank, bool) and rerank == 0:
            return None
        self.hashed(enc, rerank)
        assert isinstance(rerank, int)
        return rerank

    def encode(self, queries: Sequence[DecodedQuery], *, encoder: str | None = None,
               rerank: int | None = None) -> EncodedQueries:
        """Vectors of decoded queries for ``encoder``; when the search re-ranks (:meth:`rerank_for`) the float
        vectors of its base encoder too."""
        num, enc = self._engine.encoders.pick(encoder)
        rerank = self.rerank_for(encoder, rerank)
        images = [q.loaded.image for q in queries]
        if rerank is None:
            return EncodedQueries(enc.spec, enc.encode_pil(images))
        hashed = self.hashed(enc, rerank)
        floats = hashed.base.encode_pil(images)
        return EncodedQueries(enc.spec, hashed.codes_of(floats), rerank, floats)

    def vectors(self, vectors: np.ndarray, *, encoder: str | None = None) -> EncodedQueries:
        """Ready-made query vectors as a batch ((n, dim) float32, or (n, bits / 8) uint8 for binary codes)."""
        return EncodedQueries(self.encoder(encoder).spec, np.asarray(vectors))

    @staticmethod
    def hashed(enc: Encoder, depth: object) -> HashedEncoder:
        if not isinstance(enc, HashedEncoder):
            raise InvalidParameterError(
                f"rerank needs a search by learned codes (fit a hasher: lookalike index DIR --hash itq); "
                f"{enc.spec!r} is not one")
        check_k(depth, "rerank")
        return enc

    def retrieve(self, queries: EncodedQueries, *, k: int = 10, where: dict[str, Any] | None = None,
                 exclude: Sequence[str | None] = ()) -> list[list[SearchResult]]:
        """The ``k`` best items of each query (best first), among those matching ``where``; ``exclude[i]`` is an
        item id left out of query i's results (``similar``)."""
        k = check_k(k)
        extra = 1 if any(e is not None for e in exclude) else 0
        found = self._engine.search(queries, k + extra, where)
        hits = self._engine.hydrate(found, self.encoder(queries.encoder) if queries.rerank is None
                                    else self.hashed(self.encoder(queries.encoder), queries.rerank).base)
        out = []
        for i, row in enumerate(hits):
            skip = exclude[i] if i < len(exclude) else None
            out.append([h for h in row if h.id != skip][:k])
        return out

    def similar(self, item_id: str, *, k: int = 10, where: dict[str, Any] | None = None,
                encoder: str | None = None, rerank: int | None = None) -> list[SearchResult]:
        """The ``k`` items most similar to a catalogue item (itself excluded), searched with its stored vectors."""
        k = check_k(k)
        num, enc = self._engine.encoders.pick(encoder)
        rerank = self.rerank_for(encoder, rerank)
        key = self._engine.store.key_of(item_id)
        if key is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        query = self._engine.vector_of(num, key, item_id)
        if rerank is None:
            batch = self.vectors(query, encoder=enc.spec)
        else:
            base = self._engine.encoders.base_of(num)
            if base is None:
                raise InvalidParameterError(f"the float vectors under {enc.spec!r} are not stored: cannot re-rank")
            batch = EncodedQueries(enc.spec, query, rerank, self._engine.vector_of(base, key, item_id, stored=True))
        return self.retrieve(batch, k=k, where=where, exclude=[item_id])[0]

    def run(self, images: Sequence[ImageSource], *, k: int = 10, box: Box | str | None = None,
            where: dict[str, Any] | None = None, encoder: str | None = None, rerank: int | None = None,
            crop: str | None = None) -> list[list[SearchResult]]:
        """Every stage at once: what :meth:`lookalike.catalog.Catalog.search_many` does."""
        k = check_k(k)
        self.rerank_for(encoder, rerank)  # a bad rerank fails before any image is decoded
        if box is None:
            self.localiser(crop)  # and so does a crop without a model
        decoded = [self.decode(image, box=box, crop=crop) for image in images]
        return self.retrieve(self.encode(decoded, encoder=encoder, rerank=rerank), k=k, where=where)
