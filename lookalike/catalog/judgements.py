"""People's similarity judgements, stored with the catalogue: the triplets of deep ranking (issue 14, part 3).

A person picks a reference item and marks other items as similar or not similar to it (the web page's editor,
``POST /triplets``, ``lookalike judge``)::

    cat.judgements.judge("shirt-12.jpg", similar=["shirt-40.jpg"], dissimilar=["dress-3.jpg", "shoe-9.jpg"])
    cat.judgements.triplets()     # [(reference, positive, negative) Items]: every similar x not-similar pair
    cat.judgements.write_csv(f)   # query,positive,negative rows (ids, or image paths for --data CSV)

Each (reference, item) pair holds one verdict: judging it again replaces it, ``clear`` forgets it. A removed item
takes its judgements with it. ``lookalike train triplet --from-catalog`` trains on the triplets and
``lookalike eval triplets`` scores encoders on them.
"""

from __future__ import annotations

import builtins
import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..errors import InvalidParameterError, ItemNotFoundError
from ..validation import check_int, short_repr
from . import _checks
from .store import Store
from .store.judgements import clear_judgements, judgement_counts, judgements, put_judgements, triplet_keys
from .types import Item

MAX_IDS = 1000  # items judged in one call
__all__ = ["MAX_IDS", "Judgement", "Judgements"]


@dataclass(frozen=True)
class Judgement:
    """``item`` is (``similar``) or is not similar to ``reference``; ``added``: when, Unix time."""

    reference: str
    item: str
    similar: bool
    added: float

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "item": self.item, "similar": self.similar, "added": self.added}


def _ids(name: str, values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidParameterError(f"'{name}' must be a list of item ids. Got {short_repr(values)}.")
    return [_checks.check_id(v) for v in values]


class Judgements:
    """The judgements of one catalogue (``Catalog.judgements``); see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _key(self, item_id: str) -> int:
        key = self._store.key_of(_checks.check_id(item_id))
        if key is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return key

    def judge(self, reference: str, *, similar: Sequence[str] = (), dissimilar: Sequence[str] = (),
              clear: Sequence[str] = ()) -> dict[str, int]:
        """Mark ``similar`` and ``dissimilar`` items against ``reference`` (replacing earlier verdicts) and forget
        the verdicts on ``clear``, in one transaction; returns the reference's counts (:meth:`counts`).

        Raises:
            InvalidParameterError: no item named, an id twice (or the reference itself), more than
                :data:`MAX_IDS` ids. ItemNotFoundError: an id that is not an item. ReadOnlyCatalogError.
            Nothing is written when it raises.
        """
        lists = {"similar": _ids("similar", similar), "dissimilar": _ids("dissimilar", dissimilar),
                 "clear": _ids("clear", clear)}
        named = [i for ids in lists.values() for i in ids]
        if not named:
            raise InvalidParameterError("judge needs at least one item id in similar, dissimilar or clear")
        if len(named) > MAX_IDS:
            raise InvalidParameterError(f"at most {MAX_IDS} item ids can be judged at once; got {len(named)}")
        twice = sorted(i for i, n in Counter(named).items() if n > 1)
        if twice:
            raise InvalidParameterError(f"each item can be named once per judgement; named twice: "
                                        f"{', '.join(map(repr, twice[:5]))}")
        if reference in named:
            raise InvalidParameterError(f"the reference {reference!r} cannot be judged against itself")
        with self._store.transaction() as tx:  # ids resolved inside: an item removed meanwhile is not found
            ref, keys = self._key(reference), self._keys(named)
            put_judgements(tx, ref, [(keys[i], True) for i in lists["similar"]] +
                           [(keys[i], False) for i in lists["dissimilar"]])
            clear_judgements(tx, ref, [keys[i] for i in lists["clear"]])
        return self.counts(reference)

    def _keys(self, ids: Sequence[str]) -> dict[str, int]:
        keys = {i: self._store.key_of(i) for i in ids}
        missing = [i for i, k in keys.items() if k is None]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ItemNotFoundError(f"no item with id {', '.join(map(repr, missing[:5]))}{more}")
        return {i: k for i, k in keys.items() if k is not None}

    def forget(self, reference: str) -> int:
        """Forget every judgement about ``reference``; returns how many there were."""
        ref = self._key(reference)
        n = judgement_counts(self._store, ref)[0]
        with self._store.transaction() as tx:
            clear_judgements(tx, ref)
        return n

    def list(self, reference: str | None = None, *, offset: int = 0, limit: int = 100) -> list[Judgement]:
        """Judgements (about ``reference``, or all), a page at a time, by reference then item (insertion order)."""
        check_int("offset", offset, 0, 2**62)
        check_int("limit", limit, 0, 2**62)
        ref = None if reference is None else self._key(reference)
        return [Judgement(*row) for row in judgements(self._store, ref, offset, limit)]

    def counts(self, reference: str | None = None) -> dict[str, int]:
        """``judgements``, ``references`` (items judged against) and ``triplets`` (similar x not similar, summed
        over references), of ``reference`` or of the whole catalogue."""
        ref = None if reference is None else self._key(reference)
        n, refs, triplets = judgement_counts(self._store, ref)
        return {"judgements": n, "references": refs, "triplets": triplets}

    def triplets(self) -> builtins.list[tuple[Item, Item, Item]]:
        """Every (reference, positive, negative) as items (their keys, ids and image paths)."""
        with self._store.lock:  # one state: an item removed between the two reads is in neither
            rows = triplet_keys(self._store)
            items = self._store.items_by_key(sorted({k for row in rows for k in row}))
        return [(items[a], items[b], items[c]) for a, b, c in rows if a in items and b in items and c in items]

    def write_csv(self, out: IO[str], *, paths: bool = False) -> int:
        """Write the triplets as ``query,positive,negative`` rows of item ids (``paths``: of the items' image files,
        absolute, which ``lookalike train triplet --data FILE.csv`` reads); returns the number of rows."""
        rows = self.triplets()
        if paths:
            bare = sorted({item.id for row in rows for item in row if not item.path})
            if bare:
                raise InvalidParameterError(f"{len(bare)} judged item(s) have no image path (e.g. {bare[0]!r}): "
                                            "export ids instead (no --paths)")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["query", "positive", "negative"])
        for row in rows:
            writer.writerow([item.path if paths else item.id for item in row])
        return len(rows)
