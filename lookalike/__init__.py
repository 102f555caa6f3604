"""lookalike: visual similarity search for image catalogues, fully offline.

>>> from lookalike import Catalog
>>> with Catalog("shop.lookalike") as cat:          # doctest: +SKIP
...     cat.index_folder("photos/")
...     hits = cat.search("query.jpg", k=10)
"""

from . import bingan as _bingan  # noqa: F401  (registers the bingan:PATH encoder)
from . import dedup as _dedup  # noqa: F401  (registers the duplicate detector and its per-item thumbnails)
from . import localise as _localise  # noqa: F401  (registers the localiser of --crop auto)
from . import triplet as _triplet  # noqa: F401  (registers the triplet:PATH encoder)
from .catalog import BatchReport, Catalog, Item, SearchResult
from .encoders import Encoder, available_encoders, get_encoder
from .errors import (
    CatalogError,
    ImageError,
    InvalidParameterError,
    ItemNotFoundError,
    LookalikeError,
)
from .images import Box, ImageLimits, load_image

__version__ = "0.1.0"

__all__ = [
    "BatchReport",
    "Box",
    "Catalog",
    "CatalogError",
    "Encoder",
    "ImageError",
    "ImageLimits",
    "InvalidParameterError",
    "Item",
    "ItemNotFoundError",
    "LookalikeError",
    "SearchResult",
    "available_encoders",
    "get_encoder",
    "load_image",
]
