"""The catalogue's duplicate detector (registered by :mod:`lookalike.dedup`): what ``Catalog.add(check_duplicates=
...)``, ``find_duplicates``, ``calibrate_duplicates`` and ``dedup`` call. It reads the catalogue through its public
API only: the float encoder's :meth:`~lookalike.catalog.Catalog.vector_index`, items by key, the ``dedup.thumb``
feature and the ``dedup_calibration`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..catalog.types import DuplicateMatch
from ..images import ImageSource
from .calibrate import calibrate
from .calibration import Calibration
from .graph import dedup
from .matching import (
    COLOUR_FEATURE,
    META_KEY,
    THUMB_FEATURE,
    exact_matches,
    float_encoder,
    load_calibration,
    match_vector,
    require_calibration,
)
from .report import DedupReport
from .signals import colour_from_bytes, colour_signature, from_bytes, thumbnail

if TYPE_CHECKING:
    from ..catalog import Catalog


class CatalogDetector:
    """:class:`lookalike.catalog.extensions.DuplicateDetector` over one catalogue."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def is_calibrated(self) -> bool:
        """Whether a calibration is stored (asked on every add: no parsing of it here)."""
        return self.catalog.setting(META_KEY) is not None

    def require_calibration(self) -> Calibration:
        return require_calibration(self.catalog)

    def calibration(self) -> Calibration | None:
        return load_calibration(self.catalog)

    def check(self, vector: np.ndarray, features: Mapping[str, bytes], sha256: str, source: ImageSource | None
              ) -> list[DuplicateMatch]:
        thumb, colour = features.get(THUMB_FEATURE), features.get(COLOUR_FEATURE)
        return match_vector(self.catalog, vector, None if thumb is None else from_bytes(thumb), sha256, source,
                            colour=None if colour is None else colour_from_bytes(colour))

    def exact(self, vector: np.ndarray, sha256: str, source: ImageSource | None) -> list[DuplicateMatch]:
        return exact_matches(self.catalog, vector, sha256, source)

    def find(self, image: ImageSource, *, k: int, min_cosine: float) -> list[DuplicateMatch]:
        """:func:`match_vector` for an image that is not (yet) in the catalogue, decoded as the catalogue decodes
        its own images (the query pipeline's recipe)."""
        enc = float_encoder(self.catalog)
        query = self.catalog.pipeline.decode(image)
        vector = self.catalog.pipeline.encode([query], encoder=enc.spec).vectors
        return match_vector(self.catalog, vector, thumbnail(query.loaded.image), query.loaded.sha256, image, k=k,
                            min_cosine=min_cosine, colour=colour_signature(query.loaded.image))

    def calibrate(self, *, target_precision: float, sample: int, k: int, seed: int) -> Calibration:
        return calibrate(self.catalog, target_precision=target_precision, sample=sample, k=k, seed=seed)

    def report(self, *, k: int, approximate: bool | None) -> DedupReport:
        return dedup(self.catalog, k=k, approximate=approximate)
