"""The weight of "less like those" in a search from examples (issue 14, part 4), chosen on a validation split.

``Catalog.similar(like, unlike=...)`` searches with Rocchio's query (``lookalike.catalog.query.rocchio``): the mean
of the liked items' unit vectors minus ``beta`` times the mean of the unliked ones', re-normalised. This measures
which ``beta`` serves a user best, on Fashion-MNIST's cached efficientnet-lite0 features (relevant = same class).

The scenario: a user searches from a reference item, looks at the top 20 results and marks up to 3 of the query's
class as "more like these" and up to 3 of other classes as "less like those" (the first such in rank order). The
examples are then searched: liked = the reference and its marked items, unliked = the others. Every method's
ranking leaves the marked items out (the catalogue does; the user has seen them), the single-query baseline's
too, so the rows compare rankings of the same items; mAP@1000 (``lookalike.evaluation.map_at_k``, the standard
definition of ``retrieval_map``) and P@10 of the rest.

1. Validation (chooses ``beta``): a seeded permutation (``--split-seed``) of the 60,000 training rows: 50,000 are
   the database, 1,000 of the other 10,000 the references. ``beta`` in {0, 0.25, 0.5, 0.75, 1.0} (0: liked items
   only), and a max-similarity fusion of the liked items (each item scored by its best cosine to one of them).
2. Test (reports): 1,000 test-split queries (``--seed``, the protocol's choice) against the 60,000 training rows,
   examples picked the same way, at the chosen ``beta``.

Run: ``python benchmarks/examples.py [--write]`` (a few minutes on 2 cores: float32 matrix products in batches).
``--write`` puts the section into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.catalog.query import rocchio
from lookalike.evaluation import map_at_k, precision_at_k, retrieval_map
from lookalike.evaluation.protocol import features, load_split

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SHOWN, MARKED, DEPTH, BATCH = 20, 3, 1000, 250


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k best scores of each query, best first (ties by row)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part.sort(axis=1)
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def pick_examples(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per query: the first MARKED of its class and the first MARKED of other classes in its top SHOWN."""
    liked, unliked = [], []
    for start in range(0, len(q), BATCH):
        shown = top(q[start : start + BATCH] @ db.T, SHOWN)
        for row, label in zip(shown, ql[start : start + BATCH], strict=True):
            same = dbl[row] == label
            liked.append(row[same][:MARKED])
            unliked.append(row[~same][:MARKED])
    return liked, unliked


Scorer = Callable[[slice], np.ndarray]  # a batch of queries → (batch, n) scores of the database


def evaluate(db: np.ndarray, dbl: np.ndarray, ql: np.ndarray, excluded: list[np.ndarray], scores: Scorer
             ) -> np.ndarray:
    """(nq, DEPTH) relevance of the rankings by ``scores``, each query's ``excluded`` rows left out."""
    n = len(ql)
    relevant = np.zeros((n, DEPTH), dtype=bool)
    for start in range(0, n, BATCH):
        rows = slice(start, min(n, start + BATCH))
        s = scores(rows)
        for j, i in enumerate(range(rows.start, rows.stop)):
            s[j, excluded[i]] = -np.inf
        relevant[rows] = dbl[top(s, DEPTH)] == ql[rows, None]
    return relevant


def label(beta: float) -> str:
    return "liked only (mean; beta 0)" if beta == 0 else f"liked + unliked, beta {beta}"


def scenario(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray, betas: tuple[float, ...],
             report: Report, fusion: bool) -> dict[str, tuple[float, float]]:
    t0 = time.perf_counter()
    liked, unliked = pick_examples(q, db, ql, dbl)
    excluded = [np.concatenate([a, b]) for a, b in zip(liked, unliked, strict=True)]
    counts = np.array([[len(a), len(b)] for a, b in zip(liked, unliked, strict=True)])
    report(f"{len(q):,} references; marked per reference: {counts[:, 0].mean():.2f} liked, {counts[:, 1].mean():.2f} "
           f"unliked on average ({np.mean(counts[:, 0] == 0):.1%} have no item of their class in the top {SHOWN}, "
           f"{np.mean(counts[:, 1] == 0):.1%} none of another class).\n")

    def examples(i: int) -> np.ndarray:  # the liked rows of query i: the reference and its marked items
        return np.vstack([q[i : i + 1], db[liked[i]]])

    def by_rocchio(beta: float) -> Scorer:
        def scores(rows: slice) -> np.ndarray:
            return np.concatenate([rocchio(examples(i), db[unliked[i]], beta)
                                   for i in range(rows.start, rows.stop)]) @ db.T
        return scores

    def by_best_liked(rows: slice) -> np.ndarray:  # each item's best cosine to one of the liked
        groups = [examples(i) for i in range(rows.start, rows.stop)]
        s = np.vstack(groups) @ db.T
        bounds = np.cumsum([0, *map(len, groups)])
        return np.stack([s[a:b].max(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])

    found: dict[str, np.ndarray] = {}
    found["single query (the reference)"] = evaluate(db, dbl, ql, excluded, lambda rows: q[rows] @ db.T)
    for beta in betas:
        found[label(beta)] = evaluate(db, dbl, ql, excluded, by_rocchio(beta))
    if fusion:
        found["liked only, max-similarity fusion"] = evaluate(db, dbl, ql, excluded, by_best_liked)
    some = counts[:, 1] > 0  # the references with an unliked item: where the weight can matter
    report(f"| query | mAP@1000 | P@10 | mAP@1000, the {some.sum():,} with an unliked item | P@10, those |")
    report("|---|---:|---:|---:|---:|")
    out: dict[str, tuple[float, float]] = {}
    for name, relevant in found.items():
        out[name] = map_at_k(relevant, DEPTH), precision_at_k(relevant, 10)
        report(f"| {name} | {out[name][0]:.4f} | {out[name][1]:.4f} | {map_at_k(relevant[some], DEPTH):.4f} | "
               f"{precision_at_k(relevant[some], 10):.4f} |")
    report(f"\n({time.perf_counter() - t0:.0f} s)\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the protocol's test-query seed")
    parser.add_argument("--split-seed", type=int, default=0, help="the validation split's seed")
    parser.add_argument("--write", action="store_true", help="replace this section in BENCHMARKS.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    train = unit(features("fashion-mnist", "train", "efficientnet-lite0"))
    test = unit(features("fashion-mnist", "test", "efficientnet-lite0"))
    train_labels = load_split("fashion-mnist", "train").labels
    test_labels = load_split("fashion-mnist", "test").labels

    report = Report()
    report('## More like these, less like those: the weight of the unliked items (issue 14, part 4)\n')
    report(stamp())
    report("Fashion-MNIST, efficientnet-lite0 features (1280-d, unit rows), relevant = same class. A user searches "
           f"from a reference, looks at the top {SHOWN} and marks up to {MARKED} of its class as liked and up to "
           f"{MARKED} of other classes as unliked (the first in rank order); the query is Rocchio's "
           "(`lookalike.catalog.query.rocchio`: mean of the reference and the liked items minus beta x the mean "
           "of the unliked ones). Every row ranks the database without the marked items. mAP@1000 and P@10.\n")

    perm = np.random.default_rng(args.split_seed).permutation(len(train))
    db_rows, ref_rows = perm[:50_000], perm[50_000 : 50_000 + args.queries]
    report(f"### Validation: {len(ref_rows):,} training rows as references against the other 50,000 (split seed "
           f"{args.split_seed}); chooses beta\n")
    val = scenario(train[ref_rows], train[db_rows], train_labels[ref_rows], train_labels[db_rows], BETAS, report,
                   fusion=True)
    weighted = {beta: val[label(beta)][0] for beta in BETAS}
    chosen = max(BETAS, key=lambda b: (round(weighted[b], 4), -b))  # the best mAP@1000; a tie: the smaller beta
    report(f"Chosen on validation mAP@1000: beta = {chosen}.\n")

    picks = np.sort(np.random.default_rng(args.seed).choice(len(test), args.queries, replace=False))
    report(f"### Test: {len(picks):,} test-split queries (seed {args.seed}) against the 60,000 training rows, "
           f"beta = {chosen}\n")
    ceiling = retrieval_map(test[picks], train, test_labels[picks], train_labels, DEPTH, metric="cosine")
    report(f"(The protocol's mAP@1000 of the single query, nothing left out: {ceiling:.4f}.)\n")
    scenario(test[picks], train, test_labels[picks], train_labels, tuple(dict.fromkeys((0.0, chosen))), report,
             fusion=False)
    report(f"Total wall time {time.perf_counter() - t0:.0f} s.")
    if args.write:
        write_section(report.text())


if __name__ == "__main__":
    main()
