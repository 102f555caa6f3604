"""Triplets from people (issue 14, part 3): how many judged reference items ``train triplet --from-catalog`` needs
to beat the features it starts from, on Fashion-MNIST.

Simulated people: the catalogue is 10,000 Fashion-MNIST training images (1,000 a class, seeded); a person picks R
reference items (seeded) and marks each of the reference's 20 nearest items (efficientnet-lite0 cosine: what the
page shows for a search from the item) similar (same class) or not similar (another class) - mostly the hard cases.
Training is ``--from-catalog``'s: ``split_by_reference`` holds out 20% of the references, on the items'
efficientnet-lite0 vectors (what the catalogue stores), 15 epochs, for each head: the default (an MLP to 512-d
learned from scratch) and the residual heads (``normalize(x + mlp(x))``, 1280-d, starting as the features).

Which head ``--from-catalog`` uses by default is chosen on the **validation** columns only: the held-out
references' triplet accuracy (what ``eval triplets`` prints) and mAP@1000 of 1,000 training images outside the
catalogue against the other 59,000 training images. The **test** column (the standard protocol: 1,000 seeded test
queries against the 60,000 training images, relevant = same class) is reported, never used to choose.

Run: ``python benchmarks/judged.py [--refs 25,100,400] [--epochs 15] [--write]`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.evaluation import retrieval_map
from lookalike.evaluation.protocol import features, load_split
from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import TripletData, triplet_accuracy
from lookalike.triplet.from_catalog import split_by_reference

SHOWN = 20  # results a person judges per reference
HEADS: tuple[tuple[str, dict[str, object]], ...] = (
    ("default: MLP 1024 → 512-d from scratch", {}),
    ("residual, linear (1280-d)", {"residual": True, "dim": 1280, "hidden": 0}),
    ("residual, MLP 1024 (1280-d)", {"residual": True, "dim": 1280}),
)


def judged_rows(db: np.ndarray, labels: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, int]:
    """(reference, similar, not similar) rows of the simulated judgements, and the number of judgements."""
    rows, n = [], 0
    for r in refs:
        sims = db @ db[r]
        sims[r] = -np.inf
        shown = np.argsort(-sims, kind="stable")[:SHOWN]
        same, other = shown[labels[shown] == labels[r]], shown[labels[shown] != labels[r]]
        n += len(shown)
        rows += [(r, p, q) for p in same for q in other]
    return np.array(rows, dtype=np.int64).reshape(-1, 3), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", default="25,100,400", help="judged reference items, comma-separated")
    parser.add_argument("--catalog", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args()
    import torch

    from lookalike.triplet.trainer import train

    torch.set_num_threads(args.threads)
    train_x = features("fashion-mnist", "train", "efficientnet-lite0")
    train_y = load_split("fashion-mnist", "train").labels
    test_x = features("fashion-mnist", "test", "efficientnet-lite0")
    test_y = load_split("fashion-mnist", "test").labels
    rng = np.random.default_rng(args.seed)
    per = args.catalog // 10
    catalogue = np.concatenate([rng.choice(np.flatnonzero(train_y == c), per, replace=False) for c in range(10)])
    db, labels = train_x[catalogue], train_y[catalogue]
    queries = np.sort(np.random.default_rng(0).choice(len(test_x), args.queries, replace=False))  # the protocol's
    q_x, q_y = test_x[queries], test_y[queries]
    outside = np.setdiff1d(np.arange(len(train_x)), catalogue)
    val_q = np.sort(np.random.default_rng(args.seed + 1).choice(outside, args.queries, replace=False))
    val_db = np.setdiff1d(np.arange(len(train_x)), val_q)

    def maps(embed: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
        """(validation, test) mAP@1000 of an embedding of the features."""
        emb = embed(train_x)
        val = retrieval_map(emb[val_q], emb[val_db], train_y[val_q], train_y[val_db], 1000, metric="cosine")
        return val, retrieval_map(embed(q_x), emb, q_y, train_y, 1000, metric="cosine")

    base_val, base_map = maps(lambda x: x)
    out = Report()
    out("## Triplets from people: `train triplet --from-catalog` on judged references (issue 14, part 3)\n")
    out(stamp())
    out(f"Catalogue: {len(db):,} Fashion-MNIST training images; each judged reference's {SHOWN} nearest items "
        "marked similar (same class) or not (another class); 20% of the references held out; default "
        f"TripletConfig but the head, {args.epochs} epochs, CPU ({args.threads} threads). efficientnet-lite0's own "
        f"features: validation mAP@1000 {base_val:.3f}, test {base_map:.3f}. Command: `python benchmarks/judged.py "
        f"--refs {args.refs} --epochs {args.epochs}`.\n")
    out("| judged refs | judgements | triplets train / held out | head | held-out triplet acc. (features → "
        "trained) | validation mAP@1000 | test mAP@1000 | train s |")
    out("|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in (int(x) for x in args.refs.split(",")):
        refs = np.random.default_rng(args.seed + r).choice(len(db), r, replace=False)
        rows, judgements = judged_rows(db, labels, refs)
        is_val, _ = split_by_reference(rows, TripletConfig(seed=args.seed))
        data = TripletData("triplets", [], np.full(len(db), -1, dtype=np.int64), rows[~is_val], rows[is_val],
                           f"{len(rows)} simulated triplets")
        before = triplet_accuracy(db, data.val)
        out(f"| {r} | {judgements:,} | {len(data.train):,} / {len(data.val):,} | (features) | {before:.3f} | "
            f"{base_val:.3f} | {base_map:.3f} | – |")
        for name, changes in HEADS:
            cfg = TripletConfig(seed=args.seed).replace(**changes)
            t0 = time.perf_counter()
            trainer = train(cfg, data, args.epochs, None, device="cpu", inputs=db, suspect_k=0, log=lambda _: None)
            seconds = time.perf_counter() - t0
            after = triplet_accuracy(trainer.embed(db), data.val)
            val_map, test_map = maps(trainer.embed)
            out(f"| {r} | | | {name} | {before:.3f} → {after:.3f} | {val_map:.3f} | {test_map:.3f} | {seconds:.0f} |")
    out("")
    if args.write:
        write_section(out.text())


if __name__ == "__main__":
    main()
