"""Load benchmark of the HTTP service: concurrent clients on loopback against a 100k-item catalogue.

What it does:

1. Builds (once, cached in ``--workdir``) a catalogue of ``--items`` Fashion-MNIST items with efficientnet-lite0
   vectors. Encoding 100k images here takes over 20 minutes of CPU, so the vectors come from the feature cache the
   evaluation benchmarks keep (``~/.cache/lookalike/features/fashion-mnist-{train,test}-efficientnet-lite0.npy``,
   float32 rows in dataset order, made by the same encoder) and are inserted through the catalogue's internal
   write path (its SQLite store, same schema and transaction as ``Catalog.add``) -- in this script only -- and
   then learns codes as ``add_many`` would past ``search.codes_at`` (64-bit ITQ at 100k items). Every item
   points to its image, exported as PNG; the 70,000 dataset images are reused for items 70,000-99,999 (same
   vector and file, another id). Writes made during the run go through the API and really encode.
2. Starts a real server process (``lookalike serve``, uvicorn, one process) on a free loopback port.
3. Runs ``--clients`` concurrent clients (threads, one HTTP connection each) for ``--duration`` seconds or
   ``--max-requests`` requests, whichever comes first. Each request is a search by upload (a held-out test image,
   multipart), an add (a test image, with an id) or a delete of an item this client added, drawn with
   ``--mix`` weights.
4. Stops the server, reopens the catalogue from disk and checks every acknowledged add is there (unless its
   delete was acknowledged too) and every acknowledged delete is gone; then removes the run's items again.
5. Reports p50/p95/p99 latency and requests/s per operation, errors (any status other than the expected one,
   or a transport error), and beside the p50 of search the time of the encoder alone on one query image and the
   server's own stage times (decode, encode, search, from the responses' ``timings_ms``).

Run: ``nice -n 10 python benchmarks/service.py [--clients 8] [--duration 60] [--items 100000]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx
import numpy as np
from _stamp import stamp
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.catalog.store import NewItem, Store
from lookalike.datasets import load_fashion_mnist
from lookalike.images import load_image

FEATURES = Path(os.environ.get("LOOKALIKE_CACHE_DIR", Path.home() / ".cache" / "lookalike")) / "features"
API_KEY = "benchmark-key-0123456789"
ENCODER = "efficientnet-lite0"


# -- the catalogue --------------------------------------------------------------------------------------------


def build_catalog(workdir: Path, n_items: int) -> Path:
    """A catalogue of ``n_items`` Fashion-MNIST items with cached efficientnet-lite0 vectors (built once)."""
    path = workdir / "catalog"
    if (path / "catalog.sqlite").exists():
        with Catalog(path) as cat:
            if cat.count() == n_items and cat.encoder.spec.split("+")[0] == ENCODER:
                if "+" in cat.encoder.spec and not any("+sketch:" in e["spec"] for e in cat.info()["encoders"]):
                    cat.fit_hasher("itq", 64)  # learned before the sketch existed: what a refit makes now
                return path
        raise SystemExit(f"{path} exists with another size or encoder: remove it or pick another --workdir")
    t0 = time.perf_counter()
    vectors = np.concatenate([np.load(FEATURES / f"fashion-mnist-{split}-{ENCODER}.npy", mmap_mode="r")
                              for split in ("train", "test")])
    images = np.concatenate([load_fashion_mnist(split).images for split in ("train", "test")])
    if len(vectors) != len(images):
        raise SystemExit(f"feature cache has {len(vectors)} rows for {len(images)} images: rebuild it")
    vectors, images = vectors[:n_items], images[:n_items]
    files = workdir / "images"
    files.mkdir(parents=True, exist_ok=True)
    paths, shas = [], []
    import hashlib

    for i, pixels in enumerate(images):
        out = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(out, "PNG")
        data = out.getvalue()
        target = files / f"{i // 1000:03d}" / f"{i:05d}.png"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        paths.append(str(target.absolute()))
        shas.append(hashlib.sha256(data).hexdigest())
    print(f"exported {len(images)} PNG in {time.perf_counter() - t0:.0f} s", flush=True)
    with Catalog(path, ENCODER) as cat:
        pass  # creates the schema and the encoder; the rows go in straight through the store below
    store = Store(path, create=False)  # the store's own write path: one transaction, what Catalog.add writes
    num = store.encoders()[0].num
    with store.transaction() as tx:
        for start in range(0, n_items, 5000):
            for i in range(start, min(start + 5000, n_items)):
                src = i % len(images)
                key = tx.insert_item(f"fmnist/{i:06d}", NewItem(paths[src], shas[src], 28, 28),
                                     json.dumps({"split": "train" if src < 60000 else "test"}))
                tx.put_vectors(num, [key], np.ascontiguousarray(vectors[src : src + 1], dtype=np.float32))
    store.close()
    with Catalog(path) as cat:
        # what add_many / index_folder do past search.codes_at (100k): learn 64-bit ITQ codes and search by them
        learned = cat.learn_codes_if_large()
        codes = f"; learned {learned.spec} (the default search past search.codes_at)" if learned else ""
        print(f"catalogue of {cat.count()} items built in {time.perf_counter() - t0:.0f} s{codes}", flush=True)
    return path


# -- the server -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(catalog: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOOKALIKE_API_KEY": API_KEY}
    code = "import sys; from lookalike.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "--catalog", str(catalog), "serve", "--port", str(port)],
                            env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not come up in 300 s")


# -- the clients ----------------------------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.stages: dict[str, list[float]] = defaultdict(list)
        self.added: set[str] = set()
        self.deleted: set[str] = set()
        self.requests = 0


def client(n: int, url: str, queries: list[bytes], uploads: list[bytes], mix: dict[str, float], stop_at: float,
           budget: list[int], results: Results, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ops, weights = list(mix), np.array(list(mix.values())) / sum(mix.values())
    mine: list[str] = []
    count = 0
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": API_KEY}) as http:
        while time.monotonic() < stop_at:
            with results.lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            op = str(rng.choice(ops, p=weights))
            if op == "delete" and not mine:
                op = "add"
            t0 = time.perf_counter()
            try:
                if op == "search":
                    body = queries[int(rng.integers(len(queries)))]
                    r = http.post("/search", files={"image": ("q.png", body, "image/png")}, data={"k": "10"})
                    expected = 200
                elif op == "add":
                    item_id = f"bench/{n}/{count}"
                    count += 1
                    body = uploads[int(rng.integers(len(uploads)))]
                    r = http.post("/items", files={"image": ("a.png", body, "image/png")},
                                  data={"id": item_id, "metadata": '{"bench": true}'})
                    expected = 201
                else:
                    item_id = mine.pop(int(rng.integers(len(mine))))
                    r = http.delete(f"/items/{item_id.replace('/', '%2F')}")
                    expected = 200
                dt = time.perf_counter() - t0
            except httpx.HTTPError as err:
                with results.lock:
                    results.errors.append(f"{op}: {type(err).__name__}: {err}")
                continue
            with results.lock:
                results.requests += 1
                if r.status_code != expected:
                    results.errors.append(f"{op}: {r.status_code} {r.text[:200]}")
                    continue
                results.latency[op].append(dt)
                if op == "search":
                    for stage, ms in r.json()["timings_ms"].items():
                        results.stages[stage].append(ms)
                elif op == "add":
                    results.added.add(item_id)
                    mine.append(item_id)
                else:
                    results.deleted.add(item_id)


def sequential(url: str, queries: list[bytes], n: int) -> tuple[list[float], dict[str, list[float]]]:
    """One client, one search at a time: latency without queueing, and the server's stage times."""
    latency: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(n):
            t0 = time.perf_counter()
            r = http.post("/search", files={"image": ("q.png", queries[i % len(queries)], "image/png")},
                          data={"k": "10"})
            latency.append(time.perf_counter() - t0)
            r.raise_for_status()
            timings = r.json()["timings_ms"]
            for stage, ms in timings.items():
                stages[stage].append(ms)
            stages["overhead"].append(latency[-1] * 1000 - sum(timings.values()))
    return latency, stages


# -- report ---------------------------------------------------------------------------------------------------


def encoder_alone(catalog: Path, query: bytes, repeat: int = 50) -> tuple[float, float]:
    """Median ms of (decode + encode) and of encode alone for one query image, in this process."""
    with Catalog(catalog) as cat:
        enc = cat.encoder
        enc.run_prepared([enc.prepare(load_image(query).image)])  # open the session
        full, model = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            image = load_image(query, draft=enc.input_size).image
            t1 = time.perf_counter()
            enc.run_prepared([enc.prepare(image)])
            t2 = time.perf_counter()
            full.append(t2 - t0)
            model.append(t2 - t1)
    return statistics.median(full) * 1000, statistics.median(model) * 1000


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "lookalike" / "bench-service")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=200, help="searches by one client first (default 200)")
    parser.add_argument("--mix", default="search=0.8,add=0.12,delete=0.08", help="weights of the operations")
    args = parser.parse_args()
    mix = {k: float(v) for k, v in (p.split("=") for p in args.mix.split(","))}

    pristine = build_catalog(args.workdir, args.items)
    catalog = args.workdir / "run"  # the load adds and deletes: each run starts from a copy of the built catalogue
    shutil.rmtree(catalog, ignore_errors=True)
    shutil.copytree(pristine, catalog)
    test = load_fashion_mnist("test").images

    def png(pixels: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(out, "PNG")
        return out.getvalue()

    rng = np.random.default_rng(0)
    queries = [png(test[i]) for i in rng.choice(len(test), 200, replace=False)]
    uploads = [png(np.fliplr(test[i])) for i in rng.choice(len(test), 200, replace=False)]  # new content

    load_before = os.getloadavg()[0]
    with Catalog(catalog) as cat:
        searched = (f"search by {cat.encoder.spec} codes + re-rank of {args.items:,} items"
                    if "+" in cat.encoder.spec else f"exact search of {args.items:,} vectors")
    alone_full, alone_model = encoder_alone(catalog, queries[0])
    port = free_port()
    t_start = time.perf_counter()
    server = start_server(catalog, port)
    startup = time.perf_counter() - t_start
    url = f"http://127.0.0.1:{port}"
    seq_latency, seq_stages = sequential(url, queries, args.sequential)
    results = Results()
    budget = [args.max_requests]
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(n, url, queries, uploads, mix, t0 + args.duration, budget,
                                                     results, n)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    metrics = httpx.get(f"{url}/metrics").text
    server.send_signal(signal.SIGINT)
    server.wait(timeout=60)

    # every acknowledged write, checked on disk after the server is gone
    with Catalog(catalog) as cat:
        missing = [i for i in results.added - results.deleted if i not in cat]
        resurrected = [i for i in results.deleted if i in cat]
        final = cat.count()
        expected_count = args.items + len(results.added) - len(results.deleted)
        leftovers = [i.id for i in cat.list(limit=10_000, where={"bench": True})]
        cat.remove_many(leftovers)

    lines = [f"## HTTP service under load ({args.items:,} items, {ENCODER})", "", stamp(),
             f"{args.clients} concurrent clients (threads, one keep-alive connection each) on loopback against one "
             f"`lookalike serve` process, {elapsed:.0f} s (limit {args.duration:.0f} s or {args.max_requests} "
             f"requests); mix {args.mix}; server start-up incl. loading the index {startup:.1f} s.", "",
             "| operation | requests | errors | p50 ms | p95 ms | p99 ms | req/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for op in ("search", "add", "delete"):
        lat = results.latency.get(op, [])
        errs = sum(e.startswith(op) for e in results.errors)
        lines.append(f"| {op} | {len(lat) + errs} | {errs} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | "
                     f"{pct(lat, 99):.1f} | {len(lat) / elapsed:.1f} |")
    total = sum(len(v) for v in results.latency.values())
    lines.append(f"| **all** | {results.requests} | {len(results.errors)} | | | | {total / elapsed:.1f} |")
    stage = {k: statistics.median(v) for k, v in results.stages.items()}
    seq = {k: statistics.median(v) for k, v in seq_stages.items()}
    lines += [
        "",
        f"- **one client at a time** ({args.sequential} searches by upload, k=10): p50 "
        f"{pct(seq_latency, 50):.1f} ms, p95 {pct(seq_latency, 95):.1f} ms end to end (HTTP, multipart, decode, "
        f"encode, search, JSON); the encoder alone on one query image in a bare process: {alone_model:.1f} ms "
        f"(decode + encode {alone_full:.1f} ms). Server stage medians: decode {seq.get('decode', 0):.1f} ms, "
        f"encode {seq.get('encode', 0):.1f} ms, {searched} {seq.get('search', 0):.1f} ms; "
        f"what the service adds around them (HTTP on loopback, multipart, JSON, both sides' Python): median "
        f"{seq.get('overhead', 0):.1f} ms per request;",
        f"- under the concurrent load, server stage medians: decode {stage.get('decode', 0):.1f} ms, encode "
        f"{stage.get('encode', 0):.1f} ms, search {stage.get('search', 0):.1f} ms (the rest of the latency is "
        f"queueing for {os.cpu_count()} cores);",
        f"- writes: {len(results.added)} adds and {len(results.deleted)} deletes acknowledged; after the server "
        f"stopped, the catalogue on disk has {final:,} items (expected {expected_count:,}), "
        f"{len(missing)} acknowledged adds missing, {len(resurrected)} acknowledged deletes still present;",
        f"- errors: {len(results.errors)}" + (f" (first: {results.errors[0]})" if results.errors else ""),
        f"- machine load average before / after the run: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
        f"(other processes share these {os.cpu_count()} cores)",
    ]
    print("\n".join(lines))
    if "lookalike_stage_seconds" not in metrics:
        print("warning: /metrics had no stage histograms", file=sys.stderr)
    ok = not results.errors and not missing and not resurrected and final == expected_count
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
