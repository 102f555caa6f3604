"""The write side of the store: one object per write transaction, holding every statement a write needs.

``with store.transaction() as tx:`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``), commits when the
block ends and rolls back when it raises; nothing else writes to the database.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import DuplicateItemError
from ._sql import in_chunks, marks


@dataclass(frozen=True)
class NewItem:
    """The facts of an image about to become an item (``path``: the file, or the catalogue's own copy)."""

    path: str | None
    sha256: str
    width: int
    height: int


class Transaction:
    """The statements of one write transaction (see the module docstring). Keys are the items' int64 keys."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement of the store package's own (the index journal's DDL and bookkeeping)."""
        self._db.execute(sql, params)

    # -- items ----------------------------------------------------------------------------------------------

    def id_taken(self, item_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is not None

    def file_of_id(self, item_id: str) -> tuple[str | None, str] | None:
        """(path, sha256) of the item with this id, or None when the id is free."""
        row = self._db.execute("SELECT path, sha256 FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def free_id(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3`` ... whichever is free first."""
        candidate, n = base, 1
        while self.id_taken(candidate):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def insert_item(self, item_id: str, image: NewItem, metadata_json: str) -> int:
        """A new item; returns its key. Raises DuplicateItemError when the id is taken."""
        if self.id_taken(item_id):
            raise DuplicateItemError(f"an item with id {item_id!r} already exists")
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO items (id, path, sha256, width, height, added, updated, metadata) VALUES (?,?,?,?,?,?,?,?)",
            (item_id, image.path, image.sha256, image.width, image.height, now, now, metadata_json))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def replace_image(self, item_id: str, image: NewItem) -> int:
        """Point an existing item at a new image; returns its key."""
        self._db.execute("UPDATE items SET path = ?, sha256 = ?, width = ?, height = ?, updated = ? WHERE id = ?",
                         (image.path, image.sha256, image.width, image.height, time.time(), item_id))
        return int(self._db.execute("SELECT key FROM items WHERE id = ?", (item_id,)).fetchone()[0])

    def set_metadata(self, item_id: str, metadata_json: str) -> None:
        self._db.execute("UPDATE items SET metadata = ?, updated = ? WHERE id = ?",
                         (metadata_json, time.time(), item_id))

    def delete_items(self, item_ids: Iterable[str]) -> list[tuple[str, int, str | None]]:
        """Delete the items that exist (their vectors and features go with them); returns (id, key, path) of each."""
        removed = []
        for item_id in item_ids:
            row = self._db.execute("SELECT key, path FROM items WHERE id = ?", (item_id,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM items WHERE key = ?", (row[0],))
                removed.append((item_id, int(row[0]), row[1]))
        return removed

    # -- vectors and features -------------------------------------------------------------------------------

    def put_vectors(self, encoder: int, keys: Sequence[int], vectors: np.ndarray, *, part: int = 0) -> None:
        """Store row i of ``vectors`` as part ``part`` of item ``keys[i]`` for ``encoder`` (replacing it)."""
        self._db.executemany("INSERT OR REPLACE INTO vectors (encoder, key, part, vec) VALUES (?, ?, ?, ?)",
                             [(encoder, int(key), part, vectors[i].tobytes()) for i, key in enumerate(keys)])

    def delete_vectors(self, encoder: int) -> None:
        self._db.execute("DELETE FROM vectors WHERE encoder = ?", (encoder,))

    def put_features(self, name: str, values: Mapping[int, bytes]) -> None:
        """Store one named feature per item key (replacing it); keys of items that are gone are skipped."""
        self._db.executemany(
            "INSERT OR REPLACE INTO features (name, key, value) SELECT ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM items WHERE key = ?)", [(name, int(k), v, int(k)) for k, v in values.items()])

    def read_vectors(self, encoder: int, part: int = 0) -> tuple[np.ndarray, list[bytes]]:
        """(keys, blobs) of one encoder inside this transaction (a consistent snapshot for fitting)."""
        rows = self._db.execute("SELECT key, vec FROM vectors WHERE encoder = ? AND part = ? ORDER BY key",
                                (encoder, part)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def vector_keys(self, encoder: int, part: int = 0) -> np.ndarray:
        rows = self._db.execute("SELECT key FROM vectors WHERE encoder = ? AND part = ? ORDER BY key",
                                (encoder, part)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vectors_of(self, encoder: int, keys: Sequence[int], part: int = 0) -> tuple[np.ndarray, list[bytes]]:
        """(keys, blobs) of the given keys that hold a vector, ascending."""
        found: list[tuple[int, bytes]] = []
        for chunk in in_chunks(sorted(int(k) for k in keys)):
            found += self._db.execute(f"SELECT key, vec FROM vectors WHERE encoder = ? AND part = ? AND key IN "
                                      f"({marks(chunk)}) ORDER BY key", (encoder, part, *chunk)).fetchall()
        return np.array([r[0] for r in found], dtype=np.int64), [r[1] for r in found]

    def vectors_after(self, encoder: int, after: int, limit: int, part: int = 0) -> tuple[np.ndarray, list[bytes]]:
        """(keys, blobs) of the first ``limit`` vectors with a key above ``after``: a page of a scan that writes
        as it goes (each page is a statement of its own, so no cursor stays open across the writes)."""
        rows = self._db.execute("SELECT key, vec FROM vectors WHERE encoder = ? AND part = ? AND key > ? ORDER BY "
                                "key LIMIT ?", (encoder, part, after, limit)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    # -- encoders, hashers, settings ------------------------------------------------------------------------

    def ensure_encoder(self, spec: str, kind: str, dim: int) -> int:
        """The number of the encoder ``spec``, registered now if new."""
        found = self._db.execute("SELECT num FROM encoders WHERE spec = ?", (spec,)).fetchone()
        if found:
            return int(found[0])
        cur = self._db.execute("INSERT INTO encoders (spec, kind, dim) VALUES (?, ?, ?)", (spec, kind, dim))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def put_hasher(self, num: int, source: int, name: str, state: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO hashers (num, source, name, state, fitted) VALUES (?, ?, ?, ?, ?)",
                         (num, source, name, state, time.time()))

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
