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

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders import Encoder
from ..encoders.hashed import HashedEncoder
from ..errors import InvalidParameterError, ItemNotFoundError
from ..images import Box, ImageLimits, ImageSource, LoadedImage, load_image
from ..validation import check_int, check_real, parameter_error, short_repr
from . import crop as crops
from ._checks import check_id
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
# "More like these, less like those" (similar with several ids or unlike=): at most MAX_EXAMPLES ids in all, and
# Rocchio's query, the mean of the liked items' unit vectors minus UNLIKE_WEIGHT times the mean of the unliked
# ones' (re-normalised). UNLIKE_WEIGHT chosen on a validation split (benchmarks/examples.py: Fashion-MNIST's
# efficientnet-lite0 train vectors, 50k as the catalogue, 1,000 of the other 10k as references; up to 3 liked and 3
# unliked marked in each top 20): the best mAP@1000 of 0, 0.25, 0.5, 0.75, 1.0 (0.5: 0.825; 0.75: 0.824; 0: 0.784;
# 1.0: 0.723, below the reference alone, 0.750). On the test split: 0.836 (liked only 0.799, the reference 0.762).
UNLIKE_WEIGHT = 0.5
MAX_EXAMPLES = 100

__all__ = ["MAX_EXAMPLES", "MAX_K", "UNLIKE_WEIGHT", "DecodedQuery", "EncodedQueries", "QueryPipeline", "rocchio"]


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


def id_list(ids: Sequence[str], most: int = 10) -> str:
    """"item 'a'" or "items 'a', 'b'" (the first ``most`` of them, each cut short), for a message."""
    shown = ", ".join(short_repr(i) for i in ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")
    return f"item{'' if len(ids) == 1 else 's'} {shown}"


def _ids(name: str, value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence | set | frozenset) or isinstance(value, bytes | bytearray):
        raise parameter_error(name, "an item id or a list of item ids", short_repr(value))
    if len(value) > MAX_EXAMPLES:  # before looking at each (a hostile list can be long)
        raise parameter_error(name, f"at most {MAX_EXAMPLES} item ids", f"{len(value)} ids")
    return [check_id(i) for i in value]


def check_examples(like: object, unlike: object = ()) -> tuple[list[str], list[str]]:
    """The liked and unliked ids of a "more like these, less like those" search, checked: at least one liked, at
    most :data:`MAX_EXAMPLES` in all, none given twice, none both liked and unliked (InvalidParameterError)."""
    liked, unliked = _ids("like", like), _ids("unlike", unlike)
    if not liked:
        raise InvalidParameterError("A search from examples needs at least one liked item id ('more like these'). "
                                    "Got none.")
    if len(liked) + len(unliked) > MAX_EXAMPLES:
        raise InvalidParameterError(f"A search from examples takes at most {MAX_EXAMPLES} item ids in all (liked "
                                    f"and unliked). Got {len(liked)} + {len(unliked)} = {len(liked) + len(unliked)}.")
    for name, ids in (("like", liked), ("unlike", unliked)):
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            raise InvalidParameterError(f"The {name!r} ids must be distinct: {id_list(twice)} given more than once.")
    both = sorted(set(liked) & set(unliked))
    if both:
        raise InvalidParameterError(f"An item cannot be both liked and unliked: {id_list(both)}.")
    return liked, unliked


def rocchio(like: np.ndarray, unlike: np.ndarray, beta: float, *, binary: bool = False) -> np.ndarray:
    """Rocchio's query of examples, (1, width): the mean of the ``like`` rows minus ``beta`` times the mean of the
    ``unlike`` rows (none: 0). Float rows are made unit first and the query re-normalised, so that its cosine with
    a unit vector x is proportional to mean cos(x, liked) - beta mean cos(x, unliked). ``binary``: rows are packed
    codes, taken as ±1 bits, and the query's sign is packed again (a tie gives bit 1). Raises
    InvalidParameterError when the examples cancel out (float rows only)."""
    if binary:
        signs = [np.unpackbits(np.asarray(rows, dtype=np.uint8), axis=1).astype(np.float64) * 2 - 1
                 for rows in (like, unlike)]
        query = signs[0].mean(axis=0) - (beta * signs[1].mean(axis=0) if len(unlike) else 0.0)
        return np.packbits(query >= 0)[None, :]
    units = []
    for rows in (like, unlike):
        rows = np.asarray(rows, dtype=np.float64)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        units.append(rows / np.where(norms > 0, norms, 1.0))
    query = units[0].mean(axis=0) - (beta * units[1].mean(axis=0) if len(unlike) else 0.0)
    norm = float(np.linalg.norm(query))
    if not norm > 1e-9:
        raise InvalidParameterError("The liked and unliked examples cancel out (their vectors are the same): there is "
                                    "nothing left to search for.")
    return (query / norm).astype(np.float32)[None, :]


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
                 exclude: Sequence[str | Collection[str] | None] = ()) -> list[list[SearchResult]]:
        """The ``k`` best items of each query (best first), among those matching ``where``; ``exclude[i]`` is an
        item id, or a set of them, left out of query i's results (``similar``: the examples)."""
        k = check_k(k)
        skips = [frozenset() if e is None else frozenset([e]) if isinstance(e, str) else frozenset(e) for e in exclude]
        found = self._engine.search(queries, k + max(map(len, skips), default=0), where)
        hits = self._engine.hydrate(found, self.encoder(queries.encoder) if queries.rerank is None
                                    else self.hashed(self.encoder(queries.encoder), queries.rerank).base)
        out = []
        for i, row in enumerate(hits):
            skip = skips[i] if i < len(skips) else frozenset()
            out.append([h for h in row if h.id not in skip][:k])
        return out

    def similar(self, item_id: str | Sequence[str], *, unlike: Sequence[str] = (), k: int = 10,
                where: dict[str, Any] | None = None, encoder: str | None = None, rerank: int | None = None,
                beta: float | None = None) -> list[SearchResult]:
        """The ``k`` items most similar to catalogue items, the examples excluded, searched with their stored vectors.

        One id: its own vector. Several ids, or ``unlike`` ("more like these, less like those"): :func:`rocchio`'s
        query with weight ``beta`` (default :data:`UNLIKE_WEIGHT`), of the stored vectors of the searched encoder;
        for a search by learned codes of its stored base float vectors, then hashed (``codes_of``); for binary
        codes without stored floats, of their ±1 bits. Raises InvalidParameterError (:func:`check_examples`, a bad
        ``beta``) and ItemNotFoundError naming every unknown id."""
        liked, unliked = check_examples(item_id, unlike)
        k = check_k(k)
        weight = UNLIKE_WEIGHT if beta is None else check_real("beta", beta, 0.0, 100.0)
        num, enc = self._engine.encoders.pick(encoder)
        rerank = self.rerank_for(encoder, rerank)
        ids = liked + unliked
        keys = [self._engine.store.key_of(i) for i in ids]
        unknown = [i for i, key in zip(ids, keys, strict=True) if key is None]
        if unknown:
            raise ItemNotFoundError(f"no {id_list(unknown)} in the catalogue" if len(ids) > 1
                                    else f"no item with id {ids[0]!r}")
        found = [key for key in keys if key is not None]
        base = self._engine.encoders.base_of(num)
        if rerank is not None and base is None:
            raise InvalidParameterError(f"the float vectors under {enc.spec!r} are not stored: cannot re-rank")
        if len(ids) == 1:  # today's "more like this": the stored vectors as they are
            query = self._engine.vectors_of(num, found, ids)
            floats = None if base is None or rerank is None else self._engine.vectors_of(base, found, ids, stored=True)
        elif isinstance(enc, HashedEncoder) and base is not None:  # learned codes: the query of the float vectors
            rows = self._engine.vectors_of(base, found, ids, stored=True)
            floats = rocchio(rows[: len(liked)], rows[len(liked) :], weight)
            query = enc.codes_of(floats)
        else:
            rows = self._engine.vectors_of(num, found, ids)
            query, floats = rocchio(rows[: len(liked)], rows[len(liked) :], weight, binary=enc.kind == "binary"), None
        batch = EncodedQueries(enc.spec, query) if rerank is None else EncodedQueries(enc.spec, query, rerank, floats)
        return self.retrieve(batch, k=k, where=where, exclude=[frozenset(ids)])[0]

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
