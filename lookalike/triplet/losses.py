"""The triplet hinge loss with online mining inside a batch (torch).

For every (query, positive) pair of a batch, with D the batch's pairwise distances and the candidate negatives of
the query given by a boolean mask:

- ``hard``: the closest candidate negative n; the pair's loss ``max(0, g + D(q, p) - D(q, n))``;
- ``semi-hard``: the closest candidate farther than the positive (``D(q, n) > D(q, p)``); when there is none, the
  farthest candidate (FaceNet's rule as TensorFlow Addons' ``triplet_semihard_loss`` implements it);
- ``all``: every candidate, and the loss averages the triplets whose hinge is still positive (Hermans et al.'s
  "batch all": averaging over every triplet lets the easy ones drown the rest).

``hard`` and ``semi-hard`` average over the pairs that have at least one candidate. A batch without any valid
triplet gives a zero loss (still connected to the graph, so ``backward`` works).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["distances", "triplet_loss"]


def distances(x: torch.Tensor, distance: str) -> torch.Tensor:
    """(n, n) distances between unit rows: ``||a - b||`` (euclidean) or ``1 - cos`` (angular)."""
    cos = (x @ x.T).clamp(-1.0, 1.0)
    if distance == "angular":
        return 1.0 - cos
    # ||a-b||² = 2 - 2cos on unit rows; the floor keeps the gradient of sqrt finite on the diagonal
    return (2.0 - 2.0 * cos).clamp_min(1e-12).sqrt()


def triplet_loss(x: torch.Tensor, pairs: torch.Tensor, negatives: torch.Tensor, *, margin: float,
                 distance: str = "euclidean", mining: str = "semi-hard") -> tuple[torch.Tensor, dict[str, Any]]:
    """The mined hinge loss of a batch of unit embeddings ``x`` (n, d).

    Args:
        pairs: (m, 2) long tensor of (query slot, positive slot).
        negatives: (n, n) bool tensor; ``negatives[q, j]``: slot j may be the negative of query slot q.
        margin: g. distance: ``"euclidean"`` or ``"angular"``. mining: ``"semi-hard"``, ``"hard"`` or ``"all"``.

    Returns:
        (loss, stats): stats has ``triplets`` (how many the loss averages) and ``active`` (the share of mined
        triplets with a positive hinge).
    """
    d = distances(x, distance)
    q, p = pairs[:, 0], pairs[:, 1]
    d_qp = d[q, p]
    d_qn = d[q]
    cand = negatives[q]
    valid = cand.any(dim=1)
    if mining == "all":
        hinge = (margin + d_qp[:, None] - d_qn).clamp_min(0.0) * cand
        active = (hinge > 0) & cand
        count = int(active.sum())
        loss = hinge.sum() / max(count, 1)
        total = int(cand.sum())
        return loss, {"triplets": count, "active": count / total if total else 0.0}
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    hardest = torch.where(cand, d_qn, inf).min(dim=1).values
    if mining == "hard":
        d_neg = hardest
    elif mining == "semi-hard":
        semi = cand & (d_qn > d_qp[:, None])
        closest_semi = torch.where(semi, d_qn, inf).min(dim=1).values
        farthest = torch.where(cand, d_qn, -inf).max(dim=1).values
        d_neg = torch.where(semi.any(dim=1), closest_semi, farthest)
    else:
        raise ValueError(f"unknown mining {mining!r}")
    hinge = (margin + d_qp - torch.where(valid, d_neg, torch.zeros_like(d_neg))).clamp_min(0.0)
    n_valid = int(valid.sum())
    loss = (hinge * valid).sum() / max(n_valid, 1)
    n_active = int(((hinge > 0) & valid).sum())
    return loss, {"triplets": n_valid, "active": n_active / n_valid if n_valid else 0.0}
