"""The SQLite file behind a catalogue: schema, transactions and the SQL the catalogue needs.

Items and their vectors live in one database, so one transaction commits an item together with every vector of it:
a process killed mid-batch leaves the last committed state, never an item without vectors. WAL mode lets readers
keep reading while one writer writes; ``busy_timeout`` makes a second writer wait instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CatalogError, IncompatibleCatalogError, InvalidParameterError
from .types import Item

SCHEMA_VERSION = 2  # 2: the thumbs table (grey 32x32 thumbnails for the duplicate check)
DB_NAME = "catalog.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
);
CREATE INDEX items_path ON items(path);
CREATE INDEX items_sha256 ON items(sha256);
CREATE TABLE encoders (
    num  INTEGER PRIMARY KEY,
    spec TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    dim  INTEGER NOT NULL
);
CREATE TABLE hashers (
    num    INTEGER PRIMARY KEY REFERENCES encoders(num),
    source INTEGER NOT NULL REFERENCES encoders(num),
    name   TEXT NOT NULL,
    state  BLOB NOT NULL,
    fitted REAL NOT NULL
);
CREATE TABLE vectors (
    encoder INTEGER NOT NULL REFERENCES encoders(num),
    key     INTEGER NOT NULL REFERENCES items(key) ON DELETE CASCADE,
    vec     BLOB NOT NULL,
    PRIMARY KEY (encoder, key)
) WITHOUT ROWID;
""" + "CREATE TABLE thumbs (key INTEGER PRIMARY KEY REFERENCES items(key) ON DELETE CASCADE, thumb BLOB NOT NULL);"

_MIGRATIONS = {  # from version → the statements that make it the next one; run in one transaction
    1: ["CREATE TABLE IF NOT EXISTS thumbs (key INTEGER PRIMARY KEY REFERENCES items(key) ON DELETE CASCADE, "
        "thumb BLOB NOT NULL)"],
}

_ITEM_COLUMNS = "key, id, path, sha256, width, height, added, updated, metadata"


def row_to_item(row: Sequence[Any]) -> Item:
    return Item(id=row[1], path=row[2], sha256=row[3], width=row[4], height=row[5], added=row[6],
                updated=row[7], metadata=json.loads(row[8]))


def metadata_json(metadata: object) -> str:
    """Validate user metadata (a JSON-serialisable dict with string keys) and serialise it."""
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidParameterError(f"metadata must be a dict with string keys. Got {type(metadata).__name__}.")
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(f"metadata must be JSON-serialisable: {err}") from err


def _json_path(key: str) -> str:
    if not isinstance(key, str) or not key or any(c in key for c in '"\\') or not key.isprintable():
        raise InvalidParameterError(f"A metadata filter key must be a printable string without quotes. Got {key!r}.")
    return f'$."{key}"'


class Store:
    """One connection to a catalogue database, safe to share between threads (calls are serialised)."""

    def __init__(self, directory: Path, *, create: bool) -> None:
        self.path = directory / DB_NAME
        exists = self.path.exists()
        if not exists and not create:
            raise CatalogError(f"no catalogue at {directory} (create one with 'lookalike index DIR')")
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as err:
            raise CatalogError(f"{self.path}: not a lookalike catalogue ({err})") from err
        self.lock = threading.RLock()
        if exists:
            self._check_version()

    # -- transactions -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE (takes the write lock up front), COMMIT or ROLLBACK."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes when another connection commits (SQLite's ``PRAGMA data_version``)."""
        with self.lock:
            return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -- schema -------------------------------------------------------------------------------------------------

    def initialise(self, encoders: Sequence[tuple[str, str, int]]) -> None:
        """Create the schema with these (spec, kind, dim) encoders; the first is the default."""
        with self.write() as db:
            if db.execute("SELECT count(*) FROM sqlite_master WHERE name='meta'").fetchone()[0]:
                return  # another process created it first
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT INTO meta VALUES ('created', ?)", (str(time.time()),))
            for spec, kind, dim in encoders:
                db.execute("INSERT INTO encoders (spec, kind, dim) VALUES (?, ?, ?)", (spec, kind, dim))

    def is_initialised(self) -> bool:
        return bool(self.query("SELECT count(*) FROM sqlite_master WHERE name='meta'")[0][0])

    def _check_version(self) -> None:
        try:
            rows = self.query("SELECT value FROM meta WHERE key='schema_version'")
        except sqlite3.DatabaseError as err:
            raise CatalogError(f"{self.path}: not a lookalike catalogue ({err})") from err
        if rows and int(rows[0][0]) < SCHEMA_VERSION:
            self._migrate(int(rows[0][0]))
        elif rows and int(rows[0][0]) != SCHEMA_VERSION:
            raise IncompatibleCatalogError(
                f"{self.path}: schema version {rows[0][0]}, this lookalike reads version {SCHEMA_VERSION}"
            )

    def _migrate(self, version: int) -> None:
        """Bring an older catalogue up to :data:`SCHEMA_VERSION` in place (each step in its own transaction)."""
        while version < SCHEMA_VERSION:
            with self.write() as db:
                current = int(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
                if current == version:  # another process may have migrated it meanwhile
                    for statement in _MIGRATIONS[version]:
                        db.execute(statement)
                    db.execute("UPDATE meta SET value = ? WHERE key='schema_version'", (str(version + 1),))
            version += 1

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with None delete) one meta value."""
        with self.write() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def thumbs(self, keys: Sequence[int] | None = None) -> dict[int, bytes]:
        """key → stored thumbnail bytes, for ``keys`` (default: every item)."""
        if keys is None:
            return {int(r[0]): bytes(r[1]) for r in self.query("SELECT key, thumb FROM thumbs")}
        out: dict[int, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = [int(k) for k in keys[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self.query(f"SELECT key, thumb FROM thumbs WHERE key IN ({marks})", chunk):
                out[int(row[0])] = bytes(row[1])
        return out

    def encoders(self) -> list[tuple[int, str, str, int]]:
        """(num, spec, kind, dim) of each encoder, in creation order."""
        return [tuple(r) for r in self.query("SELECT num, spec, kind, dim FROM encoders ORDER BY num")]

    def hashers(self) -> dict[int, tuple[int, str, bytes]]:
        """num of the codes → (num of the float vectors hashed, hasher name, state as .npz bytes)."""
        return {r[0]: (r[1], r[2], bytes(r[3])) for r in self.query("SELECT num, source, name, state FROM hashers")}

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    # -- items --------------------------------------------------------------------------------------------------

    def item_row(self, item_id: str) -> Any:
        rows = self.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return rows[0] if rows else None

    def rows_for_keys(self, keys: Sequence[int]) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = [int(k) for k in keys[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE key IN ({marks})", chunk):
                out[row[0]] = row
        return out

    def list_rows(self, offset: int, limit: int, where: dict[str, Any] | None) -> list[Any]:
        clause, params = self.where_clause(where)
        return self.query(f"SELECT {_ITEM_COLUMNS} FROM items {clause} ORDER BY key LIMIT ? OFFSET ?",
                          [*params, limit, offset])

    def count(self, where: dict[str, Any] | None = None) -> int:
        clause, params = self.where_clause(where)
        return int(self.query(f"SELECT count(*) FROM items {clause}", params)[0][0])

    def keys_where(self, where: dict[str, Any]) -> np.ndarray:
        clause, params = self.where_clause(where)
        return np.array([r[0] for r in self.query(f"SELECT key FROM items {clause}", params)], dtype=np.int64)

    @staticmethod
    def where_clause(where: dict[str, Any] | None) -> tuple[str, list[Any]]:
        """SQL for an equality filter on metadata keys, all of which must match."""
        if not where:
            return "", []
        if not isinstance(where, dict):
            raise InvalidParameterError(f"A metadata filter must be a dict. Got {type(where).__name__}.")
        terms: list[str] = []
        params: list[Any] = []
        for key, value in where.items():
            path = _json_path(key)
            if value is None:
                terms.append("json_type(metadata, ?) = 'null'")
                params.append(path)
            elif isinstance(value, str | int | float):
                terms.append("json_extract(metadata, ?) = ?")
                params += [path, value]
            else:
                raise InvalidParameterError(
                    f"A metadata filter value must be a string, number, bool or None. Got {value!r} for {key!r}."
                )
        return "WHERE " + " AND ".join(terms), params

    def paths_under(self, root: str) -> dict[str, tuple[int, str, str]]:
        """path → (key, id, sha256) of items whose path lies under the directory ``root``."""
        lo, hi = root.rstrip("/") + "/", root.rstrip("/") + "0"  # '0' is the character after '/'
        rows = self.query("SELECT path, key, id, sha256 FROM items WHERE path >= ? AND path < ?", (lo, hi))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def vectors_of_sha(self, sha256: str, encoder_nums: Sequence[int]) -> dict[int, bytes] | None:
        """The vectors of an existing item with this content, if it has one for every encoder."""
        rows = self.query(
            "SELECT v.encoder, v.vec FROM items i JOIN vectors v ON v.key = i.key WHERE i.sha256 = ? "
            "AND i.key = (SELECT min(key) FROM items WHERE sha256 = ?)", (sha256, sha256))
        found = {int(r[0]): bytes(r[1]) for r in rows}
        return found if all(n in found for n in encoder_nums) else None

    def iter_vectors(self, encoder_num: int, chunk: int = 8192) -> Iterator[tuple[np.ndarray, list[bytes]]]:
        """(keys, vector blobs) of one encoder, ``chunk`` rows at a time (the lock is held until exhausted)."""
        with self.lock:
            cursor = self.db.execute("SELECT key, vec FROM vectors WHERE encoder = ? ORDER BY key", (encoder_num,))
            while rows := cursor.fetchmany(chunk):
                yield np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]
