"""The catalogue's storage: one SQLite database per catalogue, behind a repository.

- :class:`Store`: opens (and migrates) the database, reads typed rows (:class:`~lookalike.catalog.Item`,
  :class:`EncoderRow`, :class:`HasherRow`), and hands out write transactions;
- :class:`Transaction`: every write statement (``with store.transaction() as tx: tx.insert_item(...)``);
- :class:`IndexJournal` (:mod:`.journal`): the changed keys an external index backend has not applied yet;
- :mod:`.schema`: the schema (version 5: vectors keyed by encoder, item and part, in a rowid table; per-item
  features; people's similarity judgements) and the migrations from versions 1 to 4;
- :mod:`.judgements`: the judgements' SQL (``Catalog.judgements``).
"""

from .journal import IndexJournal
from .schema import DB_NAME, SCHEMA_VERSION, THUMB_FEATURE
from .store import EncoderRow, HasherRow, Store
from .transaction import NewItem, Transaction
from .where import metadata_json, where_clause

__all__ = ["DB_NAME", "SCHEMA_VERSION", "THUMB_FEATURE", "EncoderRow", "HasherRow", "IndexJournal", "NewItem",
           "Store", "Transaction", "metadata_json", "where_clause"]
