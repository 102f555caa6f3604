"""Incremental indexing of a folder: add new files, re-encode changed ones, drop vanished ones.

A file is *unchanged* when its content hash equals the one stored for its path; a file whose content some item
already holds reuses that item's vectors instead of running the model again (a moved or copied file costs a hash,
not an inference). Every chunk commits on its own, so a killed run keeps all chunks committed before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..encoders.base import progress_bar
from ..errors import InvalidParameterError
from ..images import Skipped, find_images
from ..prefetch import pipelined
from ..validation import check_int
from . import _ingest
from ._writer import CHUNK, Writer
from .crop import CROP_SETTING
from .store import Transaction
from .types import BatchReport, Item

if TYPE_CHECKING:
    from ._ray import Encoded


def index_folder(writer: Writer, root: str | os.PathLike[str], *, progress: bool = False, ray: str | None = None,
                 workers: int | None = None) -> BatchReport:
    """Bring the catalogue in line with the images under ``root``; see the module docstring. ``ray``: decode and
    encode on Ray actors (``"local"`` or a cluster's address; ``workers`` of them, default one per CPU), see
    :mod:`._ray`."""
    writer.store.require_writable()
    root = Path(root).absolute()
    if workers is not None:
        check_int("ray_workers", workers, 1, 1024)
    paths, skipped = find_images(root)
    known = writer.store.paths_under(str(root))
    report = BatchReport(skipped=list(skipped))
    hashes = {path: item.sha256 for path, item in known.items()}
    bar = progress_bar(len(paths), progress, f"indexing {root.name or root}")
    for chunk, encoded in _chunks(writer, [str(p) for p in paths], hashes, ray, workers):
        report.unchanged += [known[o.path].id for o in chunk if isinstance(o, _ingest.Unchanged)]
        ready = writer.split_outcomes(chunk, report)
        _write_chunk(writer, root, ready, known, report, encoded)
        bar.update(len(chunk))
    bar.close()
    found = {str(p) for p in paths}
    vanished = [item.id for path, item in known.items() if path not in found and not os.path.exists(path)]
    report.removed = writer.remove_many(vanished)
    return report


def _chunks(writer: Writer, paths: list[str], hashes: dict[str, str], ray: str | None, workers: int | None
            ) -> Iterator[tuple[list[_ingest.Outcome], Encoded | None]]:
    """The outcomes of each chunk of paths: prepared here (threads, a chunk ahead; encoded in _write_chunk), or
    prepared and encoded on Ray actors."""
    if ray is None:
        for chunk in pipelined(paths, partial(writer.prepare, known=hashes), CHUNK):
            yield chunk, None
        return
    from ._ray import RayEncoding

    if writer.localiser() is not None:
        raise InvalidParameterError(f"--ray does not crop yet: this catalogue crops with {CROP_SETTING} "
                                    f"(index without --ray)")
    encoding = RayEncoding(writer.encoders.pairs, writer.limits, writer.encoders.draft, address=ray, workers=workers)
    try:
        for encoded in encoding.map((paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)), hashes):
            yield encoded.outcomes, encoded
    finally:
        encoding.close()


def _write_chunk(writer: Writer, root: Path, ready: list[_ingest.Prepared], known: dict[str, Item],
                 report: BatchReport, encoded: Encoded | None = None) -> None:
    """Encode what needs it (reusing vectors of identical content; ``encoded``: the vectors of every prepared
    image, from Ray), then commit the chunk in one transaction."""
    encoders = writer.encoders.pairs
    reuse = {p.sha256: writer.store.vectors_of_sha(p.sha256, [num for num, _ in encoders]) for p in ready}
    if encoded is None:
        to_run = [p for p in ready if reuse[p.sha256] is None]
        fresh = writer.encode(to_run)
        row_of = {id(p): i for i, p in enumerate(to_run)}
    else:
        fresh, row_of = encoded.vectors, {id(p): i for i, p in enumerate(ready)}
    keys: list[int] = []
    vectors: dict[int, list[np.ndarray]] = {num: [] for num, _ in encoders}
    with writer.store.lock:  # commit and index update as one step (a concurrent remove waits for both)
        with writer.store.transaction() as tx:
            for p in ready:
                key = _upsert(writer, tx, root, p, known, report)
                if key is None:
                    continue
                keys.append(key)
                blob = reuse[p.sha256]
                for num, enc in encoders:
                    vectors[num].append(
                        np.frombuffer(blob[num], dtype=enc.dtype) if blob is not None else fresh[num][row_of[id(p)]])
            stacked = {num: np.stack(v) if v else np.empty((0, 0)) for num, v in vectors.items()}
            writer.put_vectors(tx, keys, stacked)
        writer.indexes.add(keys, stacked)


def _upsert(writer: Writer, tx: Transaction, root: Path, p: _ingest.Prepared, known: dict[str, Item],
            report: BatchReport) -> int | None:
    """Insert a new file or point its existing item at the new content; None (and a Skipped) on an id clash."""
    assert p.path is not None
    if p.path in known:
        item_id = known[p.path].id
        report.updated.append(item_id)
        return writer.replace_image(tx, item_id, p)
    item_id = Path(p.path).relative_to(root).as_posix()
    owner = tx.file_of_id(item_id)
    if owner is not None and owner[0] == p.path:  # the same file, added meanwhile by a concurrent run
        if owner[1] == p.sha256:
            report.unchanged.append(item_id)
            return None
        report.updated.append(item_id)
        return writer.replace_image(tx, item_id, p)
    if owner is not None:
        report.skipped.append(Skipped(p.path, f"id {item_id!r} is already used by {owner[0] or 'an added image'}"))
        return None
    report.added.append(item_id)
    return writer.insert(tx, p, item_id, "{}")
