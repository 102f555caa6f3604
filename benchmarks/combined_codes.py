"""Codes from a combined encoder (issue 16, part 3): ``efficientnet-lite0++pixels:size=28`` — the deep embedding
and the raw silhouette side by side — with ITQ, ``adapt`` and ``adapt-spectral`` learned on it, no labels.

Validation (never the test queries): the split of ``adapt_select.py`` (Fashion-MNIST's training set, seed 0: 50,000
as the catalogue the hashers are fitted on, 1,000 of the other 10,000 as queries). First the pixels part's weight
in {0.5, 0.7, 1.0} by float mAP@1000 of the combined vectors (cheap, and the neighbourhood graph the hashers learn
is the float one); then, at that weight, ITQ, ``adapt`` and ``adapt-spectral`` at 16 / 32 / 64 bits, and
``adapt-spectral`` with ``min_dim`` 32 at 16 bits. Test: the protocol (1,000 test queries, seeds 0 and 1, against
the 60,000 training images, relevant = same class), every hasher fitted on the 60,000 training vectors.

The combined vectors are made from the cached efficientnet-lite0 and ``pixels:size=28`` vectors by the encoder's
own ``combine`` (what ``encode`` returns for the same images: ``tests/encoders/test_combined.py``).

Run: ``python benchmarks/combined_codes.py [--write]`` (about 45 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section
from adapt_select import validation_split

from lookalike.encoders import get_encoder
from lookalike.evaluation import retrieval_map
from lookalike.evaluation.protocol import features, load_split
from lookalike.hashing import get_hasher

WEIGHTS, BITS = (0.5, 0.7, 1.0), (16, 32, 64)


def combined(weight: float, split: str) -> np.ndarray:
    enc = get_encoder(f"efficientnet-lite0++pixels:size=28,weight={weight:g}")
    return enc.combine([features("fashion-mnist", split, "efficientnet-lite0"),
                        features("fashion-mnist", split, "pixels")])


def fit_map(name: str, bits: int, db: np.ndarray, queries: list[np.ndarray], dbl: np.ndarray,
            qls: list[np.ndarray], random_state: int = 0, **params: object) -> tuple[list[float], float]:
    """([mAP@1000 per query set], fit seconds) of hasher ``name`` fitted on ``db``."""
    t0 = time.perf_counter()
    h = get_hasher(name, n_bits=bits, random_state=random_state, **params).fit(db)
    fit = time.perf_counter() - t0
    codes = h.transform(db)
    return [retrieval_map(h.transform(q), codes, ql, dbl, 1000, metric="hamming")
            for q, ql in zip(queries, qls, strict=True)], fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    Y = load_split("fashion-mnist", "train").labels
    TY = load_split("fashion-mnist", "test").labels
    dbi, qi = validation_split(len(Y))
    out = Report()
    out("## Codes from a combined encoder: efficientnet-lite0 and the silhouette (issue 16, part 3)\n")
    out(stamp())
    out("`efficientnet-lite0++pixels:size=28,weight=W` (`lookalike/encoders/combined.py`): each part's unit vector, "
        "the pixels part scaled by W, concatenated and unit-normalised; ITQ, `adapt` and `adapt-spectral` learned on "
        "it without labels. Validation: the split of the `adapt` section (50,000 training vectors as the catalogue, "
        "1,000 of the other 10,000 as queries); cells mAP@1000.\n")
    eff = features("fashion-mnist", "train", "efficientnet-lite0")
    floats = {"efficientnet-lite0 alone": retrieval_map(eff[qi], eff[dbi], Y[qi], Y[dbi], 1000, metric="cosine")}
    for w in WEIGHTS:
        C = combined(w, "train")
        floats[f"weight {w:g}"] = retrieval_map(C[qi], C[dbi], Y[qi], Y[dbi], 1000, metric="cosine")
    out("| vectors | float mAP@1000 |")
    out("|---|---:|")
    for label, value in floats.items():
        out(f"| {label} | {value:.3f} |")
    weight = max(WEIGHTS, key=lambda w: floats[f"weight {w:g}"])
    out(f"\nChosen on validation: weight {weight:g}.\n")
    C = combined(weight, "train")
    db, q, dbl, ql = C[dbi], C[qi], Y[dbi], Y[qi]
    out("| method (combined, weight chosen) | 16 bits | 32 bits | 64 bits | fit s (16 / 32 / 64) |")
    out("|---|---:|---:|---:|---:|")
    val: dict[str, list[float]] = {}
    for name in ("itq", "adapt", "adapt-spectral"):
        cells = [fit_map(name, b, db, [q], dbl, [ql]) for b in BITS]
        val[name] = [c[0][0] for c in cells]
        out(f"| {name} | " + " | ".join(f"{v:.3f}" for v in val[name]) + " | "
            + " / ".join(f"{c[1]:.0f}" for c in cells) + " |")
    (m32,), fit32 = fit_map("adapt-spectral", 16, db, [q], dbl, [ql], min_dim=32)
    out(f"| adapt-spectral, min_dim 32 | {m32:.3f} | ({val['adapt-spectral'][1]:.3f}) | "
        f"({val['adapt-spectral'][2]:.3f}) | {fit32:.0f} |")
    min_dim = 32 if m32 > val["adapt-spectral"][0] else 16
    out(f"\nChosen on validation: adapt-spectral min_dim {min_dim}. Cells in brackets: the same fit as the row "
        "above.\n")
    out("Test: the protocol, 1,000 test queries against the 60,000 training images, every hasher fitted on the 60,000 "
        "training vectors (random_state 0); each cell seed 0 / seed 1 of the queries.\n")
    out("| vectors | method | 16 bits | 32 bits | 64 bits | fit s (16 / 32 / 64) |")
    out("|---|---|---:|---:|---:|---:|")
    picks = [np.sort(np.random.default_rng(seed).choice(len(TY), 1000, replace=False)) for seed in (0, 1)]
    X, T = eff, features("fashion-mnist", "test", "efficientnet-lite0")
    XC, TC = C, combined(weight, "test")  # C: the training vectors at the chosen weight, made above
    for label, (D, Q) in (("efficientnet-lite0", (X, T)), (f"combined, weight {weight:g}", (XC, TC))):
        cells = [retrieval_map(Q[p], D, TY[p], Y, 1000, metric="cosine") for p in picks]
        out(f"| {label} | float cosine | " + " / ".join(f"{c:.3f}" for c in cells) + " | | | – |")
    runs = [("efficientnet-lite0", X, T, "itq", {}), (f"combined, weight {weight:g}", XC, TC, "itq", {}),
            (f"combined, weight {weight:g}", XC, TC, "adapt", {}),
            (f"combined, weight {weight:g}", XC, TC, "adapt-spectral", {"min_dim": min_dim})]
    for label, D, Q, name, params in runs:
        cells = [fit_map(name, b, D, [Q[p] for p in picks], Y, [TY[p] for p in picks], **params) for b in BITS]
        out(f"| {label} | {name} | " + " | ".join(" / ".join(f"{v:.3f}" for v in c[0]) for c in cells) + " | "
            + " / ".join(f"{c[1]:.0f}" for c in cells) + " |")
    out(f"\nIn all {time.perf_counter() - t0:.0f} s on 2 CPU cores.\n")
    if args.write:
        write_section(out.text())
    else:
        print(out.text())


if __name__ == "__main__":
    main()
