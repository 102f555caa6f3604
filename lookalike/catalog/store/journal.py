"""The index journal: which whole-image vectors changed since an external index backend (Milvus) last saw them.

A catalogue attached to a backend holds the table ``index_journal`` and three SQLite triggers on ``vectors``
(insert, replace, delete, part 0 only). Every write path -- add, update, remove, a hasher's refit, a cascade from a
deleted item, a process of an older lookalike -- so records the (encoder, key) it touched *in the same transaction
as the change itself*: a commit and its journal entry are one. The backend side (``catalog/_backend.py``) applies
entries by reading the key's current vector from the store (upsert) or its absence (delete), then deletes the
entries it applied. Applying is idempotent, so a crash after the backend write and before the deletion replays
harmlessly; a crash before the backend write leaves the entry for the next write, search or open.

The table and triggers are created when a backend is attached and dropped when it is detached (and created again
on open if a migration rebuilt ``vectors``); they change no schema version: a lookalike that does not know them
ignores the table, and its writes still fire the triggers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store
    from .transaction import Transaction

TABLE = "index_journal"
_EVENTS = (("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"), ("delete", "DELETE", "OLD"))
_CREATE = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, encoder INTEGER NOT NULL, "
    "key INTEGER NOT NULL)",
    *(f"CREATE TRIGGER IF NOT EXISTS {TABLE}_{name} AFTER {event} ON vectors WHEN {row}.part = 0 BEGIN "
      f"INSERT INTO {TABLE} (encoder, key) VALUES ({row}.encoder, {row}.key); END" for name, event, row in _EVENTS),
]
_DROP = [*(f"DROP TRIGGER IF EXISTS {TABLE}_{name}" for name, _, _ in _EVENTS), f"DROP TABLE IF EXISTS {TABLE}"]


class IndexJournal:
    """The journal of one catalogue's store (see the module doc)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def attach(tx: Transaction) -> None:
        """Create the table and the triggers (idempotent), within ``tx``."""
        for sql in _CREATE:
            tx.execute(sql)

    @staticmethod
    def detach(tx: Transaction) -> None:
        """Drop the triggers and the table, within ``tx``."""
        for sql in _DROP:
            tx.execute(sql)

    def attached(self) -> bool:
        rows = self._store.rows("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                                 (f"{TABLE}_%",))
        return int(rows[0][0]) == len(_EVENTS)

    def last(self) -> int:
        """The sequence number of the newest entry (0: none yet)."""
        rows = self._store.rows(f"SELECT coalesce(max(seq), 0) FROM {TABLE}")
        return int(rows[0][0])

    def pending(self, after: int = 0, limit: int = 10_000) -> list[tuple[int, int, int]]:
        """(seq, encoder, key) of up to ``limit`` entries past ``after``, oldest first."""
        return [(int(s), int(e), int(k)) for s, e, k in self._store.rows(
            f"SELECT seq, encoder, key FROM {TABLE} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))]

    def done(self, upto: int, encoders: tuple[int, ...] | None = None) -> None:
        """Forget the entries up to ``upto`` (of ``encoders`` only, when given): the backend has them."""
        with self._store.transaction() as tx:
            if encoders is None:
                tx.execute(f"DELETE FROM {TABLE} WHERE seq <= ?", (upto,))
            else:
                tx.execute(f"DELETE FROM {TABLE} WHERE seq <= ? AND encoder IN ({','.join('?' * len(encoders))})",
                           (upto, *encoders))
