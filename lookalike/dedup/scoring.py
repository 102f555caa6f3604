"""Signals of candidate pairs under a calibration: the cheap ones for all, the geometric check only where it can
still change the verdict."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .calibration import Calibration
from .signals import pair_signals


def scored_pairs(cal: Calibration, thumbs: Mapping[int, np.ndarray], pairs: np.ndarray, cosine: np.ndarray, *,
                 skip: np.ndarray | None = None, colours: Mapping[int, np.ndarray] | None = None
                 ) -> dict[str, np.ndarray]:
    """Every signal of each pair (with the colour veto when ``colours`` are given); the slow geometric check only
    where the others leave the verdict open (the evidence so far plus the most the geometric check could add
    reaches the threshold, and the colours do not veto it) and ``skip`` is false."""
    sig = {"cosine": np.asarray(cosine, dtype=np.float64),
           **pair_signals(thumbs, pairs, np.zeros(len(pairs), bool), colours)}
    partial = cal.evidence(sig)  # as it is or as a mirror image, the better (calibration.evidence_against)
    open_ = (partial + cal.max_evidence("geometric") >= cal.threshold) & ~cal.vetoed(sig)
    if skip is not None:
        open_ &= ~np.asarray(skip, dtype=bool)
    sig["geometric"] = pair_signals(thumbs, pairs, open_)["geometric"]
    return sig


def cosine_floor(cal: Calibration) -> float:
    """The lowest cosine at which the evidence could still reach the threshold: edges below it are not checked."""
    needed = cal.threshold - sum(cal.max_evidence(name) for name in cal.distractors if name != "cosine")
    cosines = np.sort(np.asarray(cal.distractors["cosine"], dtype=np.float64))
    n = len(cosines)
    if not n or needed <= 0:
        return -1.0
    above = np.arange(n, -1, -1)  # distractors at or above a cosine just over cosines[i - 1]: n - i
    reach = np.flatnonzero(-np.log10((above + 0.5) / (n + 1.0)) + 0.01 >= needed)
    if not len(reach):
        return 2.0  # no cosine is evidence enough: nothing can be a near-duplicate
    return float(cosines[reach[0] - 1]) if reach[0] > 0 else -1.0
