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
