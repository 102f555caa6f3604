"""Where triplets come from, the held-out validation triplets, and the training batches (torch-free).

``--data`` is one of:

- a folder with one subfolder per class (``DIR/<class>/...``, searched recursively; files recognised by content):
  a positive is another image of the query's class, a negative an image of another class. Every class needs at
  least 2 images; an empty class folder is refused (it is usually a mistake, and it would hold no positives);
- a CSV of triplets, one ``query,positive,negative`` row each;
- with ``--pairs``, a CSV of similar pairs, one ``query,positive`` row each. The pairs are joined into groups
  (connected components: a ~ b and b ~ c puts a, b, c in one group) and a query's negatives are the batch's images
  of other groups; at least two groups are needed.

In a CSV, paths are relative to the CSV's folder (absolute paths are taken as they are); an optional first row of
column names (``query,positive,negative``; ``anchor``/``reference``, ``similar``, ``dissimilar`` also read),
blank lines and lines starting with ``#`` are skipped. Every file is checked (exists, is an image by its first
bytes) before anything is encoded; a bad row is a :class:`~lookalike.errors.DatasetError` naming the CSV, the row
and the file.

A batch is ``(ids, pairs, negatives)``: the images of its slots (indices into ``TripletData.paths``), the
(query slot, positive slot) pairs, and a boolean matrix ``negatives[q, j]``: slot ``j`` may be the negative of query
slot ``q``. Class folders draw ``per_class`` images of a class at a time (so every batch holds positives), pairs
take both directions of each row, and CSV triplets allow only the row's own negative (the CSV says nothing about how
one row's images relate to another's query), so mining then picks among the given triplets.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, DatasetNotFoundError, InvalidParameterError
from .config import TripletConfig

__all__ = ["Batch", "TripletData", "batches", "class_data", "load_triplet_data", "triplet_accuracy"]
HEADER_WORDS = {"query", "anchor", "reference", "positive", "similar", "negative", "dissimilar"}
VAL_PER_QUERY = 4  # validation triplets drawn per held-out query image (class folders)

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class TripletData:
    """The images and how they form triplets.

    Attributes:
        kind: ``"classes"``, ``"triplets"`` or ``"pairs"``.
        paths: every image once; features and embeddings are computed per path.
        labels: (N,) int64 class or group of each image; -1 for CSV triplets (no groups).
        train: ``"classes"``: (M,) ids of the training images; ``"pairs"``: (M, 2) rows; ``"triplets"``: (M, 3).
        val: (V, 3) held-out (query, positive, negative) image ids.
        source: what was read, for logs.
        classes: the class names by label (class folders), else empty.
        names: the catalogue item id of each image (``--from-catalog``), else empty; the model file then records
            its held-out triplets by item id (``lookalike eval triplets`` scores them).

    Data made by :func:`class_data` from labels alone has no ``paths`` (its items are rows of a feature array);
    ``labels`` always has one entry per item.
    """

    kind: str
    paths: list[Path]
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    source: str
    classes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def triplet_accuracy(vectors: np.ndarray, triplets: np.ndarray, *, binary: bool = False) -> float:
    """Share of (q, p, n) rows of ``triplets`` with cos(q, p) > cos(q, n) for unit ``vectors`` (NaN if none);
    ``binary``: packed codes (uint8 rows), compared by Hamming distance (fewer differing bits is closer)."""
    if len(triplets) == 0:
        return float("nan")
    v = np.unpackbits(np.asarray(vectors, dtype=np.uint8), axis=1) * 2.0 - 1.0 if binary else \
        np.asarray(vectors, dtype=np.float64)
    q, p, n = (v[triplets[:, i]] for i in range(3))
    return float(np.mean(np.sum(q * p, axis=1) > np.sum(q * n, axis=1)))


def load_triplet_data(data: str | Path, cfg: TripletConfig, *, pairs: bool = False) -> TripletData:
    """Read ``data`` (a class-per-folder tree, or a CSV of triplets or, with ``pairs``, of pairs) and split off
    ``cfg.val_fraction`` of it (seeded by ``cfg.seed``) as validation triplets.

    Raises:
        DatasetNotFoundError: ``data`` does not exist. DatasetError: anything else wrong with it (see the module
            docstring).
    """
    path = Path(data)
    if not path.exists():
        raise DatasetNotFoundError(str(path), "no such file or folder (--data expects class folders or a CSV)")
    rng = np.random.default_rng(cfg.seed)
    if path.is_dir():
        if pairs:
            raise DatasetError(str(path), "--pairs expects a CSV of similar pairs, not a folder")
        return _from_folder(path, cfg.val_fraction, rng)
    if not path.is_file():
        raise DatasetError(str(path), "neither a folder nor a regular file")
    paths, rows = _read_csv(path, 2 if pairs else 3)
    if pairs:
        return _from_pairs(path, paths, rows, cfg.val_fraction, rng)
    n_val = _n_held(len(rows), cfg.val_fraction)
    order = rng.permutation(len(rows))
    val, train = rows[np.sort(order[:n_val])], rows[np.sort(order[n_val:])]
    return TripletData("triplets", paths, np.full(len(paths), -1, dtype=np.int64), train, val,
                       f"{len(rows)} triplets of {len(paths)} images in {path}")


def _n_held(n: int, fraction: float) -> int:
    """Rows to hold out: round(fraction * n), at least 1 when fraction > 0, and at least one row left to train."""
    if fraction <= 0 or n < 2:
        return 0
    return min(max(1, round(fraction * n)), n - 1)


# -- class folders ----------------------------------------------------------------------------------------------


def _from_folder(root: Path, fraction: float, rng: np.random.Generator) -> TripletData:
    from ..datasets import load_image_folder

    folder = load_image_folder(root)
    labels = np.asarray(folder.labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(folder.class_names))
    for name, count in zip(folder.class_names, counts, strict=True):
        if count < 2:
            what = "holds no images" if count == 0 else "holds 1 image"
            raise DatasetError(str(root / name), f"class folder {what}; triplets need at least 2 per class "
                               "(a query and its positive): add images or remove the folder")
    if len(folder.class_names) < 2:
        raise DatasetError(str(root), f"one class only ({folder.class_names[0]!r}); triplets need negatives from "
                           "a second class folder")
    train, val = _split_classes(labels, fraction, rng)
    skipped = f", {len(folder.skipped)} non-image file(s) skipped" if folder.skipped else ""
    return TripletData("classes", list(folder.paths), labels, train, val,
                       f"{len(labels)} images in {len(counts)} classes under {root}{skipped}",
                       tuple(folder.class_names))


def class_data(labels: np.ndarray, cfg: TripletConfig, *, classes: tuple[str, ...] = (),
               source: str | None = None) -> TripletData:
    """Triplet data of items known only by their class labels (rows of a feature array: no files), split into
    training images and validation triplets exactly as :func:`load_triplet_data` splits class folders with the
    same labels and ``cfg`` (so training on the folders' features gives the same model).

    Raises:
        InvalidParameterError: ``labels`` is not a 1-d array of non-negative integers, or a class has fewer than
            2 items, or there is only one class.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu" or (lab.size and lab.min() < 0):
        raise InvalidParameterError(f"labels must be a 1-d array of non-negative integers. Got an array of dtype "
                                    f"{lab.dtype} and shape {lab.shape}.")
    lab = lab.astype(np.int64)
    counts = np.bincount(lab) if lab.size else np.zeros(0, dtype=np.int64)
    present = np.flatnonzero(counts)
    if len(present) < 2 or counts[present].min() < 2:
        raise InvalidParameterError("triplets need at least 2 classes of at least 2 items each. Got class sizes "
                                    f"{dict(zip(present.tolist(), counts[present].tolist(), strict=True))}.")
    train, val = _split_classes(lab, cfg.val_fraction, np.random.default_rng(cfg.seed))
    return TripletData("classes", [], lab, train, val,
                       source or f"{len(lab):,} items in {len(present)} classes", tuple(classes))


def _split_classes(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, validation triplets): ``fraction`` of each class held out (at least 2 items of a class, and
    only while 2 stay to train), seeded by ``rng``."""
    held = np.zeros(len(labels), dtype=bool)
    for c, count in enumerate(np.bincount(labels)):
        h = round(fraction * count) if fraction > 0 else 0
        h = 2 if h == 1 else h
        if h and count - h >= 2:
            members = np.flatnonzero(labels == c)
            held[rng.choice(members, h, replace=False)] = True
    return np.flatnonzero(~held), _class_triplets(np.flatnonzero(held), labels, rng)


def _class_triplets(ids: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """VAL_PER_QUERY seeded (query, positive, negative) triplets for each held-out image with a held-out positive."""
    out = []
    for q in ids:
        same = ids[(labels[ids] == labels[q]) & (ids != q)]
        other = ids[labels[ids] != labels[q]]
        if len(same) and len(other):
            out += [(q, rng.choice(same), rng.choice(other)) for _ in range(VAL_PER_QUERY)]
    return np.array(out, dtype=np.int64).reshape(-1, 3)


# -- CSV files --------------------------------------------------------------------------------------------------


def _read_csv(csv_path: Path, width: int) -> tuple[list[Path], np.ndarray]:
    """The CSV's rows as image ids (rows, width) and the unique image paths, every file checked."""
    from ..images import is_image_file

    what = "pairs (query, positive)" if width == 2 else "triplets (query, positive, negative)"
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise DatasetError(str(csv_path), f"not a UTF-8 text CSV of {what} ({err.reason})") from err
    except (OSError, csv.Error) as err:
        raise DatasetError(str(csv_path), f"cannot be read as a CSV of {what}: {err}") from err
    ids: dict[Path, int] = {}
    rows: list[list[int]] = []
    for number, cells in enumerate(lines, 1):
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and all(c.lower() in HEADER_WORDS for c in cells):
            continue
        where = f"row {number}"
        if len(cells) != width:
            hint = " (a CSV of pairs needs --pairs)" if len(cells) == 2 and width == 3 else ""
            raise DatasetError(str(csv_path), f"{where} has {len(cells)} field(s); expected {width}: {what}{hint}")
        if not all(cells):
            raise DatasetError(str(csv_path), f"{where} has an empty field")
        row = []
        for cell in cells:
            image = (csv_path.parent / cell) if not Path(cell).is_absolute() else Path(cell)
            if image not in ids:
                if not image.exists():
                    raise DatasetError(str(csv_path), f"{where}: {cell}: no such file (paths are relative to "
                                       "the CSV's folder)")
                if not is_image_file(image):
                    reason = "a folder" if image.is_dir() else "not an image (by its first bytes) or unreadable"
                    raise DatasetError(str(csv_path), f"{where}: {cell}: {reason}")
                ids[image] = len(ids)
            row.append(ids[image])
        if len(set(row)) < len(row):
            raise DatasetError(str(csv_path), f"{where} names one image twice; a triplet needs distinct images")
        rows.append(row)
    if not rows:
        raise DatasetError(str(csv_path), f"no rows; expected a CSV of {what}")
    return list(ids), np.array(rows, dtype=np.int64)


def _from_pairs(csv_path: Path, paths: list[Path], rows: np.ndarray, fraction: float,
                rng: np.random.Generator) -> TripletData:
    labels = _components(len(paths), rows)
    n_groups = int(labels.max()) + 1
    if n_groups < 2:
        raise DatasetError(str(csv_path), "the pairs join every image into one group of similar images; "
                           "negatives need at least two unconnected groups")
    n_val = _n_held(len(rows), fraction)
    order = rng.permutation(len(rows))
    held, train = rows[np.sort(order[:n_val])], rows[np.sort(order[n_val:])]
    val = []
    for q, p in held:  # a negative: any image of another group
        val.append((q, p, rng.choice(np.flatnonzero(labels != labels[q]))))
    return TripletData("pairs", paths, labels, train, np.array(val, dtype=np.int64).reshape(-1, 3),
                       f"{len(rows)} pairs of {len(paths)} images in {n_groups} groups in {csv_path}")


def _components(n: int, rows: np.ndarray) -> np.ndarray:
    """Connected components of the pair graph, numbered in order of first appearance."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in rows:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [find(i) for i in range(n)]
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(r, len(numbering)) for r in roots], dtype=np.int64)


# -- batches ----------------------------------------------------------------------------------------------------


def batches(data: TripletData, cfg: TripletConfig, rng: np.random.Generator) -> Iterator[Batch]:
    """One epoch of training batches, in an order drawn from ``rng`` (see the module docstring)."""
    if data.kind == "classes":
        yield from _class_batches(data, cfg, rng)
        return
    width = 2 if data.kind == "pairs" else 3
    per = max(1, cfg.batch_size // width)
    order = rng.permutation(len(data.train))
    for start in range(0, len(order), per):
        rows = data.train[np.sort(order[start:start + per])]
        ids = rows.reshape(-1)
        slots = np.arange(len(rows)) * width
        if width == 2:
            pairs = np.concatenate([np.stack([slots, slots + 1], 1), np.stack([slots + 1, slots], 1)])
            groups = data.labels[ids]
            negatives = groups[:, None] != groups[None, :]
        else:
            pairs = np.stack([slots, slots + 1], 1)
            negatives = np.zeros((len(ids), len(ids)), dtype=bool)
            negatives[slots, slots + 2] = True
        yield ids, pairs, negatives


def _class_batches(data: TripletData, cfg: TripletConfig, rng: np.random.Generator) -> Iterator[Batch]:
    ids = data.train
    labels = data.labels[ids]
    chunks: list[np.ndarray] = []
    k = cfg.per_class
    for c in np.unique(labels):
        members = ids[labels == c][rng.permutation(int(np.sum(labels == c)))]
        parts = [members[i:i + k] for i in range(0, len(members), k)]
        if len(parts) > 1 and len(parts[-1]) < 2:  # a lone image has no positive: it joins the chunk before
            last = parts.pop()
            parts[-1] = np.concatenate([parts[-1], last])
        chunks += parts
    batch: list[np.ndarray] = []
    size = 0
    for i in rng.permutation(len(chunks)):
        if size and size + len(chunks[i]) > cfg.batch_size:
            yield _class_batch(np.concatenate(batch), data.labels)
            batch, size = [], 0
        batch.append(chunks[i])
        size += len(chunks[i])
    if batch:
        yield _class_batch(np.concatenate(batch), data.labels)


def _class_batch(ids: np.ndarray, labels: np.ndarray) -> Batch:
    lab = labels[ids]
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    return ids, np.argwhere(same), lab[:, None] != lab[None, :]
