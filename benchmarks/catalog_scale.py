"""A catalogue at scale: search by learned codes + re-ranking against exact float search, at 100k and 1M items.

Items: the 70,000 efficientnet-lite0 vectors of Fashion-MNIST (train + test, the feature cache), and for larger
catalogues noisy variants of them (``normalize(v + e)``, ``|e| ~ 0.25``: cosine ~0.97 to the original, like another
photo of the same product), so that no two items are equal. Queries: 200 fresh noisy variants of test-split
items (seeded), encoded already: the times exclude the encoder and the decoding.

For each size, in fresh processes so that the memory figures are each mode's own:

- **codes** (what a catalogue past ``search.codes_at`` searches by default): 64-bit ITQ codes, a Hamming shortlist
  by the compiled scan, the asymmetric score, the best ``--rerank`` candidates re-ranked by exact cosine on
  their float vectors read from the store;
- **exact**: the float search (``encoder=`` the float encoder: every vector loaded, a full scan).

Reported: time to open the catalogue and answer the first query, p50 / p95 latency of the following queries,
recall@10 of the codes against the exact answer, and the process's resident memory (VmRSS; RssAnon, the
process's own allocations, and RssFile, pages of the database file mapped by SQLite).

    python benchmarks/catalog_scale.py                      # 100k and 1M (builds ~6 GB under ~/.cache once)
    python benchmarks/catalog_scale.py --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _stamp import stamp

CACHE = Path(os.environ.get("LOOKALIKE_CACHE_DIR", Path.home() / ".cache" / "lookalike"))
ENCODER = "efficientnet-lite0"
NOISE = 0.25


def base_vectors() -> np.ndarray:
    parts = [np.load(CACHE / "features" / f"fashion-mnist-{s}-{ENCODER}.npy") for s in ("train", "test")]
    return np.concatenate(parts).astype(np.float32)


def variants(base: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = base[rows % len(base)] + rng.standard_normal((len(rows), base.shape[1]), dtype=np.float32) * (
        NOISE / np.sqrt(base.shape[1]))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return noisy.astype(np.float32)


def item_vectors(base: np.ndarray, start: int, stop: int) -> np.ndarray:
    rows = np.arange(start, stop)
    out = variants(base, rows, seed=start)
    original = rows < len(base)
    out[original] = base[rows[original]]
    return out


def build(path: Path, n: int, base: np.ndarray) -> None:
    from lookalike.catalog import Catalog
    from lookalike.catalog.store import NewItem, Store

    if (path / "catalog.sqlite").exists():
        with Catalog(path) as cat:
            if cat.count() == n and cat.find_hashed("itq", 64) is not None:
                if not any("+sketch:" in e["spec"] for e in cat.info()["encoders"]):  # built before the sketch
                    t1 = time.perf_counter()
                    cat.fit_hasher("itq", 64)
                    print(f"- refitted ITQ-64 with its sketch in {time.perf_counter() - t1:.0f} s", flush=True)
                return
        raise SystemExit(f"{path} holds another catalogue: remove it")
    t0 = time.perf_counter()
    with Catalog(path, ENCODER) as cat:
        cat.put_setting("search.codes_at", "off")  # fitted below, explicitly, and timed
    store = Store(path, create=False)
    num = store.encoders()[0].num
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        vectors = item_vectors(base, start, stop)
        with store.transaction() as tx:
            for i in range(start, stop):
                key = tx.insert_item(f"item/{i:07d}", NewItem(None, f"{i:064x}", 224, 224), f'{{"i": {i}}}')
                tx.put_vectors(num, [key], vectors[i - start : i - start + 1])
    store.close()
    built = time.perf_counter() - t0
    with Catalog(path) as cat:
        t1 = time.perf_counter()
        cat.fit_hasher("itq", 64)
        fitted = time.perf_counter() - t1
    print(f"- built {n:,} items in {built:.0f} s; fitted ITQ-64 and hashed them in {fitted:.0f} s", flush=True)


def queries(base: np.ndarray, count: int) -> np.ndarray:
    rows = np.random.default_rng(12345).choice(np.arange(60_000, 70_000), count, replace=False)
    return variants(base, rows, seed=999)


MEASURE = r"""
import json, sys, time, numpy as np
from lookalike.catalog import Catalog
from lookalike.catalog.query import EncodedQueries
path, mode, rerank, qfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
floats = np.load(qfile)
t0 = time.perf_counter()
cat = Catalog(path, read_only=True)
pipe = cat.pipeline
hashed = cat.find_hashed("itq", 64)
rerank = rerank or pipe.rerank_for(hashed.spec, None)  # 0: the catalogue's default depth
def one(q):
    if mode == "codes":
        batch = EncodedQueries(hashed.spec, hashed.codes_of(q[None]), rerank, q[None])
    else:
        batch = EncodedQueries("efficientnet-lite0", q[None])
    return pipe.retrieve(batch, k=10)[0]
first = one(floats[0])
opened = time.perf_counter() - t0
times, found = [], []
for q in floats:
    t = time.perf_counter(); hits = one(q); times.append(time.perf_counter() - t)
    found.append([h.id for h in hits])
status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if l.split(":")[0] in
          ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
print(json.dumps({"open_s": opened, "p50_ms": 1000 * float(np.median(times)),
                  "p95_ms": 1000 * float(np.percentile(times, 95)), "found": found, "status_kib": status}))
"""


def measure(path: Path, mode: str, rerank: int, qfile: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), mode, str(rerank), str(qfile)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--rerank", type=int, default=0,
                        help="candidates re-ranked exactly (default 0: the catalogue's own default, 80 with a sketch)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=CACHE / "bench-scale")
    args = parser.parse_args()
    print("## A catalogue at scale: codes + re-ranking against exact float search (issue 12)\n")
    print(stamp())
    base = base_vectors()
    q = queries(base, args.queries)
    qfile = args.workdir / "queries.npy"
    args.workdir.mkdir(parents=True, exist_ok=True)
    np.save(qfile, q)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        path = args.workdir / f"items-{n}"
        build(path, n, base)
        codes = measure(path, "codes", args.rerank, qfile)
        exact = measure(path, "exact", args.rerank, qfile)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(codes["found"], exact["found"], strict=True)])
        for name, m in (("codes + re-rank", codes), ("exact float", exact)):
            st = m["status_kib"]
            rows.append(f"| {n:,} | {name} | {m['open_s']:.2f} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | "
                        f"{recall if name.startswith('codes') else 1.0:.3f} | {st['VmRSS'] / 1024:,.0f} | "
                        f"{st['RssAnon'] / 1024:,.0f} | {st['RssFile'] / 1024:,.0f} | {st['VmHWM'] / 1024:,.0f} |")
        ratio = codes["status_kib"]["VmHWM"] / exact["status_kib"]["VmHWM"]
        rows.append(f"| {n:,} | codes / exact | | {codes['p50_ms'] / exact['p50_ms']:.3f} | | | | | | {ratio:.2f} |")
        print(rows[-3], rows[-2], rows[-1], sep="\n", flush=True)
    print(f"\nSearch latency excludes the encoder; re-ranking {args.rerank or 'the default number of'} candidates; "
          f"{args.queries} queries, "
          "k = 10:\n")
    print("| items | search | open + first query s | p50 ms | p95 ms | recall@10 | RSS MiB | anon MiB | file MiB | "
          "peak MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
