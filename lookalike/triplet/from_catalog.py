"""Triplets from people's judgements stored with a catalogue (issue 14, part 3): ``train triplet --from-catalog``
trains on them, ``eval triplets`` scores the catalogue's encoders and trained models on them.

The judgements (:mod:`lookalike.catalog.judgements`) make a reference's triplets: every (reference, similar item,
not-similar item). Validation holds out whole references (``val_fraction`` of them, seeded), since the triplets of
one reference share its image; with a single reference, triplets are held out instead. On the frozen backbone the
trainer reads the catalogue's stored ``efficientnet-lite0`` vectors (no image is decoded again) when the catalogue
keeps that encoder; otherwise it encodes the items' image files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DatasetError
from .config import TripletConfig
from .data import TripletData, _n_held, triplet_accuracy

if TYPE_CHECKING:
    from ..catalog import Catalog, Item

__all__ = ["TripletScore", "catalog_data", "score_triplets", "split_by_reference"]


def _triplet_rows(cat: Catalog) -> tuple[list[str], list[Path], list[int], np.ndarray]:
    """(item ids, image paths, keys, (M, 3) rows of indices) of the catalogue's triplets."""
    triplets = cat.judgements.triplets()
    if not triplets:
        raise DatasetError(str(cat.path), "the catalogue holds no triplets: mark, for a reference item, at least one "
                           "item similar and one not similar (the web page, POST /triplets or `lookalike judge`)")
    index: dict[int, int] = {}
    items: list[Item] = []
    rows = []
    for triplet in triplets:
        row = []
        for item in triplet:
            if item.key not in index:
                index[item.key] = len(items)
                items.append(item)
            row.append(index[item.key])
        rows.append(row)
    return ([i.id for i in items], [Path(i.path or "") for i in items], [i.key for i in items],
            np.array(rows, dtype=np.int64))


def _require_files(cat: Catalog, names: Sequence[str], paths: Sequence[Path]) -> None:
    """Raise DatasetError unless every judged item's image file exists (needed only when images are encoded)."""
    missing = [n for n, p in zip(names, paths, strict=True) if not str(p) or str(p) == "." or not p.is_file()]
    if missing:
        raise DatasetError(str(cat.path), f"{len(missing)} judged item(s) have no image file any more (e.g. "
                           f"{missing[0]!r}), and their images must be encoded: re-index them or clear their "
                           "judgements")


def _stored(cat: Catalog, spec: str, keys: Sequence[int]) -> np.ndarray | None:
    """The catalogue's stored vectors of encoder ``spec`` for ``keys``, or None when it does not keep them all."""
    if spec not in {e.spec for e in cat.encoders}:
        return None
    try:
        vectors, present = cat.vector_index(spec).vectors(np.asarray(keys, dtype=np.int64))
    except TypeError:  # an index that cannot hand vectors back (an external backend)
        return None
    return vectors if bool(np.all(present)) else None


def split_by_reference(rows: np.ndarray, cfg: TripletConfig) -> tuple[np.ndarray, str]:
    """Which (reference, positive, negative) rows are held out: every triplet of ``cfg.val_fraction`` of the
    references (seeded by ``cfg.seed``), or of the triplets when there is one reference; and how, in words."""
    rng = np.random.default_rng(cfg.seed)
    references = np.unique(rows[:, 0])
    if len(references) >= 2:
        held = rng.permutation(references)[:_n_held(len(references), cfg.val_fraction)]
        return np.isin(rows[:, 0], held), f"{len(held)} of {len(references)} reference items held out"
    is_val = np.zeros(len(rows), dtype=bool)
    is_val[rng.permutation(len(rows))[:_n_held(len(rows), cfg.val_fraction)]] = True
    return is_val, f"{int(is_val.sum())} triplets of the one reference item held out"


def catalog_data(cat: Catalog, cfg: TripletConfig) -> tuple[TripletData, np.ndarray | None]:
    """The catalogue's triplets as training data, and the backbone features to train on (the stored vectors of
    ``cfg.backbone``; None: the trainer encodes the images). Raises DatasetError (no triplets, a missing file)."""
    names, paths, keys, rows = _triplet_rows(cat)
    is_val, split = split_by_reference(rows, cfg)
    source = f"{len(rows)} triplets of {len(names)} items in the catalogue {cat.path} ({split})"
    data = TripletData("triplets", paths, np.full(len(paths), -1, dtype=np.int64), rows[~is_val], rows[is_val],
                       source, names=tuple(names))
    inputs = None if cfg.fine_tune else _stored(cat, cfg.backbone, keys)
    if inputs is None:
        _require_files(cat, names, paths)
    return data, inputs


@dataclass(frozen=True)
class TripletScore:
    """The share of triplets an encoder orders right (reference closer to the similar item than to the other)."""

    encoder: str
    triplets: int
    accuracy: float
    held_out: int = 0  # of a trained model: its held-out triplets that still exist
    held_out_accuracy: float = float("nan")
    baseline_held_out: float = float("nan")  # the catalogue's default encoder on those held-out triplets


def score_triplets(cat: Catalog, models: Sequence[str] = ()) -> list[TripletScore]:
    """Triplet accuracy of each of the catalogue's encoders (on their stored vectors) and of each trained triplet
    model file in ``models`` (its own held-out triplets scored apart, next to the catalogue's default encoder)."""
    from ..encoders.hashed import SketchEncoder
    from .encoder import TripletEncoder

    names, paths, keys, rows = _triplet_rows(cat)
    scores = []
    stored: dict[str, np.ndarray] = {}
    for enc in cat.encoders:
        vectors = None if isinstance(enc, SketchEncoder) else _stored(cat, enc.spec, keys)
        if vectors is None:  # the sketch (an internal stage of codes), or vectors it cannot read back
            continue
        stored[enc.spec] = vectors
        accuracy = triplet_accuracy(vectors, rows, binary=enc.kind != "float")
        scores.append(TripletScore(enc.spec, len(rows), accuracy))
    default = cat.encoder
    position = {name: i for i, name in enumerate(names)}
    current = {(names[a], names[b], names[c]) for a, b, c in rows.tolist()}  # a changed verdict drops a triplet
    for path in models:
        model = TripletEncoder(path)
        backbone = stored.get(model.backbone.spec) if model.graph == "head" else None
        if backbone is None:
            _require_files(cat, names, paths)
        vectors = model.embed_features(backbone) if backbone is not None else model.encode(paths)
        held = [row for row in model.meta.get("held_out", []) if tuple(row) in current]
        held_rows = np.array([[position[n] for n in row] for row in held], dtype=np.int64).reshape(-1, 3)
        base = stored.get(default.spec)
        before = float("nan") if base is None else triplet_accuracy(base, held_rows, binary=default.kind != "float")
        scores.append(TripletScore(model.spec, len(rows), triplet_accuracy(vectors, rows), len(held_rows),
                                   triplet_accuracy(vectors, held_rows), before))
    return scores
