"""The catalogue: items, metadata and vectors in one directory, with exact search."""

from .catalog import DEFAULT_ENCODER, DEFAULT_PATH, Catalog
from .types import BatchReport, CheckedItem, Item, Refused, SearchResult

__all__ = ["DEFAULT_ENCODER", "DEFAULT_PATH", "BatchReport", "Catalog", "CheckedItem", "Item", "Refused",
           "SearchResult"]
