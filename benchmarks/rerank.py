"""How close learned 64-bit codes (+ re-ranking) come to exact float search, through the catalogue.

10,000 Fashion-MNIST training images are indexed with ``lookalike index DIR --hash itq --bits 64`` (the real CLI);
1,000 held-out test images are searched through ``Catalog.search_many``: exact cosine on the 1280-d float vectors,
Hamming on the 64-bit codes, and the best N candidates by asymmetric score re-ranked by exact cosine
(``--rerank N``); beside it, in the same run, the earlier candidate rule (Hamming top N, then cosine). Reported:
mean overlap of each top 10 with the exact top 10, the share of queries whose top 10 is identical (same ids, same
order), and precision@10 by class.

Run: ``python benchmarks/rerank.py [--n 10000] [--queries 1000] [--hash itq] [--bits 64] [--rerank 100,300,1000]
[--write]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _stamp import Report, stamp, write_section

from lookalike.catalog import Catalog, SearchResult
from lookalike.datasets import export_image_folder, load_fashion_mnist


def _row(name: str, got: list[list[SearchResult]], exact: list[list[SearchResult]], queries: list[Path],
         seconds: float) -> str:
    overlap = sum(len({h.id for h in g} & {h.id for h in e}) for g, e in zip(got, exact, strict=True))
    same = sum([h.id for h in g] == [h.id for h in e] for g, e in zip(got, exact, strict=True))
    hits = sum(Path(h.id).parent.name == q.parent.name for g, q in zip(got, queries, strict=True) for h in g)
    n = len(queries)
    return (f"| {name} | {overlap / (10 * n):.3f} | {same / n:.3f} | {hits / (10 * n):.3f} | "
            f"{seconds * 1000 / n:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hash", default="itq")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--rerank", default="100,300,1000")
    parser.add_argument("--write", action="store_true", help="replace this table's section in BENCHMARKS.md")
    args = parser.parse_args()
    out = Report()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export_image_folder(load_fashion_mnist("train"), work / "images", limit=args.n, seed=0)
        queries = export_image_folder(load_fashion_mnist("test"), work / "queries", limit=args.queries, seed=1)
        exe = Path(sys.executable).parent / "lookalike"
        subprocess.run([str(exe), "index", str(work / "images"), "--catalog", str(work / "cat"), "--hash", args.hash,
                        "--bits", str(args.bits)], check=True, capture_output=True)
        out(f"## Learned codes vs exact search through the catalogue ({args.hash}, {args.bits} bits)\n")
        out(stamp())
        out(f"{args.n} training images indexed with `lookalike index DIR --hash {args.hash} --bits {args.bits}`; "
            f"{len(queries)} held-out test queries; top 10. Overlap = |top 10 ∩ exact top 10| / 10.\n")
        out("| search | overlap with exact | identical top 10 | precision@10 | ms/query |")
        out("|---|---:|---:|---:|---:|")
        with Catalog(work / "cat") as cat:
            float_spec = cat.encoder.base.spec  # type: ignore[attr-defined]
            t = time.perf_counter()
            exact = cat.search_many(queries, k=10, encoder=float_spec)
            out(_row(f"exact cosine, 1280-d float ({float_spec})", exact, exact, queries, time.perf_counter() - t))
            t = time.perf_counter()
            hamming = cat.search_many(queries, k=10)
            out(_row(f"Hamming on {args.bits}-bit codes", hamming, exact, queries, time.perf_counter() - t))
            for depth in (int(d) for d in args.rerank.split(",")):
                t = time.perf_counter()
                ranked = _hamming_pool_reranked(cat, queries, depth)
                out(_row(f"Hamming top {depth}, re-ranked by cosine (the earlier rule)", ranked, exact, queries,
                         time.perf_counter() - t))
                t = time.perf_counter()
                ranked = cat.search_many(queries, k=10, rerank=depth)
                out(_row(f"**asymmetric top {depth}, re-ranked by cosine (`--rerank {depth}`)**", ranked, exact,
                         queries, time.perf_counter() - t))
    if args.write:
        write_section(out.text())


def _hamming_pool_reranked(cat: Catalog, queries: list[Path], depth: int) -> list[list[SearchResult]]:
    """The candidate rule before asymmetric scoring: the ``depth`` nearest codes by Hamming distance, then exact
    cosine top 10 among them (through the catalogue's public index views, for comparison in the same run)."""
    hashed = cat.encoder
    floats = hashed.base.encode(queries)  # type: ignore[attr-defined]
    codes = hashed.codes_of(floats)  # type: ignore[attr-defined]
    _, pools = cat.vector_index(hashed.spec).search(codes, depth)
    float_index = cat.vector_index(hashed.base.spec)  # type: ignore[attr-defined]
    out = []
    for i, pool in enumerate(pools):
        scores, found = float_index.search(floats[i : i + 1], 10, keys=pool[pool >= 0])
        items = cat.items_by_key(found[0][found[0] >= 0].tolist())
        out.append([SearchResult(items[k].id, items[k].path, float(s), 1.0 - float(s), items[k].metadata)
                    for s, k in zip(scores[0].tolist(), found[0].tolist(), strict=True) if k in items])
    return out


if __name__ == "__main__":
    main()
