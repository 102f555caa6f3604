"""Training data of the localiser: a ``boxes.csv`` of images and their true boxes, read strictly, and the
backbone's feature maps of those images (no torch: the maps come from efficientnet-lite0's ONNX graph).

``boxes.csv``: a header naming at least ``path,x,y,w,h`` (other columns, such as the composites' ``label`` and
``product``, are ignored), then one row per image: its path (relative to the CSV's folder, or absolute) and the
product's box in pixels of the upright image (``x, y`` its top-left corner, ``w, h`` its positive size), wholly
inside the image. A row that breaks any of this is refused with its line number; nothing is trained on guesses.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError, InvalidParameterError
from ..images import DEFAULT_LIMITS, Box, ImageLimits, load_image
from .config import LocaliserConfig
from .windows import integral

COLUMNS = ("path", "x", "y", "w", "h")
MAX_ROWS = 10_000_000
__all__ = ["BoxData", "backbone_maps", "load_box_data", "prepare", "read_boxes"]


@dataclass(frozen=True)
class BoxData:
    """Images and their true boxes: ``boxes`` (n, 4) as (x0, y0, x1, y1) shares of each image's sides; ``ii`` the
    integral images of their feature maps (see :func:`lookalike.localise.windows.integral`)."""

    source: str
    paths: tuple[str, ...]
    boxes: np.ndarray
    ii: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def read_boxes(boxes_csv: str | os.PathLike[str]) -> list[tuple[str, Box, int]]:
    """(path, box, line number) of every row of a ``boxes.csv`` (module docstring). Raises InvalidParameterError."""
    path = Path(boxes_csv)
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no such boxes.csv" + (" (a folder)" if path.is_dir() else ""))
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InvalidParameterError(f"{path}: the header must name the columns {','.join(COLUMNS)} "
                                            f"(missing: {', '.join(missing)})")
            where = [header.index(c) for c in COLUMNS]
            rows = []
            for line, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                rows.append(_row(path, line, row, where))
                if len(rows) > MAX_ROWS:
                    raise InvalidParameterError(f"{path}: more than {MAX_ROWS:,} rows")
    except (UnicodeDecodeError, csv.Error) as err:
        raise InvalidParameterError(f"{path}: not a readable CSV file ({err})") from err
    if not rows:
        raise InvalidParameterError(f"{path}: no rows (a header, then path,x,y,w,h per image)")
    return rows


def _row(csv_path: Path, line: int, row: list[str], where: list[int]) -> tuple[str, Box, int]:
    if len(row) <= max(where):
        raise InvalidParameterError(f"{csv_path}, line {line}: expected the columns {','.join(COLUMNS)}. "
                                    f"Got {len(row)} fields.")
    name, *numbers = (row[i].strip() for i in where)
    if not name:
        raise InvalidParameterError(f"{csv_path}, line {line}: an empty path")
    try:
        x, y, w, h = (int(v, 10) for v in numbers)
    except ValueError as err:
        raise InvalidParameterError(f"{csv_path}, line {line}: x, y, w, h must be integers. Got "
                                    f"{','.join(numbers)!r}.") from err
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise InvalidParameterError(f"{csv_path}, line {line}: a box needs x, y >= 0 and w, h > 0. Got "
                                    f"{x},{y},{w},{h}.")
    image = Path(name) if os.path.isabs(name) else csv_path.parent / name
    return str(image), Box(x, y, w, h), line


def prepare(image: Image.Image, cfg: LocaliserConfig) -> np.ndarray:
    """One RGB image → the uint8 (size, size, 3) array the backbone's map graph reads."""
    return np.asarray(image.resize((cfg.size, cfg.size), Image.Resampling.BILINEAR, reducing_gap=3.0),
                      dtype=np.uint8)


def backbone_maps(batch: np.ndarray, cfg: LocaliserConfig, session: Any = None) -> np.ndarray:
    """uint8 (n, size, size, 3) → float32 feature maps (n, C, grid, grid) of ``cfg.layer``."""
    from ..encoders.efficientnet import feature_map_session

    session = feature_map_session(cfg.layer) if session is None else session
    (out,) = session.run(None, {"images": np.ascontiguousarray(batch, dtype=np.uint8)})
    return np.asarray(out, dtype=np.float32)


def load_box_data(boxes_csv: str | os.PathLike[str], cfg: LocaliserConfig, *, limits: ImageLimits = DEFAULT_LIMITS,
                  progress: bool = False, batch: int = 32) -> BoxData:
    """Read ``boxes.csv``, decode every image, check its box lies inside it, and compute the feature maps."""
    rows = read_boxes(boxes_csv)
    from ..encoders.base import progress_bar

    paths: list[str] = []
    shares = np.empty((len(rows), 4), dtype=np.float32)
    parts: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    bar = progress_bar(len(rows), progress, "feature maps")
    for i, (path, box, line) in enumerate(rows):
        try:
            loaded = load_image(path, limits=limits, draft=(cfg.size, cfg.size))
        except ImageError as err:
            raise InvalidParameterError(f"{boxes_csv}, line {line}: {err}") from err
        if box.x + box.w > loaded.width or box.y + box.h > loaded.height:
            raise InvalidParameterError(f"{boxes_csv}, line {line}: box {box} (x,y,w,h) is not inside the "
                                        f"{loaded.width}x{loaded.height} image {path}")
        shares[i] = (box.x / loaded.width, box.y / loaded.height, (box.x + box.w) / loaded.width,
                     (box.y + box.h) / loaded.height)
        paths.append(path)
        pending.append(prepare(loaded.image, cfg))
        if len(pending) == batch or i == len(rows) - 1:
            parts.append(integral(backbone_maps(np.stack(pending), cfg)))
            bar.update(len(pending))
            pending = []
    bar.close()
    return BoxData(str(boxes_csv), tuple(paths), shares, np.concatenate(parts))


def sample_crops(boxes: np.ndarray, coords: np.ndarray, cfg: LocaliserConfig, rng: np.random.Generator,
                 images: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's crops: (image index, crop index, label 1/0/-1 (object, background, neither), regression
    target) for ``cfg.per_image`` crops of each image in ``images``: up to half object crops (the image's best
    crop counts as one when no crop reaches ``pos_iou``), the rest background or in between."""
    from .windows import encode_offsets, iou

    img_out, crop_out, label_out, target_out = [], [], [], []
    half = cfg.per_image // 2
    for i in images:
        overlap = iou(coords, boxes[i])
        pos = np.flatnonzero(overlap >= cfg.pos_iou)
        if len(pos) == 0:
            pos = np.array([int(np.argmax(overlap))])
        rest = np.setdiff1d(np.arange(len(coords)), pos)
        take_pos = rng.choice(pos, size=min(half, len(pos)), replace=False)
        take_rest = rng.choice(rest, size=min(cfg.per_image - len(take_pos), len(rest)), replace=False)
        picks = np.concatenate([take_pos, take_rest]).astype(np.int64)
        labels = np.where(np.isin(picks, pos), 1, np.where(overlap[picks] < cfg.neg_iou, 0, -1))
        img_out.append(np.full(len(picks), i, dtype=np.int64))
        crop_out.append(picks)
        label_out.append(labels.astype(np.int64))
        target_out.append(encode_offsets(coords[picks], boxes[i]))
    return (np.concatenate(img_out), np.concatenate(crop_out), np.concatenate(label_out),
            np.concatenate(target_out))
