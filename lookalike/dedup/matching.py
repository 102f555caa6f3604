"""Verdicts on one image against its nearest catalogue items, on the catalogue's public views only.

:class:`CatalogDetector` is what ``Catalog.add(check_duplicates=...)``, ``find_duplicates``,
``calibrate_duplicates`` and ``dedup`` call (registered in :mod:`lookalike.dedup`'s ``__init__``). It reads the
catalogue through its public API: the float encoder's :meth:`~lookalike.catalog.Catalog.vector_index`, items by
key, the ``dedup.thumb`` feature and the ``dedup_calibration`` setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..catalog.types import DuplicateMatch
from ..encoders import Encoder
from ..encoders.hashed import DerivedEncoder
from ..errors import CalibrationRequiredError, DuplicateDetectionError, ImageError, InvalidParameterError
from ..images import ImageSource, load_image
from .calibration import EXACT, NEAR, SIMILAR, Calibration
from .scoring import scored_pairs
from .signals import colour_bytes, colour_from_bytes, from_bytes, thumbnail_bytes

if TYPE_CHECKING:
    from ..catalog import Catalog

META_KEY = "dedup_calibration"
THUMB_FEATURE = "dedup.thumb"  # the per-item feature: grey 32x32 thumbnails, whole and border-trimmed
COLOUR_FEATURE = "dedup.colour"  # the per-item feature: the colour signature (hue histogram), the colour veto
_MADE = {THUMB_FEATURE: thumbnail_bytes, COLOUR_FEATURE: colour_bytes}
EXACT_COSINE = 0.9999  # above this, two images are compared pixel by pixel
_RANK = {EXACT: 0, NEAR: 1, SIMILAR: 2}


def float_encoder(catalog: Catalog) -> Encoder:
    for enc in catalog.encoders:
        if enc.kind == "float" and not isinstance(enc, DerivedEncoder):
            return enc
    raise DuplicateDetectionError(f"duplicate detection needs float vectors (e.g. efficientnet-lite0); catalogue "
                                  f"{catalog.path} has only binary codes")


def load_calibration(catalog: Catalog) -> Calibration | None:
    text = catalog.setting(META_KEY)
    return None if text is None else Calibration.from_json(text)


def require_calibration(catalog: Catalog) -> Calibration:
    cal = load_calibration(catalog)
    if cal is None:
        raise CalibrationRequiredError(f"catalogue {catalog.path} has no near-duplicate calibration yet; run "
                                       "'lookalike dedup --calibrate' (or Catalog.calibrate_duplicates()) first")
    spec = float_encoder(catalog).spec
    if cal.encoder != spec:
        raise CalibrationRequiredError(f"the duplicate calibration is for {cal.encoder}, not {spec}; calibrate again "
                                       "(lookalike dedup --calibrate)")
    return cal


def _features_of(catalog: Catalog, name: str, keys: list[int]) -> dict[int, bytes]:
    """Stored feature ``name`` of ``keys``; items from before it existed get every dedup feature they lack made
    from their file (one decode) and stored."""
    blobs = catalog.features(name, keys)
    missing = [k for k in keys if k not in blobs]
    if missing:
        made: dict[str, dict[int, bytes]] = {other: {} for other in _MADE}
        have = {other: set(catalog.features(other, missing)) for other in _MADE if other != name}
        for key, item in catalog.items_by_key(missing).items():
            if item.path is None:
                continue  # added as pixels: no file to make the features from
            try:
                image = load_image(item.path, limits=catalog.limits, draft=(64, 64)).image
            except (ImageError, InvalidParameterError, TypeError):
                continue  # the file is gone: no thumbnail evidence and no colour veto for this item
            for other, make in _MADE.items():
                if other == name or key not in have[other]:
                    made[other][key] = make(image)
        for other, values in made.items():
            if values and not catalog.read_only:
                catalog.put_features(other, values)
        blobs.update(made[name])
    return blobs


def thumbs_of(catalog: Catalog, keys: list[int]) -> dict[int, np.ndarray]:
    """Stored thumbnails of ``keys`` (made from the files of items that have none, and stored)."""
    return {k: from_bytes(b) for k, b in _features_of(catalog, THUMB_FEATURE, keys).items()}


def colours_of(catalog: Catalog, keys: list[int]) -> dict[int, np.ndarray]:
    """Stored colour signatures of ``keys`` (made from the files of items that have none, and stored)."""
    return {k: colour_from_bytes(b) for k, b in _features_of(catalog, COLOUR_FEATURE, keys).items()}


def same_pixels(a: ImageSource | None, b: str | None, catalog: Catalog) -> bool:
    if a is None or b is None:
        return False
    try:
        one, two = load_image(a, limits=catalog.limits).image, load_image(b, limits=catalog.limits).image
    except ImageError:
        return False
    return one.size == two.size and np.array_equal(np.asarray(one), np.asarray(two))


def match_vector(catalog: Catalog, vector: np.ndarray, thumb: np.ndarray | None, sha256: str,
                 source: ImageSource | None, *, k: int = 10, min_cosine: float = 0.8,
                 colour: np.ndarray | None = None) -> list[DuplicateMatch]:
    """Verdicts on the ``k`` nearest items of one image (exact and near duplicates, and similar items whose cosine
    is at least ``min_cosine``), best first."""
    cal = require_calibration(catalog)
    view = catalog.vector_index(float_encoder(catalog).spec)
    if not len(view):
        return []
    scores, hits = view.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
    keep = hits[0] >= 0
    keys, cos = hits[0][keep].tolist(), scores[0][keep].astype(np.float64)
    items = catalog.items_by_key(keys)
    extra = [i.key for i in catalog.items_with_sha256(sha256) if i.key not in keys]  # identical files beyond k
    items.update(catalog.items_by_key(extra))
    keys, cos = keys + extra, np.r_[cos, np.ones(len(extra))]
    thumbs, colours = thumbs_of(catalog, keys), colours_of(catalog, keys)
    if thumb is not None:
        thumbs[-1] = thumb
    if colour is not None:
        colours[-1] = colour
    pairs = np.array([[-1, key] for key in keys], dtype=np.int64).reshape(-1, 2)
    sig = scored_pairs(cal, thumbs, pairs, cos, colours=colours)
    geo = sig["geometric"]
    exact = np.array([key in items and (items[key].sha256 == sha256 or (c >= EXACT_COSINE and same_pixels(
        source, items[key].path, catalog))) for key, c in zip(keys, cos, strict=True)], dtype=bool)
    verdicts, evidence = cal.verdicts(sig, exact)
    out = []
    for key, verdict, ev, c, g in zip(keys, verdicts, evidence, cos, geo, strict=True):
        if key not in items or (verdict == SIMILAR and c < min_cosine):
            continue
        out.append(DuplicateMatch(items[key].id, items[key].path, verdict, float(ev), float(c),
                                  None if np.isnan(g) else float(g)))
    return sorted(out, key=lambda m: (_RANK[m.verdict], -m.evidence))


def exact_matches(catalog: Catalog, vector: np.ndarray, sha256: str, source: ImageSource | None
                  ) -> list[DuplicateMatch]:
    """Items with the same content or pixels as one image (needs no calibration)."""
    view = catalog.vector_index(float_encoder(catalog).spec)
    cos = {item.key: 1.0 for item in catalog.items_with_sha256(sha256)}
    if len(view):
        scores, hits = view.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), 3)
        for s, h in zip(scores[0].tolist(), hits[0].tolist(), strict=True):
            if h >= 0 and s >= EXACT_COSINE and h not in cos:
                cos[h] = s
    items = catalog.items_by_key(list(cos))
    return [DuplicateMatch(item.id, item.path, EXACT, 0.0, min(cos[key], 1.0), None) for key, item in items.items()
            if item.sha256 == sha256 or same_pixels(source, item.path, catalog)]
