"""Exact top-k search throughput: lookalike's kernels against faiss's flat indexes, in the same run.

Binary: ``hamming_topk`` (the compiled, numpy and faiss backends, and what ``auto`` picks) against
``IndexBinaryFlat``, at each of ``--bits`` (64, 128, 256, 512 by default; the wider codes at ``--wide-size`` rows).
Float: ``cosine_topk`` against ``faiss.IndexFlatIP``. Seeded random data. Within each repetition every method
is timed once, in turn, so that load from other processes hits them alike; the table gives the median, in
queries per second, and the ratios ours / faiss index.

    python benchmarks/search.py                                    # the full run recorded in BENCHMARKS.md
    python benchmarks/search.py --sizes 100000 --repeats 3         # a quick one
    python benchmarks/search.py --only binary --bits 64            # the compiled kernel at 64 bits only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss loads: see ARCHITECTURE.md

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import stamp  # noqa: E402

from lookalike.index import kernels  # noqa: E402

COLUMNS = ("data", "n", "batch", "ours numpy", "ours faiss", "faiss index", "auto", "numpy/faiss",
           "auto/faiss")
ROW = "| {:<6} | {:>9} | {:>5} | {:>10} | {:>10} | {:>11} | {:>5} | {:>11} | {:>10} |"
BINARY_COLUMNS = ("data", "n", "batch", "ours compiled", "ours numpy", "faiss index", "auto", "compiled/faiss",
                  "numpy/faiss")
BINARY_ROW = "| {:<7} | {:>9} | {:>5} | {:>13} | {:>10} | {:>11} | {:>8} | {:>14} | {:>11} |"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Exact top-k search throughput against faiss flat indexes.")
    parser.add_argument("--sizes", type=_ints, default=[100_000, 1_000_000], help="e.g. 100000,1000000")
    parser.add_argument("--binary-batches", type=_ints, default=[1, 100, 1000], help="query batch sizes")
    parser.add_argument("--float-batches", type=_ints, default=[1, 100], help="query batch sizes")
    parser.add_argument("--bits", type=_ints, default=[64, 128, 256, 512], help="binary code lengths (multiples of 8)")
    parser.add_argument("--wide-size", type=int, default=250_000, help="rows for codes wider than 64 bits")
    parser.add_argument("--dim", type=int, default=1280, help="float vector dimension")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("binary", "float", "mih"), help="run one part only")
    parser.add_argument("--mih-sizes", type=_ints, default=[1_000_000, 10_000_000],
                        help="codes for the multi-index hashing table (learned codes, replicated)")
    parser.add_argument("--mih-queries", type=int, default=100)
    return parser.parse_args(argv)


def _median_seconds(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each method once untimed (warm-up), then ``repeats`` rounds timing every method once per round."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for run in methods.values():
        run()
    for _ in range(repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _compare(label: str, ours: Callable[..., tuple], base: np.ndarray, index: object, queries: np.ndarray,
             args: argparse.Namespace) -> str:
    """Time ours (both backends) and the faiss index on one query batch; return the table row."""
    nq = len(queries)
    numpy_result = ours(queries, base, args.k, backend="numpy")
    if not np.array_equal(numpy_result[1], ours(queries, base, args.k, backend="faiss")[1]):
        raise SystemExit(f"{label} nq={nq}: the numpy and faiss backends disagree")
    methods = {
        "numpy": lambda: ours(queries, base, args.k, backend="numpy"),
        "faiss": lambda: ours(queries, base, args.k, backend="faiss"),
        "index": lambda: index.search(queries, args.k),  # type: ignore[attr-defined]
    }
    qps = {name: nq / seconds for name, seconds in _median_seconds(methods, args.repeats).items()}
    auto = kernels.auto_backend(ours is kernels.hamming_topk, nq, len(base), base.shape[1])
    rate = {name: f"{value:,.0f}" if value >= 100 else f"{value:.3g}" for name, value in qps.items()}
    row = ROW.format(label, f"{len(base):,}", nq, rate["numpy"], rate["faiss"], rate["index"], auto,
                     f"{qps['numpy'] / qps['index']:.2f}", f"{qps[auto] / qps['index']:.2f}")
    print(row, flush=True)
    return row


def _compare_binary(label: str, codes: np.ndarray, index: object, queries: np.ndarray,
                    args: argparse.Namespace) -> str:
    """Time the compiled and numpy backends and faiss's IndexBinaryFlat on one batch; check all agree first."""
    nq = len(queries)
    results = {b: kernels.hamming_topk(queries, codes, args.k, backend=b) for b in ("compiled", "numpy", "faiss")}
    for backend in ("numpy", "faiss"):
        for ours, theirs in zip(results["compiled"], results[backend], strict=True):
            if not np.array_equal(ours, theirs):
                raise SystemExit(f"{label} nq={nq}: the compiled and {backend} backends disagree")
    methods = {
        "compiled": lambda: kernels.hamming_topk(queries, codes, args.k, backend="compiled"),
        "numpy": lambda: kernels.hamming_topk(queries, codes, args.k, backend="numpy"),
        "index": lambda: index.search(queries, args.k),  # type: ignore[attr-defined]
    }
    qps = {name: nq / seconds for name, seconds in _median_seconds(methods, args.repeats).items()}
    auto = kernels.auto_backend(True, nq, len(codes), codes.shape[1])
    rate = {name: f"{value:,.0f}" if value >= 100 else f"{value:.3g}" for name, value in qps.items()}
    row = BINARY_ROW.format(label, f"{len(codes):,}", nq, rate["compiled"], rate["numpy"], rate["index"], auto,
                            f"{qps['compiled'] / qps['index']:.2f}", f"{qps['numpy'] / qps['index']:.2f}")
    print(row, flush=True)
    return row


def _binary(n: int, bits: int, args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    index = faiss.IndexBinaryFlat(bits)
    index.add(codes)
    batches = [rng.integers(0, 256, (nq, bits // 8), dtype=np.uint8) for nq in args.binary_batches]
    return [_compare_binary(f"{bits}-bit", codes, index, q, args) for q in batches]


MIH_COLUMNS = ("codes", "n", "method", "batch q/s", "1-query ms", "recall@10", "vs best scan", "memory MiB")
MIH_ROW = "| {:<9} | {:>10} | {:<28} | {:>9} | {:>10} | {:>9} | {:>12} | {:>10} |"
FLIP = 0.03  # each replica of a learned code flips each bit with this probability


def learned_codes(n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """ITQ-64 codes of the efficientnet-lite0 vectors of Fashion-MNIST's 60k training images (the feature cache),
    fitted on them, replicated to ``n`` codes by flipping each bit with probability FLIP in every replica past
    the first (a product photographed again, a near-duplicate); queries: the codes of test-split images."""
    from lookalike.hashing import get_hasher

    cache = Path(os.environ.get("LOOKALIKE_CACHE_DIR", Path.home() / ".cache" / "lookalike")) / "features"
    train = np.load(cache / "fashion-mnist-train-efficientnet-lite0.npy")
    test = np.load(cache / "fashion-mnist-test-efficientnet-lite0.npy")
    hasher = get_hasher("itq", n_bits=64, random_state=0)
    hasher.fit(train)
    base = np.ascontiguousarray(hasher.transform(train), dtype=np.uint8)
    queries = np.ascontiguousarray(hasher.transform(test[:n_queries]), dtype=np.uint8)
    out = np.empty((n, 8), np.uint8)
    rng = np.random.default_rng(1)
    for start in range(0, n, 1_000_000):
        stop = min(n, start + 1_000_000)
        rows = np.arange(start, stop)
        flips = np.packbits(rng.random((stop - start, 64), dtype=np.float32) < FLIP, axis=1)
        flips[rows < len(base)] = 0
        out[start:stop] = base[rows % len(base)] ^ flips
    return out, queries


def _mih(n: int, args: argparse.Namespace) -> list[str]:
    """MIH against the scans on learned codes (and on uniform random codes, where it cannot win)."""
    rng = np.random.default_rng(2)
    return [row for kind in ("learned", "random") for row in _mih_one(kind, n, args, rng)]


def _mih_one(kind: str, n: int, args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    from lookalike.index import MultiIndexHashIndex

    rows = []
    if kind == "learned":
        codes, queries = learned_codes(n, args.mih_queries)
    else:
        codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
        queries = rng.integers(0, 256, (args.mih_queries, 8), dtype=np.uint8)
    keys = np.arange(n)
    mih = MultiIndexHashIndex(64)
    mih.add(keys, codes)
    start = time.perf_counter()
    mih.rebuild()
    built = time.perf_counter() - start
    exact = kernels.hamming_topk(queries, codes, args.k, backend="compiled")
    got = mih.hamming(queries, args.k)
    if not (np.array_equal(got[0], exact[0]) and np.array_equal(got[1], exact[1])):
        raise SystemExit(f"MIH disagrees with the compiled scan ({kind}, n={n})")
    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    methods: dict[str, tuple[Callable[[np.ndarray], object], float]] = {
        "lookalike MIH": (lambda q: mih.hamming(q, args.k), (codes.nbytes + mih.table_bytes) / 2**20),
        "lookalike compiled scan": (lambda q: kernels.hamming_topk(q, codes, args.k, backend="compiled"),
                                    codes.nbytes / 2**20),
        "faiss IndexBinaryFlat": (lambda q: flat.search(q, args.k), codes.nbytes / 2**20),
    }
    multi = faiss.IndexBinaryMultiHash(64, 3, 21)  # 3 tables of 21 bits: the paper's m for 1M-10M codes
    multi.nflip = 2
    multi.add(codes)
    methods["faiss IndexBinaryMultiHash(3, 21), nflip 2"] = (lambda q: multi.search(q, args.k),
                                                             codes.nbytes * 5 / 2**20)
    if n <= 1_000_000:
        hnsw = faiss.IndexBinaryHNSW(64, 16)
        hnsw.add(codes)
        methods["faiss IndexBinaryHNSW(16)"] = (lambda q: hnsw.search(q, args.k), float("nan"))
    batch = {name: len(queries) / statistics.median(_times(lambda f=f: f(queries), args.repeats))
             for name, (f, _) in methods.items()}
    single = {name: 1000 * statistics.median(_times(lambda f=f: [f(queries[i : i + 1]) for i in range(10)],
                                                    args.repeats)) / 10 for name, (f, _) in methods.items()}
    best_scan = max(batch["lookalike compiled scan"], batch["faiss IndexBinaryFlat"])
    best_single = min(single["lookalike compiled scan"], single["faiss IndexBinaryFlat"])
    for name, (f, memory) in methods.items():
        found = f(queries)
        labels = found[1]
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(labels, exact[1], strict=True)])
        rows.append(MIH_ROW.format(kind, f"{n:,}", name, f"{batch[name]:,.0f}", f"{single[name]:.3f}",
                                   f"{recall:.3f}", f"{batch[name] / best_scan:.1f}x / "
                                   f"{best_single / single[name]:.1f}x", f"{memory:,.0f}"))
        print(rows[-1], flush=True)
    floor = n / (2 * 3e9) * 1000  # one pair per cycle per core, 2 cores at ~3 GHz
    rows.append(MIH_ROW.format(kind, f"{n:,}", f"(scalar floor; tables {built:.1f} s)",
                               f"{1000 / floor:,.0f}", f"{floor:.3f}", "", "", f"{codes.nbytes / 2**20:,.0f}"))
    print(rows[-1], flush=True)
    return rows


def _times(run: Callable[[], object], repeats: int) -> list[float]:
    run()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        out.append(time.perf_counter() - start)
    return out


def _normalised(rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _float(n: int, args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    index = faiss.IndexFlatIP(args.dim)
    for start in range(0, n, 65_536):  # in slices: 1M x 1280 float32 is 5 GB, held once
        index.add(_normalised(min(65_536, n - start), args.dim, rng))
    vectors = faiss.rev_swig_ptr(index.get_xb(), n * args.dim).reshape(n, args.dim)  # a view of faiss's copy
    batches = [_normalised(nq, args.dim, rng) for nq in args.float_batches]
    return [_compare(f"{args.dim}-d", kernels.cosine_topk, vectors, index, q, args) for q in batches]


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    rng = np.random.default_rng(0)
    from lookalike.index import _compiled_topk

    def header(columns: tuple[str, ...], form: str) -> str:
        title = form.format(*columns)
        return title + "\n|" + "|".join("-" * len(cell) for cell in title.split("|")[1:-1]) + "|"

    print(f"Exact top-{args.k} search, queries/s (median of {args.repeats}); faiss {faiss.__version__}, "
          f"numpy {np.__version__}, faiss threads {faiss.omp_get_max_threads()}, compiled kernel: "
          f"{_compiled_topk.flavour()}", flush=True)
    tables = []
    if args.only == "mih":
        print(header(MIH_COLUMNS, MIH_ROW), flush=True)
        rows = [row for n in args.mih_sizes for row in _mih(n, args)]
        print(f"\n{stamp()}\n\n" + header(MIH_COLUMNS, MIH_ROW) + "\n" + "\n".join(rows))
        return
    if args.only != "float":
        print(header(BINARY_COLUMNS, BINARY_ROW), flush=True)
        sizes = [(n, bits) for bits in args.bits for n in (args.sizes if bits <= 64 else [args.wide_size])]
        rows = [row for n, bits in sizes for row in _binary(n, bits, args, rng)]
        tables.append(header(BINARY_COLUMNS, BINARY_ROW) + "\n" + "\n".join(rows))
    if args.only != "binary":
        print(header(COLUMNS, ROW), flush=True)
        rows = [row for n in args.sizes for row in _float(n, args, rng)]
        tables.append(header(COLUMNS, ROW) + "\n" + "\n".join(rows))
    print(f"\n{stamp()}\n\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
