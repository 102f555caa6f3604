"""The Brown / UBC Photo Tourism patch data (Brown, Hua & Winder, "Discriminative learning of local image
descriptors", PAMI 2011): the Liberty, Notre Dame and Yosemite folders, read as published.

A folder holds:

- ``patchNNNN.bmp`` (``patch0000.bmp``, ``patch0001.bmp``, ...): 1024×1024 grey bitmaps, each a 16×16 grid of
  64×64 patches in row-major order; patch i is sheet i // 256, row (i % 256) // 16, column i % 16. The last sheet
  may be partly filled;
- ``info.txt``: one line per patch, ``<3D point id> <unused>``;
- ``m50_<n>_<n>_0.txt``: pairs, one a line: ``patch id 1, 3D point 1, unused, patch id 2, 3D point 2, unused,
  unused``; a pair matches when its two 3D points agree. ``m50_100000_100000_0.txt`` holds the standard 100,000
  test pairs (50,000 matching).

:func:`load_brown_pairs` reads a match file and only the sheets its patches lie on; :func:`load_brown_patches`
reads every patch (unlabelled training data for BinGAN). Patches are kept at 64×64; ``PatchPairs.small()`` gives
the paper's 32×32.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DatasetError, DatasetNotFoundError
from .pairs import PATCH, PatchPairs

__all__ = ["TEST_PAIRS", "is_brown_folder", "load_brown_pairs", "load_brown_patches", "read_info"]

TEST_PAIRS = "m50_100000_100000_0.txt"
SHEET = 1024
PER_ROW = SHEET // PATCH
PER_SHEET = PER_ROW * PER_ROW
_SHEET_NAME = re.compile(r"patch(\d{4})\.bmp$")


def is_brown_folder(folder: str | Path) -> bool:
    """Whether ``folder`` looks like a Brown folder (``info.txt`` and ``patch0000.bmp``)."""
    f = Path(folder)
    return (f / "info.txt").is_file() and (f / "patch0000.bmp").is_file()


def _check_folder(folder: str | Path) -> Path:
    f = Path(folder)
    if not f.exists():
        raise DatasetNotFoundError(str(f), "no such folder (a Brown / UBC Photo Tourism folder holds "
                                   "patchNNNN.bmp sheets, info.txt and m50_*.txt)")
    if not f.is_dir():
        raise DatasetError(str(f), "not a folder (expected a Brown / UBC Photo Tourism folder)")
    if not (f / "info.txt").is_file():
        raise DatasetError(str(f), "no info.txt: not a Brown / UBC Photo Tourism folder")
    return f


def read_info(folder: str | Path) -> np.ndarray:
    """(n,) int64: the 3D point id of every patch, from ``info.txt``."""
    f = _check_folder(folder)
    path = f / "info.txt"
    ids = []
    with open(path, encoding="ascii", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not all(_is_int(x) for x in fields):
                raise DatasetError(str(path), f"line {number}: expected two integers '<3D point> <unused>'. "
                                   f"Got {line.strip()[:60]!r}")
            ids.append(int(fields[0]))
    if not ids:
        raise DatasetError(str(path), "no patches listed")
    return np.asarray(ids, dtype=np.int64)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _sheets(folder: Path, n_patches: int) -> list[Path]:
    sheets = sorted(p for p in folder.iterdir() if _SHEET_NAME.search(p.name))
    need = -(-n_patches // PER_SHEET)
    names = [f"patch{i:04d}.bmp" for i in range(need)]
    have = {p.name for p in sheets}
    missing = [n for n in names if n not in have]
    if missing:
        raise DatasetError(str(folder), f"info.txt lists {n_patches} patches, which need {need} sheets; "
                           f"{missing[0]} is missing")
    return [folder / n for n in names]


def _read_sheet(path: Path) -> np.ndarray:
    """(256, 64, 64) uint8: the patches of one sheet, row-major."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            grey = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as err:
        raise DatasetError(str(path), f"not a readable bitmap: {err}") from err
    if grey.shape != (SHEET, SHEET):
        raise DatasetError(str(path), f"a sheet must be {SHEET}x{SHEET} pixels. Got {grey.shape[1]}x{grey.shape[0]}")
    return np.ascontiguousarray(grey.reshape(PER_ROW, PATCH, PER_ROW, PATCH).transpose(0, 2, 1, 3)
                                .reshape(PER_SHEET, PATCH, PATCH))


def _read_patches(folder: Path, ids: np.ndarray, n_patches: int) -> np.ndarray:
    sheets = _sheets(folder, n_patches)
    out = np.empty((len(ids), PATCH, PATCH), dtype=np.uint8)
    for sheet in np.unique(ids // PER_SHEET):
        rows = np.flatnonzero(ids // PER_SHEET == sheet)
        out[rows] = _read_sheet(sheets[int(sheet)])[ids[rows] % PER_SHEET]
    return out


def load_brown_patches(folder: str | Path, limit: int | None = None, seed: int = 0) -> np.ndarray:
    """(n, 64, 64) uint8: every patch of the folder (or a seeded ``limit`` of them), for unsupervised training."""
    f = _check_folder(folder)
    n = len(read_info(f))
    ids = np.arange(n)
    if limit is not None and limit < n:
        ids = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
    return _read_patches(f, ids, n)


def load_brown_pairs(folder: str | Path, pairs: str = TEST_PAIRS) -> PatchPairs:
    """The pairs of match file ``pairs`` (default: the 100k test pairs) with their patches.

    Raises:
        DatasetNotFoundError: no folder. DatasetError: no info.txt or match file, a malformed line, a patch id past
        the last patch, a 3D point that disagrees with info.txt, a missing sheet or one of the wrong size.
    """
    f = _check_folder(folder)
    point_of = read_info(f)
    path = f / pairs
    if not path.is_file():
        found = sorted(p.name for p in f.glob("m50_*.txt"))
        raise DatasetError(str(path), f"no such match file (here: {', '.join(found) or 'none'})")
    rows = []
    with open(path, encoding="ascii", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 7 or not all(_is_int(x) for x in fields):
                raise DatasetError(str(path), f"line {number}: expected 7 integers 'patch1 point1 _ patch2 point2 _ "
                                   f"_'. Got {line.strip()[:60]!r}")
            a, pa, _, b, pb, _, _ = (int(x) for x in fields)
            for patch, point in ((a, pa), (b, pb)):
                if not 0 <= patch < len(point_of):
                    raise DatasetError(str(path), f"line {number}: patch {patch} is past the last patch "
                                       f"({len(point_of) - 1}) of info.txt")
                if point_of[patch] != point:
                    raise DatasetError(str(path), f"line {number}: patch {patch} shows 3D point {point_of[patch]} "
                                       f"in info.txt, not {point}")
            rows.append((a, b, pa == pb))
    if not rows:
        raise DatasetError(str(path), "no pairs in the match file")
    table = np.asarray(rows, dtype=np.int64)
    unique, inverse = np.unique(table[:, :2], return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    patches = _read_patches(f, unique, len(point_of))
    return PatchPairs(f"brown:{f.name}", patches, first=inverse[:, 0].astype(np.int64),
                      second=inverse[:, 1].astype(np.int64), is_match=table[:, 2].astype(bool))
