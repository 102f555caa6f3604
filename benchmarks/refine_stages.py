"""How many candidates a search by learned codes must re-rank, on the validation split that chose the default.

Validation split: 50,000 of Fashion-MNIST's 60,000 training vectors (efficientnet-lite0, the feature cache) as the
catalogue, 1,000 of the remaining 10,000 as queries (a seeded permutation); the test split is never looked at here.
ITQ-64 fitted on the 50,000. Recall@10 against the exact cosine top 10 of:

1. two stages (what the catalogue does): a Hamming shortlist of ``H``, the best ``D`` by the asymmetric score, exact
   cosine on those ``D`` (``D`` float vectors read per query);
2. three stages (the design for a 10 ms search at 1M items): the same ``D``, scored by a PCA-``d`` float16 sketch of
   every item, exact cosine on only the best ``M`` (``M`` vectors read per query).

    python benchmarks/refine_stages.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from _stamp import stamp

from lookalike.hashing import get_hasher
from lookalike.index.kernels import cosine_topk, hamming_topk

CACHE = Path(os.environ.get("LOOKALIKE_CACHE_DIR", Path.home() / ".cache" / "lookalike")) / "features"


def main() -> None:
    train = np.load(CACHE / "fashion-mnist-train-efficientnet-lite0.npy")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(train))
    db, queries = train[perm[:50_000]], train[perm[50_000:51_000]]
    hasher = get_hasher("itq", n_bits=64, random_state=0)
    hasher.fit(db)
    codes = np.ascontiguousarray(hasher.transform(db), dtype=np.uint8)
    query_codes = np.ascontiguousarray(hasher.transform(queries), dtype=np.uint8)
    exact = cosine_topk(queries, db, 10)[1]
    projections = hasher.project(queries).astype(np.float32)
    signs = np.unpackbits(codes, axis=1).astype(np.float32) * 2 - 1

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(a[:10]) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]))

    def best(candidates: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
        return np.take_along_axis(candidates, np.argsort(-scores, axis=1, kind="stable")[:, :n], axis=1)

    print("## Re-ranking depth on the validation split (issue 12)\n")
    print(stamp())
    print("\n| stages | Hamming shortlist H | asymmetric best D | sketch | read M | recall@10 |")
    print("|---|---:|---:|---|---:|---:|")
    shortlist = hamming_topk(query_codes, codes, 2000)[1]
    ranked = best(shortlist, np.einsum("qb,qcb->qc", projections, signs[shortlist]), 2000)
    for depth in (100, 200, 300, 400, 800):
        pool = ranked[:, :depth]
        final = best(pool, np.einsum("qd,qcd->qc", queries, db[pool]), 10)
        print(f"| two | 2,000 | {depth} | - | {depth} | {recall(final):.3f} |", flush=True)
    sample = db[rng.choice(len(db), 20_000, replace=False)]
    basis = np.linalg.svd(sample, full_matrices=False)[2]
    for depth in (400, 800):
        pool = ranked[:, :depth]
        for dims in (64, 128, 256):
            p = basis[:dims].T.astype(np.float32)
            sketch, q = (db @ p).astype(np.float16), queries @ p
            by_sketch = best(pool, np.einsum("qd,qcd->qc", q, sketch[pool].astype(np.float32)), 80)
            for m in (20, 40, 80):
                read = by_sketch[:, :m]
                final = best(read, np.einsum("qd,qcd->qc", queries, db[read]), 10)
                print(f"| three | 2,000 | {depth} | PCA-{dims} float16 | {m} | {recall(final):.3f} |", flush=True)

    # What ships (lookalike.catalog._engine.Engine.reranker): the codes' best 1,000 (Hamming 5,000, then the
    # asymmetric score), scored by a PCA-128 float32 sketch fitted as the catalogue fits it (lookalike.index.projection
    # on a seeded 8,192 of the sample), and exact cosine on the best M read.
    from lookalike.index import projection

    shortlist = hamming_topk(query_codes, codes, 5000)[1]
    pool = best(shortlist, np.einsum("qb,qcb->qc", projections, signs[shortlist]), 1000)
    p = projection(db[np.sort(rng.permutation(len(db))[:8192])], 128)
    by_sketch = best(pool, np.einsum("qd,qcd->qc", queries @ p, (db @ p)[pool]), 80)
    for m in (20, 40, 80):
        read = by_sketch[:, :m]
        final = best(read, np.einsum("qd,qcd->qc", queries, db[read]), 10)
        print(f"| three (shipped) | 5,000 | 1,000 | PCA-128 float32 | {m} | {recall(final):.3f} |", flush=True)


if __name__ == "__main__":
    main()
