"""Partial-image search (issue 15, part 3): keypoints and binary local descriptors per catalogue image, an index
over all of them, geometric verification, and results that say where they matched.

>>> from lookalike import Catalog
>>> from lookalike.partial import PartialSearch
>>> with Catalog("shop.lookalike") as cat:                      # doctest: +SKIP
...     PartialSearch.enable(cat)                                # describe every item (setting partial.descriptors)
...     answer = PartialSearch(cat).search("crop.jpg", k=5)
...     answer.results[0].box                                    # where the crop lies in the catalogue image

OpenCV (``opencv-contrib-python-headless``, the ``[patches]`` extra) is imported on first use only.
See docs/partial.md.
"""

from .features import DESCRIPTOR_KINDS, Extractor, Keypoints, LocalFeatures
from .index import DescriptorIndex
from .retriever import FEATURE, SETTING, PartialAnswer, PartialMatch, PartialSearch, SyncReport
from .verify import Verified, verify

__all__ = ["DESCRIPTOR_KINDS", "FEATURE", "SETTING", "DescriptorIndex", "Extractor", "Keypoints",
           "LocalFeatures",
           "PartialAnswer", "PartialMatch", "PartialSearch", "SyncReport", "Verified", "verify"]
