"""Near-duplicate detection: edited copies of catalogue items (double listings), not merely similar items.

- :mod:`.edits`: the edits a re-listed photo goes through (JPEG, resize, crop, pad, flip, rotate, brightness, text);
- :mod:`.signals`: the geometric check on thumbnails (crop / pad / mirror aware NCC);
- :mod:`.calibration`: verdicts ``exact`` / ``near-duplicate`` / ``similar`` and the threshold fitted on the
  user's own catalogue for a target precision;
- :mod:`.groups`: candidate pairs from the kNN graph and duplicate groups as its connected components.

Use it through the catalogue: ``Catalog.calibrate_duplicates()``, ``Catalog.dedup()``,
``Catalog.find_duplicates(image)``, ``Catalog.add(image, check_duplicates=True, refuse="near")``.
"""

from .calibration import EXACT, NEAR, SIMILAR, Calibration
from .report import DedupReport, DuplicateGroup, DuplicateMatch

__all__ = ["EXACT", "NEAR", "SIMILAR", "Calibration", "DedupReport", "DuplicateGroup", "DuplicateMatch"]
