"""Precision@10 on Fashion-MNIST: index 10,000 exported training images with ``lookalike index``, search with
held-out test images, count how many of the top 10 share the query's class.

The catalogue is built by the real CLI (``lookalike index DIR``) from PNG files, exactly as a user would; queries go
through ``Catalog.search_many`` (the code path behind ``lookalike search``), so a thousand queries do not pay a
thousand process start-ups. A few queries are also run through the CLI and must give the same top 10.

Run: ``python benchmarks/fashion_precision.py [--n 10000] [--queries 1000] [--encoders SPEC,SPEC…]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _stamp import stamp

from lookalike.catalog import Catalog
from lookalike.datasets import export_image_folder, load_fashion_mnist


def _cli(*argv: object) -> str:
    exe = Path(sys.executable).parent / "lookalike"
    proc = subprocess.run([str(exe), *map(str, argv)], capture_output=True, text=True, check=True)
    return proc.stdout


def run(spec: str, images: Path, queries: list[Path], workdir: Path, k: int) -> tuple[float, float, float, int]:
    """(precision@k, index seconds, search ms per query, CLI agreements) for one encoder."""
    catalog = workdir / ("cat-" + "".join(c if c.isalnum() else "_" for c in spec))
    t0 = time.perf_counter()
    _cli("index", images, "--catalog", catalog, "--encoder", spec, "--json")
    index_s = time.perf_counter() - t0
    with Catalog(catalog) as cat:
        t1 = time.perf_counter()
        results = cat.search_many(queries, k=k)
        search_ms = (time.perf_counter() - t1) * 1000 / len(queries)
    hits = sum(Path(r.id).parent.name == q.parent.name for q, rs in zip(queries, results, strict=True) for r in rs)
    agree = 0
    for q, rs in list(zip(queries, results, strict=True))[:3]:
        cli = json.loads(_cli("search", q, "--catalog", catalog, "-k", k, "--json"))["results"]
        agree += [r["id"] for r in cli] == [r.id for r in rs]
    return hits / (k * len(queries)), index_s, search_ms, agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--encoders", default="efficientnet-lite0,efficientnet-lite0:layer=stage5,pixels:size=28,phash")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export_image_folder(load_fashion_mnist("train"), work / "images", limit=args.n, seed=0)
        queries = export_image_folder(load_fashion_mnist("test"), work / "queries", limit=args.queries, seed=1)
        print(f"## Fashion-MNIST precision@{args.k} through `lookalike index` / `search`\n")
        print(stamp())
        print(f"{args.n} training images (class-stratified, seed 0) as PNG; {len(queries)} held-out test queries "
              f"(seed 1); exact search.\n")
        print(f"| encoder | precision@{args.k} | index time (s) | images/s | search ms/query | CLI = library (of 3) |")
        print("|---|---:|---:|---:|---:|---:|")
        for spec in args.encoders.split(","):
            p, index_s, ms, agree = run(spec, work / "images", queries, work, args.k)
            print(f"| `{spec}` | {p:.3f} | {index_s:.1f} | {args.n / index_s:.0f} | {ms:.1f} | {agree}/3 |",
                  flush=True)


if __name__ == "__main__":
    main()
