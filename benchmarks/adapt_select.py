"""Codes adapted to the catalogue without labels (issue 16, part 3): the ``adapt`` hasher's settings chosen on a
validation split, then measured on the protocol next to ITQ, with two query seeds.

Validation (never the test queries): Fashion-MNIST's efficientnet-lite0 training vectors, 50,000 (seeded) as the
catalogue the hasher is fitted on, 1,000 of the other 10,000 as queries; the grid is k (neighbours smoothed with) x
ridge (shrinkage towards the identity), scored by the mean of mAP@1000 at 16, 32 and 64 bits. Test: the protocol
(1,000 test queries, seeds 0 and 1, against the 60,000 training images, relevant = same class), the hasher fitted
on the 60,000 training vectors with the chosen settings, against ITQ fitted on the same vectors.

Run: ``python benchmarks/adapt_select.py [--write]`` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.evaluation import retrieval_map
from lookalike.evaluation.protocol import features, load_split
from lookalike.hashing import get_hasher
from lookalike.hashing.adapt import knn_graph, smoothing_map

KS, RIDGES, BITS = (5, 10, 30), (0.01, 0.1, 1.0), (16, 32, 64)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


Arrays = tuple[np.ndarray, np.ndarray]


def validation_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(catalogue rows, query rows)`` of the validation split of ``n`` training rows (seed 0: 50,000 as the
    catalogue, 1,000 of the others as queries), each sorted; the split every issue-16 selection uses."""
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    return np.sort(perm[:50_000]), np.sort(rng.choice(perm[50_000:], 1000, replace=False))


def load_protocol() -> tuple[Arrays, Arrays, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(X, Y), (T, TY), (db, q, dbl, ql)``: Fashion-MNIST's unit efficientnet-lite0 training and test vectors
    with their labels, and the validation split of the training set (seed 0: 50,000 as the catalogue, 1,000 of the
    other 10,000 as queries)."""
    X = unit(features("fashion-mnist", "train", "efficientnet-lite0").astype(np.float32))
    Y = load_split("fashion-mnist", "train").labels
    T = unit(features("fashion-mnist", "test", "efficientnet-lite0").astype(np.float32))
    TY = load_split("fashion-mnist", "test").labels
    dbi, qi = validation_split(len(X))
    return (X, Y), (T, TY), (X[dbi], X[qi], Y[dbi], Y[qi])


def protocol_rows(out: Report, train: Arrays, test: Arrays, methods: list[tuple[str, dict[str, object]]]) -> None:
    """The protocol's rows: float cosine, then each hasher fitted on the training vectors, query seeds 0 / 1."""
    (X, Y), (T, TY) = train, test
    picks = [np.sort(np.random.default_rng(seed).choice(len(T), 1000, replace=False)) for seed in (0, 1)]
    float_cells = [retrieval_map(T[p], X, TY[p], Y, 1000, metric="cosine") for p in picks]
    out(f"| float cosine (efficientnet-lite0) | {float_cells[0]:.3f} / {float_cells[1]:.3f} | | | – |")
    for name, params in methods:
        cells, fits = [], []
        for bits in BITS:
            t1 = time.perf_counter()
            h = get_hasher(name, n_bits=bits, random_state=0, **params).fit(X)
            fits.append(time.perf_counter() - t1)
            codes = h.transform(X)
            cells.append(" / ".join(f"{retrieval_map(h.transform(T[p]), codes, TY[p], Y, 1000, metric='hamming'):.3f}"
                                    for p in picks))
        out(f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} | " + " / ".join(f"{f:.0f}" for f in fits) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args()
    train, test, (db, q, dbl, ql) = load_protocol()
    out = Report()
    out("## Codes adapted to the catalogue: the `adapt` hasher (issue 16, part 3)\n")
    out(stamp())
    out("ITQ on a learned linear map of each vector onto its neighbour-smoothed version (`lookalike/hashing/adapt.py`; "
        "no labels). Validation: 50,000 training vectors as the catalogue, 1,000 of the other 10,000 as queries; "
        "cells mAP@1000 at 16 / 32 / 64 bits.\n")
    t0 = time.perf_counter()
    graph = knn_graph(db, max(KS))
    out(f"k-NN graph of 50,000 vectors: {time.perf_counter() - t0:.0f} s.\n")
    out("| k | ridge | 16 | 32 | 64 | mean |")
    out("|---:|---:|---:|---:|---:|---:|")
    base = [retrieval_map(h.transform(q), h.transform(db), ql, dbl, 1000, metric="hamming")
            for h in (get_hasher("itq", n_bits=b, random_state=0).fit(db) for b in BITS)]
    out(f"| ITQ | – | {base[0]:.3f} | {base[1]:.3f} | {base[2]:.3f} | {np.mean(base):.3f} |")
    scores = {}
    for k in KS:
        for ridge in RIDGES:
            W, mu = smoothing_map(db, graph[:, :k], ridge)
            mdb, mq = unit((db - mu) @ W + mu), unit((q - mu) @ W + mu)
            cells = []
            for bits in BITS:
                h = get_hasher("itq", n_bits=bits, random_state=0).fit(mdb)
                cells.append(retrieval_map(h.transform(mq), h.transform(mdb), ql, dbl, 1000, metric="hamming"))
            scores[(k, ridge)] = float(np.mean(cells))
            out(f"| {k} | {ridge:g} | {cells[0]:.3f} | {cells[1]:.3f} | {cells[2]:.3f} | {scores[(k, ridge)]:.3f} |")
    k, ridge = max(scores, key=lambda key: scores[key])
    out(f"\nChosen on validation: k {k}, ridge {ridge:g} (the hasher's defaults).\n")
    out("Test: the protocol, 1,000 test queries against the 60,000 training images, fitted on the 60,000 training "
        "vectors; each cell seed 0 / seed 1 of the queries.\n")
    out("| method | 16 bits | 32 bits | 64 bits | fit s (16 / 32 / 64) |")
    out("|---|---:|---:|---:|---:|")
    protocol_rows(out, train, test, [("itq", {}), ("adapt", {"k": k, "ridge": ridge})])
    out("")
    if args.write:
        write_section(out.text())


if __name__ == "__main__":
    main()
