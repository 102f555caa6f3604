"""Retrieval quality of the classic hashing baselines on the BinGAN paper's protocol (Fashion-MNIST).

Protocol: 1,000 random test images (seed 0) are the queries, the 60,000 training images the database and the
unlabelled training data of every hasher; an item is relevant when it shares the query's class. For each feature
(raw pixels, efficientnet-lite0 embeddings) and each hasher at 16, 32 and 64 bits: mAP of the top 1,000 (the
paper's protocol, standard AP@k: divided by the relevant items found in the top k), mAP of the top 10,000 (the
reference code's cut-off and tie handling), and the tie-aware mAP@1000 (the expected AP over every order of the
items at equal Hamming distance).
The float cosine ranking of the same features is the ceiling row.

Features are cached under the lookalike cache directory (efficientnet-lite0 on 70,000 images takes minutes on 2
cores). Run: ``python benchmarks/retrieval.py [--features pixels,efficientnet-lite0] [--hashers lsh,itq,…]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import stamp
from PIL import Image

from lookalike.datasets import load_fashion_mnist
from lookalike.encoders import get_encoder
from lookalike.encoders.efficientnet import cache_dir
from lookalike.evaluation import retrieval_map
from lookalike.hashing import get_hasher

FEATURES = {"pixels": "pixels:size=28", "efficientnet-lite0": "efficientnet-lite0"}


def features(name: str, split: str) -> np.ndarray:
    """(n, dim) float32 features of a Fashion-MNIST split, cached as .npy."""
    spec = FEATURES[name]
    path = cache_dir() / "features" / f"fashion-mnist-{split}-{spec.replace(':', '_').replace('=', '')}.npy"
    if path.exists():
        return np.load(path)
    data = load_fashion_mnist(split)
    enc = get_encoder(spec)
    x = enc.encode_pil([Image.fromarray(img).convert("RGB") for img in data.images], progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def evaluate(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray, metric: str) -> tuple[float, ...]:
    """(mAP@1000 stable ranking as in the paper's table, mAP@10000 as the reference code computes it (ties
    grouped like sklearn's average_precision_score), tie-aware mAP@1000 (expected AP over tie orders))."""
    return (retrieval_map(q, db, ql, dbl, 1000, metric=metric, ties="stable"),
            retrieval_map(q, db, ql, dbl, 10_000, metric=metric, ties="grouped" if metric == "hamming" else "stable"),
            retrieval_map(q, db, ql, dbl, 1000, metric=metric, ties="expected") if metric == "hamming" else np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="pixels,efficientnet-lite0")
    parser.add_argument("--hashers", default="lsh,pcah,itq,sh,sph,kmh")
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    picks = np.sort(np.random.default_rng(args.seed).choice(len(test), args.queries, replace=False))
    ql, dbl = test.labels[picks], train.labels
    bits = [int(b) for b in args.bits.split(",")]
    print("## Hashing baselines on Fashion-MNIST (BinGAN protocol)\n")
    print(stamp())
    print(f"{args.queries} test queries (seed {args.seed}) against the 60,000 training images; hashers fitted on "
          "the training features (random_state 0). Each cell: mAP@1000 / mAP@10000 / tie-aware mAP@1000.\n")
    for feat in args.features.split(","):
        t0 = time.perf_counter()
        db, q = features(feat, "train"), features(feat, "test")[picks]
        print(f"### {feat} features ({db.shape[1]}-d, extracted or loaded in {time.perf_counter() - t0:.0f} s)\n")
        print("| method | " + " | ".join(f"{b} bits" for b in bits) + " | fit s (64 bits) |")
        print("|---|" + "---|" * len(bits) + "---:|")
        ceiling = evaluate(q, db, ql, dbl, "cosine")
        print(f"| float cosine ({db.shape[1] * 4:,} bytes) | " + " | ".join(
            f"{ceiling[0]:.3f} / {ceiling[1]:.3f}" for _ in bits) + " | – |", flush=True)
        for name in args.hashers.split(","):
            cells, fit_s = [], 0.0
            for b in bits:
                t1 = time.perf_counter()
                hasher = get_hasher(name, n_bits=b, random_state=0).fit(db)
                fit_s = time.perf_counter() - t1
                m = evaluate(hasher.transform(q), hasher.transform(db), ql, dbl, "hamming")
                cells.append(f"{m[0]:.3f} / {m[1]:.3f} / {m[2]:.3f}")
            print(f"| {name.upper()} | " + " | ".join(cells) + f" | {fit_s:.1f} |", flush=True)
        print()


if __name__ == "__main__":
    main()
