"""Exact top-k search throughput: lookalike's kernels against faiss's flat indexes, in the same run.

Binary: ``hamming_topk`` (numpy and faiss backends, and what ``auto`` picks) against ``IndexBinaryFlat``.
Float: ``cosine_topk`` against ``faiss.IndexFlatIP``. Seeded random data. Within each repetition every method
is timed once, in turn, so that load from other processes hits them alike; the table gives the median, in
queries per second, and the ratios ours / faiss index.

    python benchmarks/search.py                                    # the full run recorded in BENCHMARKS.md
    python benchmarks/search.py --sizes 100000 --repeats 3         # a quick one
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


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Exact top-k search throughput against faiss flat indexes.")
    parser.add_argument("--sizes", type=_ints, default=[100_000, 1_000_000], help="e.g. 100000,1000000")
    parser.add_argument("--binary-batches", type=_ints, default=[1, 100, 1000], help="query batch sizes")
    parser.add_argument("--float-batches", type=_ints, default=[1, 100], help="query batch sizes")
    parser.add_argument("--bits", type=int, default=64, help="binary code length (a multiple of 8)")
    parser.add_argument("--dim", type=int, default=1280, help="float vector dimension")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("binary", "float"), help="run one half only")
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


def _binary(n: int, args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    codes = rng.integers(0, 256, (n, args.bits // 8), dtype=np.uint8)
    index = faiss.IndexBinaryFlat(args.bits)
    index.add(codes)
    batches = [rng.integers(0, 256, (nq, args.bits // 8), dtype=np.uint8) for nq in args.binary_batches]
    return [_compare(f"{args.bits}-bit", kernels.hamming_topk, codes, index, q, args) for q in batches]


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
    title = ROW.format(*COLUMNS)
    header = title + "\n|" + "|".join("-" * len(cell) for cell in title.split("|")[1:-1]) + "|"
    print(f"Exact top-{args.k} search, queries/s (median of {args.repeats}); faiss {faiss.__version__}, "
          f"numpy {np.__version__}, faiss threads {faiss.omp_get_max_threads()}\n{header}", flush=True)
    rows = [row for n in args.sizes if args.only != "float" for row in _binary(n, args, rng)]
    rows += [row for n in args.sizes if args.only != "binary" for row in _float(n, args, rng)]
    print(f"\n{stamp()}\n{header}\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
