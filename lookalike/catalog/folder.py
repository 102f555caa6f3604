"""Incremental indexing of a folder: add new files, re-encode changed ones, drop vanished ones.

A file is *unchanged* when its content hash equals the one stored for its path; a file whose content some item
already holds reuses that item's vectors instead of running the model again (a moved or copied file costs a hash,
not an inference). Every chunk commits on its own, so a killed run keeps all chunks committed before it.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._pipeline import pipelined
from ..encoders.base import progress_bar
from ..images import Skipped, find_images
from . import _ingest
from .types import BatchReport

if TYPE_CHECKING:
    from .catalog import Catalog

_CHUNK = 64


def index_folder(catalog: Catalog, root: Path, *, progress: bool = False) -> BatchReport:
    """Bring the catalogue in line with the images under ``root``; see the module docstring."""
    root = root.absolute()
    paths, skipped = find_images(root)
    store, encoders = catalog._store, catalog._encoders
    known = store.paths_under(str(root))
    known_sha = {path: sha for path, (_key, _id, sha) in known.items()}
    report = BatchReport(skipped=list(skipped))
    prepare = partial(_ingest.prepare_image, encoders=encoders, limits=catalog.limits, known=known_sha)
    bar = progress_bar(len(paths), progress, f"indexing {root.name or root}")
    for chunk in pipelined([str(p) for p in paths], prepare, _CHUNK):
        report.unchanged += [known[o.path][1] for o in chunk if isinstance(o, _ingest.Unchanged)]
        ready = catalog._split_outcomes(chunk, report)
        _write_chunk(catalog, root, ready, known, report)
        bar.update(len(chunk))
    bar.close()
    found = {str(p) for p in paths}
    vanished = [item_id for path, (_key, item_id, _sha) in known.items()
                if path not in found and not os.path.exists(path)]
    report.removed = catalog.remove_many(vanished)
    return report


def _write_chunk(
    catalog: Catalog, root: Path, ready: list[_ingest.Prepared], known: dict[str, tuple[int, str, str]],
    report: BatchReport,
) -> None:
    """Encode what needs it (reusing vectors of identical content), then commit the chunk in one transaction."""
    nums = [num for num, _ in catalog._encoders]
    reuse = {p.sha256: catalog._store.vectors_of_sha(p.sha256, nums) for p in ready}
    to_run = [p for p in ready if reuse[p.sha256] is None]
    fresh = _ingest.run_encoders(to_run, catalog._encoders)
    row_of = {id(p): i for i, p in enumerate(to_run)}
    keys, vectors = [], {num: [] for num in nums}  # type: ignore[var-annotated]
    with catalog._store.lock:  # commit and index update as one step (a concurrent remove waits for both)
        with catalog._store.write() as db:
            for p in ready:
                assert p.path is not None
                key = _upsert(catalog, db, root, p, known, report)
                if key is None:
                    continue
                keys.append(key)
                for num, enc in catalog._encoders:
                    blob = reuse[p.sha256]
                    vectors[num].append(
                        np.frombuffer(blob[num], dtype=enc.dtype) if blob is not None else fresh[num][row_of[id(p)]]
                    )
            stacked = {num: np.stack(v) if v else np.empty((0, 0)) for num, v in vectors.items()}
            catalog._write_vectors(db, keys, stacked)
        catalog._index_add(keys, stacked)


def _upsert(
    catalog: Catalog, db: object, root: Path, p: _ingest.Prepared, known: dict[str, tuple[int, str, str]],
    report: BatchReport,
) -> int | None:
    """Insert a new file or point its existing item at the new content; None (and a Skipped) on an id clash."""
    assert p.path is not None
    if p.path in known:
        _key, item_id, _sha = known[p.path]
        report.updated.append(item_id)
        return catalog.replace_image(db, item_id, p)
    item_id = Path(p.path).relative_to(root).as_posix()
    clash = db.execute("SELECT path FROM items WHERE id = ?", (item_id,)).fetchone()  # type: ignore[attr-defined]
    if clash is not None:
        report.skipped.append(Skipped(p.path, f"id {item_id!r} is already used by {clash[0]}"))
        return None
    report.added.append(item_id)
    return catalog._insert(db, p, item_id, "{}")

