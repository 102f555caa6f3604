"""The triplet embedding (issue 14) on the BinGAN retrieval protocol, next to the unsupervised rows of the same run.

Fashion-MNIST: 1,000 seeded test queries (as ``lookalike.evaluation.protocol`` draws them) against the 60,000
training images, relevant = same class, mAP@1000 (stable ranking) / mAP@10000 (grouped ties) / tie-aware
mAP@1000, exactly as ``benchmarks/retrieval.py`` and ``benchmarks/bingan.py`` score. The triplet head
(``lookalike.triplet.trainer.train_features``: the model ``lookalike train triplet`` trains, on the cached
efficientnet-lite0 features) learns from the 60,000 training images and their class labels; the test images are
never trained on. Rows: the 512-d float embedding (cosine), lookalike's hashers fitted on the embedding of the
training set (16/32/64 bits), and float cosine and ITQ on the efficientnet-lite0 features themselves.

``--select`` chooses the training settings instead, on a validation split carved out of the training set: 10,000
of the 60,000 training images (1,000 a class, seeded) are held out, 1,000 of them are the validation queries
against the other 50,000 (the database and the training images); each candidate is scored after every epoch.
The test queries are not read.

Run: ``python benchmarks/triplet.py [--select] [--epochs N] [--device auto] [--report FILE]`` (``--help`` for all).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp

from lookalike.evaluation import retrieval_map
from lookalike.evaluation.protocol import features, load_split, scores

FEATURE = "efficientnet-lite0"
HASHERS = ("itq", "pcah", "lsh", "sh", "sph", "kmh")
# (name, TripletConfig changes) tried by --select, in order; "default" is lookalike's own default config
CANDIDATES: tuple[tuple[str, dict[str, object]], ...] = (
    ("default: euclidean g 0.05, semi-hard", {}),
    ("euclidean g 0.2, semi-hard", {"margin": 0.2}),
    ("euclidean g 0.2, hard", {"margin": 0.2, "mining": "hard"}),
    ("euclidean g 0.2, all", {"margin": 0.2, "mining": "all"}),
    ("euclidean g 0.5, all", {"margin": 0.5, "mining": "all"}),
    ("angular g 0.1, all", {"distance": "angular", "mining": "all"}),
)
# chosen by --select on the validation split (BENCHMARKS.md, "Supervised deep ranking on Fashion-MNIST"):
# lookalike's default config (euclidean g 0.05, semi-hard, lr 1e-3) led at 4 epochs on 20,000 images within noise
# and at 12 epochs on all 50,000; its validation mAP@1000 plateaus from epoch 12 (0.926; 0.918-0.928 up to 20)
CHOSEN: dict[str, object] = {}
CHOSEN_EPOCHS = 12


def _cell(m: tuple[float, float, float]) -> str:
    return f"{m[0]:.3f} / {m[1]:.3f} / {m[2]:.3f}"


def _class_triplets(labels: np.ndarray, per: int, rng: np.random.Generator) -> np.ndarray:
    """``per`` seeded (query, positive, negative) triplets for every item: a random other item of its class, a
    random item of another class."""
    rows = []
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(labels.max() + 2))
    for _ in range(per):
        q = np.arange(len(labels))
        c = labels[q]
        size = starts[c + 1] - starts[c]
        p = order[starts[c] + rng.integers(0, size - 1, len(q))]
        p = np.where(p == q, order[starts[c] + size - 1], p)  # never the query itself
        n = rng.integers(0, len(labels), len(q))
        while (bad := labels[n] == c).any():
            n[bad] = rng.integers(0, len(labels), int(bad.sum()))
        rows.append(np.stack([q, p, n], 1))
    return np.concatenate(rows)


def _config(changes: dict[str, object], args: argparse.Namespace):  # noqa: ANN202
    from lookalike.triplet.config import TripletConfig

    return TripletConfig(seed=args.train_seed, val_fraction=0.0, dim=args.dim).replace(**changes)


def run_select(args: argparse.Namespace, report: Report) -> None:
    from lookalike.hashing import get_hasher
    from lookalike.triplet.data import class_data
    from lookalike.triplet.trainer import Trainer, triplet_accuracy

    x, y = features("fashion-mnist", "train", FEATURE), load_split("fashion-mnist", "train").labels.astype(np.int64)
    rng = np.random.default_rng(args.split_seed)
    held = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), 1000, replace=False) for c in range(10)]))
    fit = np.setdiff1d(np.arange(len(y)), held)
    vq = np.sort(rng.choice(held, args.queries, replace=False))
    limit = min(args.select_limit or len(fit), len(fit))
    sub = np.sort(rng.choice(fit, limit, replace=False)) if limit < len(fit) else fit
    val_trip = _class_triplets(y[held], 4, np.random.default_rng([args.split_seed, 1]))
    report(f"Validation split (seed {args.split_seed}): {len(held):,} of the 60,000 training images held out (1,000 "
           f"a class); {len(vq):,} of them are the queries against the other {len(fit):,} (database); the head "
           f"trains on {len(sub):,} of those ({'all' if len(sub) == len(fit) else 'a seeded subset'}). Triplet "
           f"accuracy: {len(val_trip):,} seeded triplets of the held-out images. Cells: validation mAP@1000 "
           "(float cosine) after each epoch; ITQ 64 bits after the last. The test queries are not read.\n")
    base = retrieval_map(x[vq], x[fit], y[vq], y[fit], 1000, metric="cosine")
    report(f"efficientnet-lite0 features themselves: validation mAP@1000 {base:.3f}, triplet accuracy "
           f"{triplet_accuracy(x[held], val_trip):.4f}\n")
    report("| candidate | lr | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1))
           + " | ITQ 64 (last) | triplet acc. (last) | s/epoch |")
    report("|---|---|" + "---|" * args.epochs + "---|---|---:|")
    lrs = [float(v) for v in args.select_lr.split(",")]
    chosen = [CANDIDATES[int(i)] for i in args.candidates.split(",")] if args.candidates else CANDIDATES
    for name, changes in chosen:
        for lr in (lrs if name == chosen[0][0] or args.lr_all else lrs[:1]):
            cfg = _config({**changes, "lr": lr}, args)
            trainer = Trainer(cfg, args.device)
            data = class_data(y[sub], cfg)
            cells, secs = [], []
            for _ in range(args.epochs):
                rec = trainer.train_epoch(x[sub], data)
                secs.append(rec["seconds"])
                e_fit = trainer.embed(x[fit])
                cells.append(retrieval_map(trainer.embed(x[vq]), e_fit, y[vq], y[fit], 1000, metric="cosine"))
            h = get_hasher("itq", n_bits=64, random_state=0).fit(e_fit)
            itq = retrieval_map(h.transform(trainer.embed(x[vq])), h.transform(e_fit), y[vq], y[fit], 1000)
            acc = triplet_accuracy(trainer.embed(x[held]), val_trip)
            report(f"| {name} | {lr:g} | " + " | ".join(f"{c:.3f}" for c in cells)
                   + f" | {itq:.3f} | {acc:.4f} | {np.mean(secs):.0f} |")
    report("")


def run_main(args: argparse.Namespace, report: Report) -> None:
    from lookalike.triplet.trainer import train_features, triplet_accuracy

    train, test = load_split("fashion-mnist", "train"), load_split("fashion-mnist", "test")
    picks = np.sort(np.random.default_rng(args.seed).choice(len(test), args.queries, replace=False))
    ql, dbl = test.labels[picks], train.labels
    db, xt = features("fashion-mnist", "train", FEATURE), features("fashion-mnist", "test", FEATURE)
    q = xt[picks]
    bits = [int(b) for b in args.bits.split(",")]
    cfg = _config(CHOSEN, args)
    report(f"{args.queries} Fashion-MNIST test queries (seed {args.seed}) against the {len(db):,} training images. "
           "Cells: mAP@1000 (stable ranking) / mAP@10000 (grouped ties) / tie-aware mAP@1000. Hashers fitted on the "
           "training set's vectors (random_state 0); every row computed in this run.\n")
    t0 = time.perf_counter()
    lines: list[str] = []
    trainer = train_features(db, dbl.astype(np.int64), cfg, args.epochs, device=args.device, threads=args.threads,
                             suspect_k=10, log=lambda s: (print(s, flush=True), lines.append(s)))
    wall = time.perf_counter() - t0
    e_db, e_q = trainer.embed(db), trainer.embed(q)
    test_trip = _class_triplets(test.labels.astype(np.int64), 4, np.random.default_rng([args.seed, 2]))
    acc_feat = triplet_accuracy(xt, test_trip)
    acc = triplet_accuracy(trainer.embed(xt), test_trip)
    report(f"Triplet head: {cfg.to_json()}, {args.epochs} epochs on the 60,000 training images, device "
           f"{trainer.device}, {wall:.0f} s (with the suspects search).\n")
    report("| method | " + " | ".join(f"{b} bits" for b in bits) + " | fit s (last) |")
    report("|---|" + "---|" * len(bits) + "---:|")
    ceiling = scores(q, db, ql, dbl, "cosine")
    report(f"| float cosine on {FEATURE} (5,120 bytes; unsupervised) | "
           + " | ".join(f"{ceiling[0]:.3f} / {ceiling[1]:.3f}" for _ in bits) + " | – |")
    _hash_row(report, "ITQ on efficientnet-lite0 (unsupervised)", "itq", bits, db, q, ql, dbl)
    emb = scores(e_q, e_db, ql, dbl, "cosine")
    report(f"| **triplet embedding, float cosine ({cfg.dim * 4:,} bytes)** | "
           + " | ".join(f"{emb[0]:.3f} / {emb[1]:.3f}" for _ in bits) + f" | {wall:.0f} |")
    for name in args.hashers.split(","):
        _hash_row(report, f"triplet embedding → {name.upper()}", name, bits, e_db, e_q, ql, dbl)
    report("")
    report(f"Held-out triplet accuracy ({len(test_trip):,} seeded triplets of the 10,000 test images, 4 per image: "
           f"a random image of its class, one of another; never trained on): efficientnet-lite0 features "
           f"{acc_feat:.4f}, triplet embedding **{acc:.4f}**.\n")
    suspects = trainer.suspects
    report(f"Suspected label errors in the training set (≥ 80% of the 10 nearest training images in the "
           f"embedding labelled otherwise): {len(suspects):,} of 60,000.")
    if suspects:
        report("Most disagreeing: " + ", ".join(
            f"#{s.item} {_NAMES[s.label]}→{_NAMES[s.looks_like]}" for s in suspects[:8]) + ".")
    report("")


_NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def _hash_row(report: Report, label: str, name: str, bits: list[int], db: np.ndarray, q: np.ndarray,
              ql: np.ndarray, dbl: np.ndarray) -> None:
    from lookalike.hashing import get_hasher

    cells, fit_s = [], 0.0
    for b in bits:
        t0 = time.perf_counter()
        h = get_hasher(name, n_bits=b, random_state=0).fit(db)
        fit_s = time.perf_counter() - t0
        cells.append(_cell(scores(h.transform(q), h.transform(db), ql, dbl, "hamming")))
    report(f"| {label} | " + " | ".join(cells) + f" | {fit_s:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="store_true", help="choose the settings on the validation split")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs (default {CHOSEN_EPOCHS}, or 4 per candidate with --select)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--hashers", default="itq,pcah,lsh,sh,sph,kmh")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the protocol's query seed")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=1, help="the validation split's seed (--select)")
    parser.add_argument("--select-limit", type=int, default=20_000,
                        help="training images per candidate (--select; 0: all 50,000)")
    parser.add_argument("--select-lr", default="1e-3,3e-3", help="learning rates (--select)")
    parser.add_argument("--lr-all", action="store_true", help="every candidate at every --select-lr")
    parser.add_argument("--candidates", help="comma-separated indices into CANDIDATES (--select; default all)")
    parser.add_argument("--report", help="also write the table to this file (markdown)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.epochs is None:
        args.epochs = 4 if args.select else CHOSEN_EPOCHS
    report = Report()
    title = "Choosing the triplet settings on a validation split" if args.select else "The triplet embedding"
    report(f"### {title}\n")
    report(stamp())
    t0 = time.perf_counter()
    (run_select if args.select else run_main)(args, report)
    report(f"Total wall time {time.perf_counter() - t0:.0f} s.")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(report.text())


if __name__ == "__main__":
    main()
