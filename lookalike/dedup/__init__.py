"""Near-duplicate detection: edited copies of catalogue items (double listings), not merely similar items.

- :mod:`.edits`: the edits a re-listed photo goes through (JPEG, resize, crop, pad, flip, rotate, brightness, text);
- :mod:`.signals`: the geometric check on thumbnails (crop / pad / mirror aware NCC);
- :mod:`.calibration`: verdicts ``exact`` / ``near-duplicate`` / ``similar`` and the threshold fitted on the
  user's own catalogue for a target precision; :mod:`.calibrate` fits it on a catalogue;
- :mod:`.matching`: verdicts on one image; :mod:`.graph`: the groups of a whole catalogue (kNN graph → verdicts
  → connected components); :mod:`.groups`: the graph helpers;
- :mod:`.detector`: :class:`CatalogDetector`, the catalogue's duplicate detector.

Importing this package registers the detector and the ``dedup.thumb`` per-item feature with the catalogue
(:mod:`lookalike.catalog.extensions`); ``import lookalike`` does. Use it through the catalogue:
``Catalog.calibrate_duplicates()``, ``Catalog.dedup()``, ``Catalog.find_duplicates(image)``,
``Catalog.add(image, refuse="near")`` (a calibrated catalogue checks every add by default).
"""

from ..catalog.extensions import register_duplicate_detector, register_feature
from .calibration import EXACT, NEAR, SIMILAR, Calibration
from .detector import CatalogDetector
from .matching import COLOUR_FEATURE, THUMB_FEATURE
from .report import DedupReport, DuplicateGroup, DuplicateMatch, DuplicatePair
from .signals import colour_bytes, thumbnail_bytes

register_feature(THUMB_FEATURE, thumbnail_bytes)
register_feature(COLOUR_FEATURE, colour_bytes)
register_duplicate_detector(CatalogDetector)

__all__ = ["EXACT", "NEAR", "SIMILAR", "Calibration", "CatalogDetector", "DedupReport", "DuplicateGroup",
           "DuplicateMatch", "DuplicatePair"]
