"""An external index backend (Milvus) for the catalogue's index stage, kept consistent with its SQLite.

The catalogue's SQLite stays the one truth: items, metadata, files and every vector. The backend holds a copy of
each encoder's whole-image vectors (one collection per encoder, ``lookalike_<uid>_e<num>``) and answers the
searches. How the two stay consistent on every path, crashes half-way included:

- **Every change is journalled in its own commit** (:mod:`.store.journal`: SQLite triggers on ``vectors``), then
  applied to the backend after the commit, then forgotten. Applying reads the key's *current* vector from the store
  (an upsert) or its absence (a delete), so it is idempotent and converges to SQLite whatever happened before.
- **Killed after the SQLite commit, before the backend write**: the entries stay; the next write, search or open of
  any process applies them. **Killed after the backend write, before the entries were forgotten**: they are applied
  again, harmlessly. A backend that is down makes a write warn (the write itself is committed and journalled) and
  a search fail with :class:`~lookalike.errors.IndexBackendError` until it is back; nothing is lost.
- **Retried**: nothing within a call beyond the client's bounded retries (``timeout``); **reconciled**: the
  journal on every open and on every other process's commit; the whole collection (every vector uploaded, keys
  SQLite lacks deleted) when a catalogue is first attached to a backend, or re-attached after being detached
  (``index.backend.synced.<num>`` records the backend a full sync completed against).
- **Only a writer writes to the backend.** A read-only catalogue (``serve --read-only``, read-only media, a
  replica's copy of the SQLite file) searches the backend as the writer left it and never applies or reconciles:
  a copy that lags the writer would otherwise rewind the backend to its older state.

Settings (meta): ``index.backend`` (the URI; absent: the in-memory indexes), ``index.backend.uid`` (the collection
prefix, random per catalogue, so catalogues can share a server; a URI's ``?collection=shop`` names it instead).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import IndexBackendError
from ..index import VectorIndex
from ..index.milvus import build as build_milvus
from ..index.milvus import parse_uri, uri_options
from ..index.protocol import Metric
from .store import IndexJournal, Store

log = logging.getLogger("lookalike.catalog")

BACKEND, UID, SYNCED = "index.backend", "index.backend.uid", "index.backend.synced.{num}"
LOCAL = "local"


def stored_backend(store: Store) -> str | None:
    return store.meta(BACKEND)


def set_backend(store: Store, uri: str | None) -> None:
    """Attach the catalogue to the backend at ``uri`` (None or ``"local"``: detach, back to the in-memory indexes;
    the backend's collections are left as they are). A change forces a full sync on the next open."""
    if uri == LOCAL:
        uri = None
    if uri is not None:
        parse_uri(uri)  # a malformed URI is refused before anything is written
    if uri == stored_backend(store):
        return
    with store.transaction() as tx:  # one commit: the triggers exist exactly while the setting does
        for row in store.encoders():
            tx.set_meta(SYNCED.format(num=row.num), None)
        tx.set_meta(BACKEND, uri)
        if uri is None:
            IndexJournal.detach(tx)
        else:
            IndexJournal.attach(tx)
            if store.meta(UID) is None:
                tx.set_meta(UID, secrets.token_hex(6))


def open_backend(store: Store, uri: str | None, options: dict[str, Any] | None = None) -> Backend | None:
    """The backend an opening catalogue uses: ``uri`` attached (and stored) when given, else the stored one;
    None for the in-memory indexes. A read-only catalogue uses a given URI without storing it."""
    if uri is not None and uri != stored_backend(store) and not store.read_only:
        set_backend(store, uri)
    elif stored_backend(store) not in (None, LOCAL) and not store.read_only and not IndexJournal(store).attached():
        with store.transaction() as tx:  # a migration that rebuilt `vectors` dropped the triggers with it
            IndexJournal.attach(tx)
    chosen = stored_backend(store) if uri is None or not store.read_only else uri
    return None if chosen in (None, LOCAL) else Backend(store, chosen, options)


class Backend:
    """The backend of one open catalogue: builds its indexes, syncs them in full where needed, applies the
    journal (see the module doc)."""

    def __init__(self, store: Store, uri: str, options: dict[str, Any] | None = None) -> None:
        self.store, self.uri, self.options = store, uri, dict(options or {})
        self.journal = IndexJournal(store)
        self.uid = store.meta(UID) or "ro"  # a read-only catalogue attached in memory only
        self._applied = 0  # the newest journal entry this process has applied
        self._prefix = uri_options(uri).get("collection") or f"lookalike_{self.uid}"

    def collection(self, num: int) -> str:
        """``<prefix>_e<num>``: the prefix is the URI's ``collection`` option, else ``lookalike_<uid>``."""
        return f"{self._prefix}_e{num}"

    def build(self, num: int, dim: int, metric: Metric) -> VectorIndex:
        index = build_milvus(dim, metric, [self.uri], collection=self.collection(num), **self.options)
        if self.store.meta(SYNCED.format(num=num)) != self.uri and not self.store.read_only:
            self._full_sync(num, dim, metric, index)
        return index

    def _full_sync(self, num: int, dim: int, metric: Metric, index: VectorIndex) -> None:
        upto = self.journal.last() if self.journal.attached() else 0
        width, dtype = (dim, np.float32) if metric == "cosine" else (dim // 8, np.uint8)
        held = set(index.keys().tolist())
        stored = self.store.vector_keys(num)
        for keys, blobs in self.store.iter_vectors(num):
            index.add(keys, np.frombuffer(b"".join(blobs), dtype=dtype).reshape(len(keys), width))
        extra = np.array(sorted(held - set(stored.tolist())), dtype=np.int64)
        if len(extra):
            index.remove(extra)
        log.info("synced %s encoder %d in full: %d vectors, %d removed", self.uri, num, len(stored), len(extra))
        self.journal.done(upto, (num,))
        self.store.set_meta(SYNCED.format(num=num), self.uri)

    def apply(self, index_of: Callable[[int], VectorIndex], dims: Callable[[int], tuple[int, Metric]]) -> int:
        """Apply every journal entry to the backend (``index_of(num)`` opens an encoder's index); returns how
        many were applied."""
        if self.store.read_only or not self.journal.attached():  # only a writer writes to the backend
            return 0
        applied = 0
        while entries := self.journal.pending(self._applied):
            groups: dict[int, set[int]] = {}
            for _seq, num, key in entries:
                groups.setdefault(num, set()).add(key)
            for num, keys in groups.items():
                self._apply_keys(index_of(num), num, sorted(keys), *dims(num))
            self._applied = entries[-1][0]
            self.journal.done(self._applied)
            applied += len(entries)
        return applied

    def _apply_keys(self, index: VectorIndex, num: int, keys: list[int], dim: int, metric: Metric) -> None:
        width, dtype = (dim, np.float32) if metric == "cosine" else (dim // 8, np.uint8)
        current = self.store.vectors_by_key(num, keys)
        present = [k for k in keys if k in current]
        gone = [k for k in keys if k not in current]
        if present:
            blobs = b"".join(current[k] for k in present)
            index.add(np.array(present, dtype=np.int64), np.frombuffer(blobs, dtype=dtype).reshape(-1, width))
        if gone:
            index.remove(np.array(gone, dtype=np.int64))


def apply_or_warn(apply: Callable[[], int]) -> bool:
    """After a commit: apply the journal now (True), or say why it waits (False; the commit stands, see the module
    doc)."""
    try:
        apply()
        return True
    except IndexBackendError as err:
        log.warning("the index backend did not take this change yet (it is journalled in the catalogue and "
                    "applied on the next write, search or open): %s", err)
        return False
