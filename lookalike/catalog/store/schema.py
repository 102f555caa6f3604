"""The catalogue database's schema (version 5) and the in-place migrations from older versions.

Version history:

1. items, encoders, hashers, vectors keyed by (encoder, item).
2. ``thumbs``: grey 32x32 thumbnails of the duplicate check, one row per item.
3. ``vectors`` keyed by (encoder, item, part), so an item can hold many vectors of one encoder (part 0 is the
   whole image; parts 1.. are for regions, crops or local descriptors); ``thumbs`` became ``features`` (name,
   item, value): per-item blobs that registered feature extractors compute at ingest (the duplicate check's
   thumbnail is the feature ``dedup.thumb``).
4. ``vectors`` is a rowid table with a unique (encoder, key, part) index instead of a WITHOUT ROWID table. In a
   WITHOUT ROWID table a row lives in an index b-tree, whose leaf keeps at most ~1 KB of a 4 KB page: a 5 KB
   vector (1280 float32) was a chain of overflow pages, and reading 400 candidates' vectors for a re-rank took
   18.8 ms against 3.3 ms in the rowid table (300k rows, ``/tmp`` script, the same machine; issue 12). Same
   columns, same statements.
5. ``judgements``: people's similarity judgements (issue 14): item ``item`` is (1) or is not (0) similar to the
   reference item ``reference``. Each reference's similar x not-similar items are its triplets (reference,
   positive, negative) for ``lookalike train triplet --from-catalog``. Both keys cascade: a removed item takes its
   judgements with it.
"""

from __future__ import annotations

SCHEMA_VERSION = 5
DB_NAME = "catalog.sqlite"
THUMB_FEATURE = "dedup.thumb"  # the v2 thumbs table migrates into this feature

_ITEMS = """
CREATE TABLE items (
    key      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    path     TEXT,
    sha256   TEXT NOT NULL,
    width    INTEGER NOT NULL,
    height   INTEGER NOT NULL,
    added    REAL NOT NULL,
    updated  REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
)"""

_VECTORS_V3 = """
CREATE TABLE vectors (
    encoder INTEGER NOT NULL REFERENCES encoders(num),
    key     INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    part    INTEGER NOT NULL DEFAULT 0,
    vec     BLOB NOT NULL,
    PRIMARY KEY (encoder, key, part)
) WITHOUT ROWID"""

_VECTORS_V4 = """
CREATE TABLE vectors (
    id      INTEGER PRIMARY KEY,
    encoder INTEGER NOT NULL REFERENCES encoders(num),
    key     INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    part    INTEGER NOT NULL DEFAULT 0,
    vec     BLOB NOT NULL,
    UNIQUE (encoder, key, part)
)"""

_FEATURES = """
CREATE TABLE features (
    name  TEXT NOT NULL,
    key   INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    value BLOB NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID"""

_JUDGEMENTS = [
    """CREATE TABLE judgements (
    reference INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    item      INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    similar   INTEGER NOT NULL CHECK (similar IN (0, 1)),
    added     REAL NOT NULL,
    PRIMARY KEY (reference, item),
    CHECK (reference != item)
) WITHOUT ROWID""",
    "CREATE INDEX judgements_item ON judgements(item)",
]

SCHEMA: list[str] = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    _ITEMS,
    "CREATE INDEX items_path ON items(path)",
    "CREATE INDEX items_sha256 ON items(sha256)",
    "CREATE TABLE encoders (num INTEGER PRIMARY KEY, spec TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, "
    "dim INTEGER NOT NULL)",
    "CREATE TABLE hashers (num INTEGER PRIMARY KEY REFERENCES encoders(num), source INTEGER NOT NULL REFERENCES "
    "encoders(num), name TEXT NOT NULL, state BLOB NOT NULL, fitted REAL NOT NULL)",
    _VECTORS_V4,
    "CREATE INDEX vectors_key ON vectors(key)",
    _FEATURES,
    *_JUDGEMENTS,
]

# from version -> the statements that make it the next one (each step runs in one transaction)
MIGRATIONS: dict[int, list[str]] = {
    1: ["CREATE TABLE IF NOT EXISTS thumbs (key INTEGER PRIMARY KEY REFERENCES items(key) ON DELETE CASCADE, "
        "thumb BLOB NOT NULL)"],
    2: [
        _VECTORS_V3.replace("CREATE TABLE vectors", "CREATE TABLE vectors_v3"),
        "INSERT INTO vectors_v3 (encoder, key, part, vec) SELECT encoder, key, 0, vec FROM vectors",
        "DROP TABLE vectors",
        "ALTER TABLE vectors_v3 RENAME TO vectors",
        "CREATE INDEX vectors_key ON vectors(key)",
        _FEATURES,
        f"INSERT INTO features (name, key, value) SELECT '{THUMB_FEATURE}', key, thumb FROM thumbs",
        "DROP TABLE thumbs",
    ],
    3: [  # the index journal's triggers (if attached) go with the old table; the backend re-creates them on open
        _VECTORS_V4.replace("CREATE TABLE vectors", "CREATE TABLE vectors_v4"),
        "INSERT INTO vectors_v4 (encoder, key, part, vec) SELECT encoder, key, part, vec FROM vectors "
        "ORDER BY encoder, key, part",
        "DROP TABLE vectors",
        "ALTER TABLE vectors_v4 RENAME TO vectors",
        "CREATE INDEX vectors_key ON vectors(key)",
    ],
    4: list(_JUDGEMENTS),
}
