"""Suspected label errors: labelled items whose nearest neighbours in the trained embedding carry another class.

The fashion prototype's "misleading and wrong training samples". For every item, its ``k`` nearest other items
by cosine (exact, in blocks, on the training device) vote; the item's *disagreement* is the share of them whose
label differs from its own. Items with a disagreement of at least ``share`` (default 8 of 10) are suspects, most
disagreeing first (ties: the highest mean similarity to the disagreeing neighbours first, then by item). The
neighbours' most common label is the class the item looks like. A suspect is a candidate for a human to look at,
not a verdict: an ambiguous image (a shirt that looks like a T-shirt) is flagged as surely as a mislabelled one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError
from ..validation import check_int

__all__ = ["DEFAULT_K", "DEFAULT_SHARE", "Suspect", "label_suspects", "write_suspects"]
DEFAULT_K = 10
DEFAULT_SHARE = 0.8
BLOCK = 2048  # query rows per similarity block


@dataclass(frozen=True)
class Suspect:
    """One suspected label error.

    Attributes:
        item: the item's index (a row of the vectors, an image of ``TripletData.paths``).
        label: its own label. looks_like: the most common label among its neighbours (the smallest on a tie).
        disagreement: share of its ``k`` neighbours labelled otherwise. similarity: mean cosine to those.
        neighbours: the ``k`` neighbours' indices, nearest first.
    """

    item: int
    label: int
    looks_like: int
    disagreement: float
    similarity: float
    neighbours: tuple[int, ...]


def label_suspects(vectors: np.ndarray, labels: np.ndarray, *, k: int = DEFAULT_K, share: float = DEFAULT_SHARE,
                   device: str = "cpu") -> list[Suspect]:
    """The suspects among unit ``vectors`` (n, d) with ``labels`` (n,), most disagreeing first (see the module
    docstring). Needs torch (``device``: where the similarity blocks are computed).

    Raises:
        InvalidParameterError: mismatched shapes, ``k`` not in [1, n - 1], ``share`` not in (0, 1].
    """
    import torch

    x = np.asarray(vectors, dtype=np.float32)
    lab = np.asarray(labels).astype(np.int64, copy=False)
    if x.ndim != 2 or lab.shape != (len(x),):
        raise InvalidParameterError(f"vectors (n, d) and labels (n,) must match. Got {x.shape} and {lab.shape}.")
    check_int("k", k, 1, max(1, len(x) - 1))
    if not (isinstance(share, int | float) and not isinstance(share, bool) and 0 < share <= 1):
        raise InvalidParameterError(f"The 'share' parameter must be a real number in (0, 1]. Got {share!r}.")
    if len(x) < 2:
        return []
    db = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    sims = np.empty((len(x), k), dtype=np.float32)
    rows = np.empty((len(x), k), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(x), BLOCK):
            block = db[start:start + BLOCK] @ db.T
            block[torch.arange(len(block)), torch.arange(start, start + len(block))] = -torch.inf  # not itself
            top = block.topk(k, dim=1)  # ties: torch's order; exact ties between distinct items are rare
            sims[start:start + len(block)] = top.values.cpu().numpy()
            rows[start:start + len(block)] = top.indices.cpu().numpy()
    other = lab[rows] != lab[:, None]
    disagreement = other.mean(axis=1)
    flagged = np.flatnonzero(disagreement >= share - 1e-9)
    mean_sim = np.where(other, sims, 0).sum(axis=1) / np.maximum(other.sum(axis=1), 1)
    order = flagged[np.lexsort((flagged, -mean_sim[flagged], -disagreement[flagged]))]
    out = []
    for i in order:
        votes = np.bincount(lab[rows[i]])
        out.append(Suspect(int(i), int(lab[i]), int(np.argmax(votes)), float(disagreement[i]), float(mean_sim[i]),
                           tuple(int(r) for r in rows[i])))
    return out


def write_suspects(path: str | Path, suspects: Sequence[Suspect], *, paths: Sequence[Path] = (),
                   classes: Sequence[str] = ()) -> Path:
    """A CSV of the suspects, one row each in their order: ``rank, item, path, label, looks_like, disagreement,
    similarity`` (``path`` empty without ``paths``; labels as class names when ``classes`` are given). Written to
    a temporary file, then renamed."""
    path = Path(path)

    def name(label: int) -> str:
        return classes[label] if label < len(classes) else str(label)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rank", "item", "path", "label", "looks_like", "disagreement", "similarity"])
        for rank, s in enumerate(suspects, 1):
            w.writerow([rank, s.item, str(paths[s.item]) if s.item < len(paths) else "", name(s.label),
                        name(s.looks_like), f"{s.disagreement:.2f}", f"{s.similarity:.4f}"])
    os.replace(tmp, path)
    return path
