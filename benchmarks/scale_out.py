"""Scale-out on existing engines (issue 13): the same search and CRUD benchmark on the local index and on Milvus
Lite in one run, and bulk encoding on 1 and 2 Ray workers against the local pipeline.

1. **Index**: ``--n`` efficientnet-lite0 vectors of Fashion-MNIST (1280-d, the evaluation feature cache, as
   benchmarks/service.py uses) in the local exact index (``FloatFlatIndex``) and in Milvus Lite collections (FLAT:
   exact; IVF_FLAT nlist 128, nprobe 8 by default), and 64-bit ITQ codes of them in ``BinaryFlatIndex`` and a Milvus
   ``BINARY_VECTOR`` collection (BIN_FLAT). Measured: bulk insert (vectors/s), single-query latency p50/p95 (k=10,
   ``--queries`` held-out test vectors), a 100-query batch (queries/s), a search filtered to 10% of the keys, 1,000
   upserts and 1,000 deletes (ms), and recall@10 against the exact local answer.
2. **Bulk encoding**: ``--images`` Fashion-MNIST test images as PNG files, indexed into fresh catalogues with the
   default encoder: the local pipeline (threads), then ``--ray`` with 1 and 2 workers (a local Ray started by the
   run; its start-up is reported apart). Per-worker efficiency = (images/s with 2 workers) / (2 x with 1).

Run: ``python benchmarks/scale_out.py [--n 20000] [--images 2000] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.hashing import ITQ
from lookalike.index import BinaryFlatIndex, FloatFlatIndex, MilvusIndex, VectorIndex

FEATURES = Path(os.environ.get("LOOKALIKE_CACHE_DIR", Path.home() / ".cache" / "lookalike")) / "features"


def _ms(fn: Callable[[], object], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) * 1000 / repeat


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found.tolist(), exact.tolist(), strict=True)]))


def index_rows(name: str, make: Callable[[], VectorIndex], x: np.ndarray, queries: np.ndarray,
               exact: np.ndarray, spare: np.ndarray, out: Report) -> None:
    index = make()
    keys = np.arange(len(x), dtype=np.int64)
    start = time.perf_counter()
    for lo in range(0, len(x), 5000):
        index.add(keys[lo:lo + 5000], x[lo:lo + 5000])
    insert = len(x) / (time.perf_counter() - start)
    index.search(queries[:1], 10)  # warm
    single = [_ms(lambda q=q: index.search(q[None, :], 10)) for q in queries]
    batch = _ms(lambda: index.search(queries[:100], 10))
    found = index.search(queries, 10).keys
    allowed = keys[::10]
    filtered = _ms(lambda: index.search(queries[:10], 10, keys=allowed)) / 10
    upsert = _ms(lambda: index.add(keys[:1000], spare[:1000]))
    delete = _ms(lambda: index.remove(keys[1000:2000]))
    p50, p95 = statistics.median(single), float(np.percentile(single, 95))
    out(f"| {name} | {insert:,.0f} | {p50:.2f} | {p95:.2f} | {100 / batch * 1000:,.0f} | {filtered:.2f} | "
        f"{upsert:.0f} | {delete:.0f} | {_recall(found, exact):.3f} |")
    if isinstance(index, MilvusIndex):
        index.drop()


def index_benchmark(n: int, n_queries: int, nprobe: int, out: Report) -> None:
    train = np.load(FEATURES / "fashion-mnist-train-efficientnet-lite0.npy", mmap_mode="r")
    test = np.load(FEATURES / "fashion-mnist-test-efficientnet-lite0.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    x = np.ascontiguousarray(train[rng.choice(len(train), n, replace=False)], dtype=np.float32)
    queries = np.ascontiguousarray(test[rng.choice(len(test), n_queries, replace=False)], dtype=np.float32)
    spare = np.ascontiguousarray(train[rng.choice(len(train), 1000, replace=False)], dtype=np.float32)
    itq = ITQ(n_bits=64, random_state=0).fit(x[:20000])
    codes, qcodes, scodes = (itq.transform(a) for a in (x, queries, spare))
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"milvus://{tmp}/bench.db"
        exact = FloatFlatIndex(x.shape[1])
        exact.add(np.arange(n), x)
        want = exact.search(queries, 10).keys
        exact_codes = BinaryFlatIndex(64)
        exact_codes.add(np.arange(n), codes)
        want_codes = exact_codes.search(qcodes, 10).keys
        out(f"{n:,} vectors; {n_queries} single queries (k=10); batch of 100; filter: every 10th key; 1,000 upserts "
            "and 1,000 deletes; recall@10 against the exact local answer (for codes: the exact Hamming top 10)")
        out()
        out("| index | insert vectors/s | search p50 ms | p95 ms | batch queries/s | filtered ms/query | "
            "1,000 upserts ms | 1,000 deletes ms | recall@10 |")
        out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        dim = x.shape[1]
        index_rows("local FloatFlatIndex (exact)", lambda: FloatFlatIndex(dim), x, queries, want, spare, out)
        index_rows("Milvus Lite FLAT (exact)", lambda: MilvusIndex(dim, uri=uri, collection="flat", batch=2000),
                   x, queries, want, spare, out)
        index_rows(f"Milvus Lite IVF_FLAT nlist 128, nprobe {nprobe}", lambda: MilvusIndex(
            dim, uri=uri, collection="ivf", index_type="IVF_FLAT", index_params={"nlist": 128},
            search_params={"nprobe": nprobe}, batch=2000), x, queries, want, spare, out)
        index_rows("local BinaryFlatIndex, ITQ-64 codes", lambda: BinaryFlatIndex(64), codes, qcodes, want_codes,
                   scodes, out)
        index_rows("Milvus Lite BIN_FLAT, ITQ-64 codes", lambda: MilvusIndex(
            64, "hamming", uri=uri, collection="codes", batch=5000), codes, qcodes, want_codes, scodes, out)


def _export(folder: Path, n: int) -> Path:
    from PIL import Image

    from lookalike.datasets import load_fashion_mnist

    images = load_fashion_mnist("test").images[:n]
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"f{i:05d}.png")
    return folder


def encode_benchmark(n: int, out: Report) -> None:
    from PIL import Image

    from lookalike.catalog import Catalog
    from lookalike.encoders import get_encoder

    get_encoder("efficientnet-lite0").encode_pil([Image.new("RGB", (8, 8))])  # the model exported, outside timings
    with tempfile.TemporaryDirectory() as tmp:
        photos = _export(Path(tmp) / "photos", n)
        rows = []
        for label, ray, workers in (("local pipeline (threads)", None, None), ("Ray, 1 worker", "local", 1),
                                    ("Ray, 2 workers", "local", 2)):
            import ray as ray_module

            started = 0.0
            if ray is not None:
                t0 = time.perf_counter()
                ray_module.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
                started = time.perf_counter() - t0
            with Catalog(Path(tmp) / f"cat-{label[:5]}-{workers}") as cat:
                t0 = time.perf_counter()
                report = cat.index_folder(photos, ray=ray, ray_workers=workers)
                seconds = time.perf_counter() - t0
            if ray is not None:
                ray_module.shutdown()
            assert len(report.added) == n, report
            rows.append((label, n / seconds, started))
        one = rows[1][1]
        out(f"{n:,} Fashion-MNIST PNGs into a fresh catalogue (efficientnet-lite0), time of `index_folder` (Ray "
            "already started; its start-up apart)")
        out()
        out("| how | images/s | Ray start-up s | per-worker efficiency |")
        out("|---|---:|---:|---:|")
        for label, rate, started in rows:
            eff = "" if "worker" not in label else f"{rate / (one * (2 if '2' in label else 1)):.2f}"
            out(f"| {label} | {rate:.1f} | {started:.1f} | {eff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--only", choices=["index", "encode"], help="run one part")
    parser.add_argument("--write", action="store_true", help="replace this section of BENCHMARKS.md")
    args = parser.parse_args()
    out = Report()
    out("## Scale-out: Milvus Lite against the local index, Ray bulk encoding (issue 13)")
    out()
    out(stamp())
    if args.only != "encode":
        index_benchmark(args.n, args.queries, args.nprobe, out)
        out()
    if args.only != "index":
        encode_benchmark(args.images, out)
    if args.write:
        write_section(out.text())


if __name__ == "__main__":
    main()
