"""Small helpers for building the store's SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

CHUNK = 500  # keys per IN (...) list: well under SQLite's parameter limit


def marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def in_chunks(keys: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(keys), size):
        yield [int(k) for k in keys[start : start + size]]
