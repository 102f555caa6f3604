"""The SQLite file behind a catalogue, as a repository: typed rows out, a transaction object for writes.

Items and their vectors live in one database, so one transaction commits an item together with every vector of it:
a process killed mid-batch leaves the last committed state, never an item without vectors. WAL mode lets readers
keep reading while one writer writes; ``busy_timeout`` makes a second writer wait instead of failing. All of the
catalogue's SQL is in this package; no connection leaves it.

A catalogue whose files cannot be written (read-only media, a read-only mount, files of another user) is opened
read-only: SQLite's ``mode=ro`` where its write-ahead log can be shared, else ``immutable=1`` (no -shm needed: the
medium cannot change) — but never while an uncheckpointed log exists that could not be read, which would hide
committed writes. Every write then raises :class:`~lookalike.errors.ReadOnlyCatalogError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CatalogError, IncompatibleCatalogError, ReadOnlyCatalogError
from ..types import Item
from ._sql import in_chunks, marks
from .schema import DB_NAME, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from .transaction import Transaction
from .where import where_clause

_ITEM_COLUMNS = "key, id, path, sha256, width, height, added, updated, metadata"
# SQLite reads pages through a memory map of up to this much of the file (its build caps it at ~2 GiB): random
# reads of float vectors, the refine step of a search by codes, took 27 us a row so against 57 us by read().
MMAP_BYTES = 1 << 34
_ONE_PASS = 4096  # reads of at least this many rows go unmapped (Store._one_pass)


@dataclass(frozen=True)
class EncoderRow:
    num: int
    spec: str
    kind: str
    dim: int


@dataclass(frozen=True)
class HasherRow:
    """A fitted hasher: its codes are encoder ``num``, made from the float vectors of encoder ``source``."""

    num: int
    source: int
    name: str
    state: bytes


def _writable(directory: Path, path: Path) -> bool:
    """Whether SQLite could write the catalogue: the database file and its folder (for the -wal and -shm)."""
    return os.access(path, os.W_OK) and os.access(directory, os.W_OK)


def _item(row: Sequence[Any]) -> Item:
    return Item(id=row[1], path=row[2], sha256=row[3], width=row[4], height=row[5], added=row[6], updated=row[7],
                metadata=json.loads(row[8]), key=int(row[0]))


class Store:
    """One connection to a catalogue database, safe to share between threads (calls are serialised by ``lock``)."""

    def __init__(self, directory: Path, *, create: bool, read_only: bool | None = None) -> None:
        """``read_only``: None opens read-only only when the files cannot be written; True always; False never
        (a catalogue that cannot be written is then an error)."""
        self.path = directory / DB_NAME
        exists = self.path.exists()
        if not exists and (not create or read_only):
            raise CatalogError(f"no catalogue at {directory} (create one with 'lookalike index DIR')")
        self.read_only = bool(read_only)
        self.why_read_only = "opened read-only" if read_only else ""
        if exists and not _writable(directory, self.path):
            if read_only is False:
                raise CatalogError(f"{self.path}: the catalogue's files cannot be written (read-only media?)")
            self.read_only, self.why_read_only = True, "its files cannot be written"
        if not self.read_only:
            if not exists:
                directory.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open_writable()
            except sqlite3.DatabaseError as err:
                if read_only is False or not exists or _writable(directory, self.path):
                    raise CatalogError(f"{self.path}: not a lookalike catalogue ({err})") from err
                self.read_only, self.why_read_only = True, "its files cannot be written"
        if self.read_only:
            self._db = self._open_read_only()
        self.lock = threading.RLock()
        self._passes = 0  # bulk reads in progress (_one_pass)
        if exists:
            self._check_version()

    def _open_writable(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        except BaseException:
            db.close()
            raise
        return db

    def _open_read_only(self) -> sqlite3.Connection:
        uri = self.path.absolute().as_uri()
        errors = []
        for mode in ("mode=ro", "immutable=1"):
            wal = Path(f"{self.path}-wal")
            if mode == "immutable=1" and wal.exists() and wal.stat().st_size > 0:
                errors.append(f"its write-ahead log {wal.name} holds commits that cannot be read without a "
                              f"writable {self.path.name}-shm: open it once where it can be written")
                break
            try:
                db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=60.0, isolation_level=None,
                                     check_same_thread=False)
            except sqlite3.DatabaseError as err:
                errors.append(f"{mode}: {err}")
                continue
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            except sqlite3.DatabaseError as err:
                db.close()
                errors.append(f"{mode}: {err}")
                continue
            return db
        raise CatalogError(f"{self.path}: cannot open the catalogue read-only ({'; '.join(errors)})")

    def require_writable(self) -> None:
        """Raise ReadOnlyCatalogError when the catalogue was opened read-only."""
        if self.read_only:
            raise ReadOnlyCatalogError(f"the catalogue at {self.path.parent} is read-only ({self.why_read_only}): "
                                       "nothing was written")

    # -- transactions -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction: BEGIN IMMEDIATE (takes the write lock up front), COMMIT, or ROLLBACK on error."""
        self.require_writable()
        with self.lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield Transaction(self._db)
                    self._db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full)
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as err:  # disk full, I/O error, a lock held past the timeout
                raise CatalogError(f"the catalogue at {self.path.parent} could not be written ({err}); nothing of "
                                   "this write was kept, everything committed before is intact") from err

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _one_pass(self, rows: int) -> Iterator[None]:
        """Bulk reads of many rows read() their pages rather than map them: every mapped page they touched stayed
        in the process's resident memory (a 100k-item dedup peaked at 2.5 GB for 0.5 GB of vectors). The random
        reads of a re-ranked search keep the map (5 against 7.5 us a vector)."""
        if rows < _ONE_PASS:
            yield
            return
        with self.lock:  # not held in between: other threads' reads go on (unmapped meanwhile)
            self._passes += 1
            if self._passes == 1:
                self._db.execute("PRAGMA mmap_size=0")
        try:
            yield
        finally:
            with self.lock:  # the last pass to end maps again
                self._passes -= 1
                if self._passes == 0:
                    self._db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read for the store package's own modules (the index journal)."""
        return self._query(sql, params)

    def data_version(self) -> int:
        """Changes when another connection commits (SQLite's ``PRAGMA data_version``)."""
        with self.lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- schema -----------------------------------------------------------------------------------------------

    def initialise(self, encoders: Sequence[tuple[str, str, int]]) -> None:
        """Create the schema with these (spec, kind, dim) encoders; the first is the default."""
        self.require_writable()
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._db.execute("SELECT count(*) FROM sqlite_master WHERE name='meta'").fetchone()[0]:
                    for statement in SCHEMA:
                        self._db.execute(statement)
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self._db.execute("INSERT INTO meta VALUES ('created', ?)", (str(time.time()),))
                    for spec, kind, dim in encoders:
                        self._db.execute("INSERT INTO encoders (spec, kind, dim) VALUES (?, ?, ?)", (spec, kind, dim))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def is_initialised(self) -> bool:
        return bool(self._query("SELECT count(*) FROM sqlite_master WHERE name='meta'")[0][0])

    def _check_version(self) -> None:
        try:
            rows = self._query("SELECT value FROM meta WHERE key='schema_version'")
        except sqlite3.DatabaseError as err:
            raise CatalogError(f"{self.path}: not a lookalike catalogue ({err})") from err
        if rows and int(rows[0][0]) < SCHEMA_VERSION:
            self._migrate(int(rows[0][0]))
        elif rows and int(rows[0][0]) != SCHEMA_VERSION:
            raise IncompatibleCatalogError(
                f"{self.path}: schema version {rows[0][0]}, this lookalike reads version {SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        """Bring an older catalogue up to :data:`SCHEMA_VERSION` in place (each step in its own transaction)."""
        if self.read_only:
            raise ReadOnlyCatalogError(f"{self.path}: schema version {version} must be migrated to "
                                       f"{SCHEMA_VERSION}, which needs a writable catalogue: open it once where it "
                                       "can be written")
        while version < SCHEMA_VERSION:
            with self.lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    current = int(self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
                    if current == version:  # another process may have migrated it meanwhile
                        for statement in MIGRATIONS[version]:
                            self._db.execute(statement)
                        self._db.execute("UPDATE meta SET value = ? WHERE key='schema_version'", (str(version + 1),))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            version += 1

    def schema_version(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key='schema_version'")[0][0])

    # -- encoders and settings --------------------------------------------------------------------------------

    def encoders(self) -> list[EncoderRow]:
        """Every encoder, in creation order."""
        return [EncoderRow(*r) for r in self._query("SELECT num, spec, kind, dim FROM encoders ORDER BY num")]

    def hashers(self) -> dict[int, HasherRow]:
        """Fitted hashers by the number of their codes' encoder."""
        return {r[0]: HasherRow(r[0], r[1], r[2], bytes(r[3]))
                for r in self._query("SELECT num, source, name, state FROM hashers")}

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as tx:
            tx.set_meta(key, value)

    # -- items ------------------------------------------------------------------------------------------------

    def item(self, item_id: str) -> Item | None:
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def key_of(self, item_id: str) -> int | None:
        rows = self._query("SELECT key FROM items WHERE id = ?", (item_id,))
        return int(rows[0][0]) if rows else None

    def items_by_key(self, keys: Sequence[int]) -> dict[int, Item]:
        out: dict[int, Item] = {}
        with self._one_pass(len(keys)):
            for chunk in in_chunks(keys):
                for row in self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE key IN ({marks(chunk)})", chunk):
                    out[int(row[0])] = _item(row)
        return out

    def ids_of(self, keys: Sequence[int]) -> list[str]:
        """The ids of ``keys`` in the order of the keys (keys of removed items are left out)."""
        found = self.items_by_key(keys)
        return [found[int(k)].id for k in keys if int(k) in found]

    def items(self, offset: int, limit: int, where: dict[str, Any] | None = None) -> list[Item]:
        clause, params = where_clause(where)
        return [_item(r) for r in self._query(
            f"SELECT {_ITEM_COLUMNS} FROM items {clause} ORDER BY key LIMIT ? OFFSET ?", [*params, limit, offset])]

    def items_with_sha256(self, sha256: str) -> list[Item]:
        return [_item(r) for r in self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE sha256 = ? ORDER BY key",
                                              (sha256,))]

    def items_with_files(self) -> list[Item]:
        """Items with a path (not those added as pixels), by key."""
        return [_item(r) for r in self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE path IS NOT NULL "
                                              "ORDER BY key")]

    def same_content_pairs(self) -> list[tuple[int, int]]:
        """(key a, key b), a < b, of every two items with the same content hash."""
        return [(int(a), int(b)) for a, b in self._query(
            "SELECT a.key, b.key FROM items a JOIN items b ON a.sha256 = b.sha256 AND a.key < b.key")]

    def path_in_use(self, path: str) -> bool:
        return bool(self._query("SELECT 1 FROM items WHERE path = ? LIMIT 1", (path,)))

    def count(self, where: dict[str, Any] | None = None) -> int:
        clause, params = where_clause(where)
        return int(self._query(f"SELECT count(*) FROM items {clause}", params)[0][0])

    def keys_where(self, where: dict[str, Any]) -> np.ndarray:
        clause, params = where_clause(where)
        return np.array([r[0] for r in self._query(f"SELECT key FROM items {clause}", params)], dtype=np.int64)

    def paths_under(self, root: str) -> dict[str, Item]:
        """path → item, of the items whose path lies under the directory ``root``."""
        lo, hi = root.rstrip("/") + "/", root.rstrip("/") + "0"  # '0' is the character after '/'
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE path >= ? AND path < ?", (lo, hi))
        return {r[2]: _item(r) for r in rows}

    # -- vectors and features ---------------------------------------------------------------------------------

    def vector_counts(self) -> dict[int, int]:
        """encoder number → vectors stored (every part)."""
        return {int(n): int(c) for n, c in self._query("SELECT encoder, count(*) FROM vectors GROUP BY encoder")}

    def vectors_of_sha(self, sha256: str, encoder_nums: Sequence[int]) -> dict[int, bytes] | None:
        """The whole-image vectors of an existing item with this content, if it has one for every encoder."""
        rows = self._query(
            "SELECT v.encoder, v.vec FROM items i JOIN vectors v ON v.key = i.key WHERE i.sha256 = ? AND v.part = 0 "
            "AND i.key = (SELECT min(key) FROM items WHERE sha256 = ?)", (sha256, sha256))
        found = {int(r[0]): bytes(r[1]) for r in rows}
        return found if all(n in found for n in encoder_nums) else None

    def iter_vectors(self, encoder: int, *, part: int = 0, chunk: int = 1024
                     ) -> Iterator[tuple[np.ndarray, list[bytes]]]:
        """(keys, vector blobs) of part ``part`` of one encoder's vectors, ``chunk`` rows at a time (the lock is
        held until the iterator is exhausted)."""
        with self.lock, self._one_pass(_ONE_PASS):
            cursor = self._db.execute("SELECT key, vec FROM vectors WHERE encoder = ? AND part = ? ORDER BY key",
                                      (encoder, part))
            try:
                while rows := cursor.fetchmany(chunk):
                    yield np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]
            finally:
                cursor.close()

    def vectors_by_key(self, encoder: int, keys: Sequence[int], *, part: int = 0) -> dict[int, bytes]:
        """key → the vector blob of part ``part`` of ``keys`` (absent keys are left out): the reads of a re-ranked
        search, which refines its candidates from the store instead of holding every float vector in memory."""
        out: dict[int, bytes] = {}
        for chunk in in_chunks(keys):
            for row in self._query(f"SELECT key, vec FROM vectors WHERE encoder = ? AND part = ? AND key IN "
                                   f"({marks(chunk)})", [encoder, part, *chunk]):
                out[int(row[0])] = row[1]
        return out

    def vector_count(self, encoder: int, *, part: int = 0) -> int:
        return int(self._query("SELECT count(*) FROM vectors WHERE encoder = ? AND part = ?", (encoder, part))[0][0])

    def vector_keys(self, encoder: int, *, part: int = 0) -> np.ndarray:
        """The keys that hold part ``part`` of one encoder's vectors, ascending."""
        rows = self._query("SELECT key FROM vectors WHERE encoder = ? AND part = ? ORDER BY key", (encoder, part))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def parts_of(self, encoder: int, key: int) -> dict[int, bytes]:
        """part → vector blob of one item's vectors of one encoder."""
        return {int(p): bytes(v) for p, v in self._query(
            "SELECT part, vec FROM vectors WHERE encoder = ? AND key = ? ORDER BY part", (encoder, key))}

    def features(self, name: str, keys: Sequence[int] | None = None) -> dict[int, bytes]:
        """key → the stored feature ``name`` of ``keys`` (default: every item that has it)."""
        if keys is None:
            return {int(r[0]): bytes(r[1]) for r in self._query("SELECT key, value FROM features WHERE name = ?",
                                                                 (name,))}
        out: dict[int, bytes] = {}
        with self._one_pass(len(keys)):
            for chunk in in_chunks(keys):
                for row in self._query(f"SELECT key, value FROM features WHERE name = ? AND key IN "
                                       f"({marks(chunk)})", [name, *chunk]):
                    out[int(row[0])] = bytes(row[1])
        return out
