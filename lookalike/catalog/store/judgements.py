"""The SQL of people's similarity judgements (schema v5's ``judgements`` table): item ``item`` is, or is not,
similar to the reference item ``reference``. Reads take the :class:`~.store.Store`, writes a
:class:`~.transaction.Transaction`; keys are the items' int64 keys, ids are resolved by the caller."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._sql import in_chunks, marks

if TYPE_CHECKING:
    from .store import Store
    from .transaction import Transaction

# (reference id, item id, similar, added)
JudgementRow = tuple[str, str, bool, float]

_SELECT = ("SELECT r.id, i.id, j.similar, j.added FROM judgements j JOIN items r ON r.key = j.reference "
           "JOIN items i ON i.key = j.item")


def put_judgements(tx: Transaction, reference: int, verdicts: Sequence[tuple[int, bool]]) -> None:
    """Set (or replace) the judgement of each (item key, similar) about ``reference``."""
    now = time.time()
    for item, similar in verdicts:
        tx.execute("INSERT INTO judgements (reference, item, similar, added) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (reference, item) DO UPDATE SET similar = excluded.similar, added = excluded.added",
                   (reference, item, int(similar), now))


def clear_judgements(tx: Transaction, reference: int, items: Sequence[int] | None = None) -> None:
    """Forget the judgements about ``reference`` of ``items`` (None: all of them)."""
    if items is None:
        tx.execute("DELETE FROM judgements WHERE reference = ?", (reference,))
        return
    for chunk in in_chunks(list(items)):
        tx.execute(f"DELETE FROM judgements WHERE reference = ? AND item IN ({marks(chunk)})",
                   (reference, *chunk))


def judgements(store: Store, reference: int | None = None, offset: int = 0, limit: int = -1) -> list[JudgementRow]:
    """Judgements (of one reference, or all), by reference key then item key, a page at a time."""
    where, params = ("WHERE j.reference = ?", [reference]) if reference is not None else ("", [])
    rows = store.rows(f"{_SELECT} {where} ORDER BY j.reference, j.item LIMIT ? OFFSET ?", [*params, limit, offset])
    return [(r[0], r[1], bool(r[2]), float(r[3])) for r in rows]


def judgement_counts(store: Store, reference: int | None = None) -> tuple[int, int, int]:
    """(judgements, references, triplets) of one reference or of the whole catalogue; a reference's triplets are
    its similar items times its not-similar ones."""
    where, params = ("WHERE reference = ?", (reference,)) if reference is not None else ("", ())
    rows = store.rows(f"SELECT reference, sum(similar), sum(1 - similar) FROM judgements {where} GROUP BY reference",
                      params)
    return sum(int(p) + int(n) for _, p, n in rows), len(rows), sum(int(p) * int(n) for _, p, n in rows)


def triplet_keys(store: Store) -> list[tuple[int, int, int]]:
    """Every (reference, positive, negative) key triple, by reference then positive then negative."""
    rows = store.rows("SELECT p.reference, p.item, n.item FROM judgements p JOIN judgements n "
                      "ON n.reference = p.reference AND n.similar = 0 WHERE p.similar = 1 "
                      "ORDER BY p.reference, p.item, n.item")
    return [(int(a), int(b), int(c)) for a, b, c in rows]
