"""lookalike: visual similarity search for image catalogues, fully offline.

>>> from lookalike import Catalog
>>> with Catalog("shop.lookalike") as cat:          # doctest: +SKIP
...     cat.index_folder("photos/")
...     hits = cat.search("query.jpg", k=10)
"""

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
