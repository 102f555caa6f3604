"""FPR at 95% recall of patch descriptors on patch-pair sets: ``lookalike eval patches``.

For each set and descriptor: describe every patch of the set once, take each pair's distance (Hamming for binary
descriptors, L2 for float ones), and report the false-positive rate at the distance threshold that accepts 95% of
the matching pairs (:func:`lookalike.evaluation.fpr_at_95`): the threshold t is the ⌈0.95·m⌉-th smallest of the m
matching distances, and a pair is accepted when its distance is <= t, so pairs tied with t are accepted, matching
and non-matching alike (computed exactly, no interpolation between thresholds). A pair whose patch OpenCV could
not describe (a dropped keypoint) gets a distance above every other: it is rejected at every threshold but the
last.

Sets: ``motorcycle`` (:mod:`.stereo`), ``warps`` (:mod:`.warps`) and ``brown:DIR`` (:mod:`.brown`, the 100k test
pairs of a Brown folder). Descriptors: the OpenCV ones (:mod:`.descriptors`) and ``bingan:MODEL``, a BinGAN model
file (``lookalike train bingan --arch patch --bits 256 --fit resize``), which sees the patch as its training did
(grey, 64 → 32 by its own ``fit``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidParameterError
from ..validation import check_int, short_repr
from .descriptors import DESCRIPTORS, describe, descriptor
from .pairs import PatchPairs

if TYPE_CHECKING:
    from ..encoders.base import Encoder

__all__ = ["Result", "evaluate", "format_table", "load_set", "pair_distances", "parse_descriptors", "run"]

SETS = ("motorcycle", "warps")


@dataclass(frozen=True)
class Result:
    """One cell of the table: ``fpr`` of descriptor ``descriptor`` on set ``pairs``."""

    descriptor: str
    pairs: str
    fpr: float
    kind: str  # binary / float
    bytes: int
    failed: int  # patches the descriptor could not describe
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"descriptor": self.descriptor, "set": self.pairs, "fpr95": self.fpr, "kind": self.kind,
                "bytes": self.bytes, "failed_patches": self.failed, "seconds": round(self.seconds, 3)}


def load_set(spec: str, n: int = 10_000, seed: int = 0) -> PatchPairs:
    """``motorcycle``, ``warps`` (``n`` matching + ``n`` non-matching pairs, seeded) or ``brown:DIR``."""
    if spec == "motorcycle":
        from .stereo import motorcycle_pairs

        return motorcycle_pairs(n, n, seed)
    if spec == "warps":
        from .warps import warp_pairs

        return warp_pairs(n, n, seed)
    if spec.startswith("brown:") and len(spec) > len("brown:"):
        from .brown import load_brown_pairs

        return load_brown_pairs(spec[len("brown:"):])
    raise InvalidParameterError(f"--set: expected motorcycle, warps or brown:DIR. Got {short_repr(spec)}.")


def parse_descriptors(text: str) -> list[str]:
    """``all`` (every OpenCV descriptor) or a comma-separated list of names and ``bingan:MODEL`` specs."""
    if text.strip() == "all":
        return list(DESCRIPTORS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise InvalidParameterError("--descriptors: expected 'all' or comma-separated names")
    for name in names:
        if not name.startswith("bingan:"):
            descriptor(name)
    return names


def pair_distances(rows: np.ndarray, ok: np.ndarray, pairs: PatchPairs, kind: str) -> np.ndarray:
    """(n,) float64 distances of the pairs: Hamming of packed bits or L2 of float rows; pairs with an undescribed
    patch get the largest distance plus one."""
    a, b = rows[pairs.first], rows[pairs.second]
    if kind == "binary":
        dist = np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int64).astype(np.float64)
    else:
        dist = np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=1)
    bad = ~(ok[pairs.first] & ok[pairs.second])
    if bad.any():
        dist[bad] = (dist[~bad].max() if (~bad).any() else 0.0) + 1.0
    return dist


def _bingan(spec: str) -> Encoder:
    """The ``bingan:MODEL`` encoder (EncoderError for a missing or bad model file)."""
    from ..encoders import get_encoder

    enc = get_encoder(spec)
    if enc.kind != "binary" or not spec.startswith("bingan:"):
        raise InvalidParameterError(f"{short_repr(spec)}: not a BinGAN model (bingan:MODEL)")
    return enc


def _bingan_rows(enc: Encoder, patches: np.ndarray) -> np.ndarray:
    from PIL import Image

    return enc.run_prepared([enc.prepare(Image.fromarray(p).convert("RGB")) for p in patches])


def evaluate(pairs: PatchPairs, name: str, encoder: Encoder | None = None) -> Result:
    """FPR@95 of descriptor ``name`` (an OpenCV name or ``bingan:MODEL``; ``encoder``: that model, already
    loaded) on ``pairs``."""
    t0 = time.perf_counter()
    if name.startswith("bingan:"):
        enc = encoder or _bingan(name)
        rows, ok = _bingan_rows(enc, pairs.patches), np.ones(len(pairs.patches), dtype=bool)
        kind, nbytes = "binary", enc.dim // 8
    else:
        d = descriptor(name)
        rows, ok = describe(d, pairs.patches)
        kind, nbytes = d.kind, d.width * (1 if d.kind == "binary" else 4)
    from ..evaluation import fpr_at_95

    fpr = fpr_at_95(pair_distances(rows, ok, pairs, kind), pairs.is_match)
    return Result(name, pairs.name, fpr, kind, nbytes, int((~ok).sum()), time.perf_counter() - t0)


def run(sets: Sequence[str], descriptors: Sequence[str], *, n: int = 10_000, seed: int = 0,
        out: Callable[[str], None] | None = None) -> list[Result]:
    """Every descriptor on every set (each set generated or read once); ``out`` gets a line per result."""
    check_int("n", n, 1)
    check_int("seed", seed, 0)
    for name in descriptors:
        if not name.startswith("bingan:"):
            descriptor(name)
    models = {name: _bingan(name) for name in descriptors if name.startswith("bingan:")}
    loaded = [load_set(s, n, seed) for s in sets]  # every set and model first: bad input fails before any work
    results = []
    for pairs in loaded:
        for name in descriptors:
            r = evaluate(pairs, name, models.get(name))
            results.append(r)
            if out is not None:
                out(f"{r.pairs:>12}  {r.descriptor:<14} FPR@95 {100 * r.fpr:6.2f}%  ({r.bytes} bytes, "
                    f"{r.failed} undescribed patches, {r.seconds:.1f} s)")
    return results


def _label(name: str) -> str:
    return "BinGAN" if name.startswith("bingan:") else name


def format_table(results: Sequence[Result]) -> str:
    """A markdown table shaped like the BinGAN paper's: descriptors (with bytes) × sets, FPR@95 in percent, and
    the average over the sets."""
    sets = list(dict.fromkeys(r.pairs for r in results))
    names = list(dict.fromkeys(r.descriptor for r in results))
    cell = {(r.descriptor, r.pairs): r for r in results}
    lines = ["| descriptor | bytes | " + " | ".join(sets) + " | average FPR@95% |",
             "|---|---:|" + "---:|" * (len(sets) + 1)]
    for name in names:
        got = [cell.get((name, s)) for s in sets]
        first = next(r for r in got if r is not None)
        metric = "" if first.kind == "binary" else ", float L2"
        values = [f"{100 * r.fpr:.2f}" if r is not None else "–" for r in got]
        mean = np.mean([r.fpr for r in got if r is not None]) * 100
        lines.append(f"| {_label(name)} | {first.bytes}{metric} | " + " | ".join(values) + f" | {mean:.2f} |")
    return "\n".join(lines)
