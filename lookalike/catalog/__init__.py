"""The catalogue: items, metadata and vectors in one directory, with search.

- :class:`Catalog` (``catalog``): the façade;
- :mod:`.store`: the SQLite repository (typed rows, transactions, schema v5 and migrations);
- :mod:`.query`: the one query pipeline (decode → region → encode → retrieve → hydrate);
- :mod:`.extensions`: registered per-item features and the duplicate detector;
- :mod:`.types`: the records handed out.
"""

from .catalog import DEFAULT_ENCODER, DEFAULT_PATH, Catalog
from .extensions import register_duplicate_detector, register_feature
from .query import DecodedQuery, EncodedQueries, QueryPipeline
from .types import BatchReport, CheckedItem, DuplicateMatch, Item, Refuse, Refused, SearchResult, Verdict

__all__ = ["DEFAULT_ENCODER", "DEFAULT_PATH", "BatchReport", "Catalog", "CheckedItem", "DecodedQuery",
           "DuplicateMatch", "EncodedQueries", "Item", "QueryPipeline", "Refuse", "Refused", "SearchResult",
           "Verdict", "register_duplicate_detector", "register_feature"]
