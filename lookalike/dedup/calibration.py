"""Verdicts on candidate pairs, and the calibration that sets the near-duplicate threshold on the user's catalogue.

Each signal (the embedding's ``cosine``; from the thumbnails, the ``geometric`` NCC and the ``phash`` /
``phash_trim`` hash agreement, :mod:`.signals`) is turned into evidence by comparing it
with the same signal on *distractor* pairs, the nearest other catalogue items of generated copies: evidence is
``-log10`` of the share of distractor pairs scoring at least as high (the chance that a non-duplicate looks this
alike), plus a hundredth of the raw score to order pairs that beat every distractor. The evidence of the
signals is summed, and a pair is a near-duplicate when the sum reaches the threshold
fitted for the target precision. On benchmarks/duplicates.py (BENCHMARKS.md) this sum over the four signals
found 73% of edited copies at 99% precision against 68% for the sum of cosine and geometric alone, and did better
in exploratory runs than the maximum of the evidence or weighted sums of cosine and geometric; since the geometric
check also searches small rotations (:mod:`.signals`) it finds 75% and matches or beats every single signal on
every edit type (rotations: 0.39 against the cosine's 0.35; before the rotation search 0.30).

A pair whose ``colour`` distance (the hue veto of :mod:`.signals`) exceeds ``colour_limit`` is at most similar: the
limit is the largest colour distance of the calibration's own edited copies plus :data:`COLOUR_MARGIN`, so no
generated copy is vetoed, while a variant of a design in another colour is (on the tests' navy/beige and red/blue
variants the distance is 0.8-0.95; brightness edits of the photographs reach 0.47).

Distractor pairs whose candidate already looks like a duplicate of the sampled item (a re-listing the catalogue
holds) are left out of the fit by the catalogue's calibration (``_catalog._relistings``), or they would push the
threshold past the catalogue's real duplicates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..catalog.types import JSONObject, Verdict
from ..errors import CalibrationRequiredError, CatalogError
from ..validation import check_real

__all__ = ["EXACT", "NEAR", "SIGNALS", "SIMILAR", "Calibration", "check_precision", "evidence_against",
           "evidence_signals", "fit_calibration", "tables_of", "threshold_for_precision"]

EXACT: Verdict = "exact"
NEAR: Verdict = "near-duplicate"
SIMILAR: Verdict = "similar"
SIGNALS = ("cosine", "geometric", "phash", "phash_trim")  # the evidence; "colour" is a veto (colour_limit)
MIRRORED = {"phash": "phash_mirrored", "phash_trim": "phash_trim_mirrored"}  # the hashes with one side mirrored
MIRROR_PENALTY = math.log10(2.0)  # two tries (as it is, mirrored): a distractor reaches e twice as often
COLOUR_MARGIN = 0.1
FORMAT = 2
_MAX_VALUES = 4000


def check_precision(target: object) -> float:
    return check_real("target_precision", target, 0.5, 0.99999)


@dataclass
class Calibration:
    """A fitted near-duplicate threshold, as stored with the catalogue (meta key ``dedup_calibration``).

    Attributes:
        encoder: the float encoder whose cosine is a signal.
        target_precision: what the threshold was fitted for.
        threshold: evidence (summed -log10 distractor rates) from which a pair is a near-duplicate.
        precision, recall: expected on generated copies, measured out of fold (see :func:`fit_calibration`).
        recall_by_edit: expected recall per edit kind.
        distractors: per signal, the sorted distractor scores (subsampled to at most 4,000 quantiles).
        sample, k, seed: how it was fitted; created: Unix time.
    """

    encoder: str
    target_precision: float
    threshold: float
    precision: float
    recall: float
    recall_by_edit: dict[str, float]
    distractors: dict[str, list[float]]
    sample: int
    k: int
    seed: int
    created: float = 0.0
    pairs: int = 0
    format: int = FORMAT
    notes: list[str] = field(default_factory=list)
    colour_limit: float | None = None  # calibrations from before the colour veto have none

    def vetoed(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        """Pairs whose colours are too far apart to be copies (never where the colour was not measured)."""
        colour = signals.get("colour")
        if colour is None or self.colour_limit is None:
            return np.zeros(len(next(iter(signals.values()))), dtype=bool)
        return np.nan_to_num(np.asarray(colour, dtype=np.float64), nan=-1.0) > self.colour_limit

    def evidence(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        """Summed evidence for arrays of signals (NaN = not measured, no evidence)."""
        tables = {k: np.sort(np.asarray(v, dtype=np.float64)) for k, v in self.distractors.items()}
        return evidence_against(tables, signals)

    def verdicts(self, signals: dict[str, np.ndarray], exact: np.ndarray) -> tuple[list[Verdict], np.ndarray]:
        """Verdict and evidence of each pair: ``exact`` where ``exact`` is true, then by the threshold (and the
        colour veto)."""
        ev = self.evidence(signals)
        veto = self.vetoed(signals)
        out = [EXACT if x else NEAR if e >= self.threshold and not v else SIMILAR
               for x, e, v in zip(exact, ev, veto, strict=True)]
        return out, ev

    def max_evidence(self, name: str) -> float:
        """The most evidence one signal can give (a score above every distractor)."""
        return float(-np.log10(0.5 / (len(self.distractors[name]) + 1.0)) + 0.01)

    def summary(self) -> JSONObject:
        """Everything but the distractor tables (for reports)."""
        out = asdict(self)
        out["signals"] = list(out.pop("distractors"))
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise CalibrationRequiredError(f"duplicate calibration format {data.get('format')!r} is not "
                                               f"{FORMAT}; calibrate again (lookalike dedup --calibrate)")
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as err:
            raise CalibrationRequiredError(f"the stored duplicate calibration is unreadable ({err}); calibrate "
                                           "again (lookalike dedup --calibrate)") from err


def evidence_signals(signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The signals that are evidence (:data:`SIGNALS`, and the mirrored hashes), without the colour veto."""
    return {name: values for name, values in signals.items() if name in SIGNALS or name in MIRRORED.values()}


def tables_of(signals: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Sorted distractor tables of the evidence signals over ``rows`` (a mask), NaN left out."""
    return {n: np.sort(signals[n][rows][np.isfinite(signals[n][rows])]) for n in SIGNALS if n in signals}


def evidence_against(tables: dict[str, np.ndarray], signals: dict[str, np.ndarray]) -> np.ndarray:
    """Summed evidence of arrays of ``signals`` against sorted distractor ``tables`` (one per signal)."""
    total: np.ndarray | None = None
    for name, table in tables.items():  # signals the tables know; missing from ``signals``: an error
        values = np.asarray(signals[name], dtype=np.float64)
        n = len(table)
        at_least = n - np.searchsorted(table, np.nan_to_num(values, nan=-np.inf), side="left")
        ev = -np.log10((at_least + 0.5) / (n + 1.0))
        # + a hundredth of the raw signal: orders pairs beyond every distractor instead of tying them
        ev = np.where(np.isnan(values), 0.0, ev + 0.01 * values)
        total = ev if total is None else total + ev
    assert total is not None
    if all(m in signals for m in MIRRORED.values()) and all(n in tables for n in MIRRORED):
        # the better of the pair as it is and with one side mirrored, less the price of the second try
        mirrored = {**signals, **{n: signals[m] for n, m in MIRRORED.items()}}
        plain = {k: v for k, v in mirrored.items() if k not in MIRRORED.values()}
        total = np.maximum(total, evidence_against(tables, plain) - MIRROR_PENALTY)
    return total


def threshold_for_precision(scores: np.ndarray, labels: np.ndarray, target: float) -> float:
    """The lowest score threshold at which ``scores >= threshold`` has precision >= ``target`` over the labelled
    pairs (inf where none has)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    precision = tp / np.maximum(tp + fp, 1)
    distinct = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold takes every pair tied with it
    ok = np.flatnonzero((precision >= target) & distinct & (tp > 0))
    return float(ranked[ok.max()]) if len(ok) else math.inf


def _subsample(values: np.ndarray) -> list[float]:
    values = np.sort(values[np.isfinite(values)])
    if len(values) > _MAX_VALUES:
        values = values[np.linspace(0, len(values) - 1, _MAX_VALUES).round().astype(int)]
    return [round(float(v), 6) for v in values]


def fit_calibration(
    signals: dict[str, np.ndarray], labels: np.ndarray, query_of: np.ndarray, kinds: Sequence[str], *,
    target_precision: float, encoder: str, k: int, seed: int, created: float = 0.0,
) -> Calibration:
    """Fit the threshold on labelled candidate pairs of generated copies.

    Args:
        signals: per signal, one value per candidate pair (NaN where not measured).
        labels: true where the candidate is the copy's source.
        query_of: the copy each pair belongs to (0 .. len(kinds) - 1).
        kinds: the edit kind of each copy.

    Evidence is computed out of fold (copies split in two; each half scored against the distractor tables of
    the other), the threshold is fitted and precision/recall measured on those out-of-fold scores; the stored
    tables use every distractor pair.
    """
    target_precision = check_precision(target_precision)
    labels, query_of = np.asarray(labels, dtype=bool), np.asarray(query_of, dtype=np.int64)
    colour = signals.get("colour")
    positives = np.asarray(colour, dtype=np.float64)[labels] if colour is not None else np.empty(0)
    positives = positives[np.isfinite(positives)]
    colour_limit = float(positives.max()) + COLOUR_MARGIN if len(positives) else None
    signals = evidence_signals(signals)
    if not labels.any() or labels.all():
        raise CatalogError("calibration found no distractor or no duplicate pairs; the catalogue is too small or "
                           "too uniform to calibrate")
    fold = query_of % 2
    oof = np.zeros(len(labels))
    for f in (0, 1):
        train = (fold != f) & ~labels
        tables = tables_of(signals, train)
        oof[fold == f] = evidence_against(tables, {n: v[fold == f] for n, v in signals.items()})
    if colour is not None and colour_limit is not None:  # a vetoed pair is never a near-duplicate: no false positive
        oof = np.where(np.nan_to_num(np.asarray(colour, dtype=np.float64), nan=-1.0) > colour_limit, -np.inf, oof)
    threshold = threshold_for_precision(oof, labels, target_precision)
    chosen = oof >= threshold
    tp, fp = int((chosen & labels).sum()), int((chosen & ~labels).sum())
    n_queries = len(kinds)
    found = np.zeros(n_queries, dtype=bool)
    found[query_of[chosen & labels]] = True
    kinds_arr = np.asarray(kinds)
    notes = [] if math.isfinite(threshold) else [f"no threshold reaches precision {target_precision}; nothing is "
                                                 "called a near-duplicate"]
    return Calibration(
        encoder=encoder, target_precision=target_precision,
        threshold=threshold if math.isfinite(threshold) else 1e9,
        precision=tp / (tp + fp) if tp + fp else 1.0, recall=float(found.mean()) if n_queries else 0.0,
        recall_by_edit={str(kd): float(found[kinds_arr == kd].mean()) for kd in dict.fromkeys(kinds)},
        distractors={n: _subsample(signals[n][~labels]) for n in SIGNALS if n in signals},
        sample=n_queries, k=k, seed=seed, created=created, pairs=len(labels), notes=notes,
        colour_limit=None if colour_limit is None else round(colour_limit, 4),
    )
