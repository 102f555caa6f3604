"""Where other packages plug into the catalogue without the catalogue importing them.

- **Per-item features**: a function of the decoded image whose bytes are stored with every item added from then
  on (:func:`register_feature`). The duplicate detector registers its thumbnails this way; a localiser or a
  local-descriptor extractor can do the same.
- **The localiser**: the crop stage of ``--crop auto`` (:func:`register_localiser`: a factory from a model file's
  path to an object with ``crop_box(image) -> Box | None``); :mod:`lookalike.localise` registers itself when
  imported. The catalogue calls it through :mod:`.crop`, at ingest (``prepare``) and in the query's decode step.
- **The duplicate detector**: the object behind ``Catalog.add(check_duplicates=...)``, ``find_duplicates``,
  ``calibrate_duplicates`` and ``dedup`` (:func:`register_duplicate_detector`); :mod:`lookalike.dedup` registers
  itself when imported, which ``import lookalike`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from ..errors import CatalogError, InvalidParameterError
from ..images import Box, ImageSource
from .types import DuplicateMatch

if TYPE_CHECKING:
    from ..dedup import Calibration, DedupReport
    from .catalog import Catalog

__all__ = ["DuplicateDetector", "FeatureFn", "Localiser", "detector_for", "localiser_for",
           "register_duplicate_detector", "register_feature", "register_localiser", "registered_features"]

FeatureFn = Callable[[Image.Image], bytes]
_FEATURES: dict[str, FeatureFn] = {}


def register_feature(name: str, fn: FeatureFn) -> None:
    """Compute ``fn(image)`` for every image added from now on and store it as the item's feature ``name``."""
    if not isinstance(name, str) or not name or not callable(fn):
        raise InvalidParameterError(f"register_feature needs a name and a function. Got {name!r}, {fn!r}.")
    _FEATURES[name] = fn


def registered_features() -> Mapping[str, FeatureFn]:
    return dict(_FEATURES)


class Localiser(Protocol):
    """What the crop stage asks of a localiser (implemented by :class:`lookalike.localise.Localiser`)."""

    def crop_box(self, image: Image.Image) -> Box | None:
        """The product's box in pixels of a decoded RGB image, or None when nothing looks like an object."""

    def mask_crop(self, image: Image.Image, box: Box) -> Image.Image:
        """``image`` cut to ``box`` with the background inside it removed (``crop="auto,mask"``)."""


_LOCALISER: list[Callable[[str], Localiser]] = []


def register_localiser(factory: Callable[[str], Localiser]) -> None:
    """``factory(model_path)`` opens a localiser model (raising EncoderError for a file that is not one)."""
    _LOCALISER[:] = [factory]


def localiser_for(model: str) -> Localiser:
    if not _LOCALISER:
        raise CatalogError("no localiser is registered (import lookalike.localise)")
    return _LOCALISER[0](model)


class DuplicateDetector(Protocol):
    """What the catalogue asks of duplicate detection (implemented by :mod:`lookalike.dedup`)."""

    def is_calibrated(self) -> bool: ...

    def require_calibration(self) -> object: ...

    def check(self, vector: np.ndarray, features: Mapping[str, bytes], sha256: str, source: ImageSource | None
              ) -> list[DuplicateMatch]:
        """Verdicts on the nearest items of one image (needs a calibration)."""

    def exact(self, vector: np.ndarray, sha256: str, source: ImageSource | None) -> list[DuplicateMatch]:
        """Items with the same content or pixels as one image (no calibration needed)."""

    def find(self, image: ImageSource, *, k: int, min_cosine: float) -> list[DuplicateMatch]:
        """Verdicts on the ``k`` nearest items of an image that is not added."""

    def calibrate(self, *, target_precision: float, sample: int, k: int, seed: int) -> Calibration: ...

    def calibration(self) -> Calibration | None: ...

    def report(self, *, k: int, approximate: bool | None) -> DedupReport: ...


_DETECTOR: list[Callable[[Catalog], DuplicateDetector]] = []


def register_duplicate_detector(factory: Callable[[Catalog], DuplicateDetector]) -> None:
    _DETECTOR[:] = [factory]


def detector_for(catalog: Catalog) -> DuplicateDetector:
    if not _DETECTOR:
        raise CatalogError("no duplicate detector is registered (import lookalike.dedup)")
    return _DETECTOR[0](catalog)
