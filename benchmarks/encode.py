"""Encode throughput: the lookalike pipeline (files → decode → resize → ONNX Runtime) vs a bare ONNX Runtime session.

The bare session runs on tensors prepared beforehand (the very tensors the pipeline would make), so the ratio shows
what decoding, resizing, hashing and batching cost on top of inference. Two sets of files:

- ``fashion``: Fashion-MNIST test images as 28×28 PNG (decode is negligible);
- ``photos``: 640×480 JPEG (quality 90) made from the real photographs in ``skimage.data`` (random crops and
  flips of 13 photos), where decoding and resizing cost something next to inference.

Run: ``python benchmarks/encode.py [--n 1000] [--repeat 3]``
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
from _stamp import stamp
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.datasets import load_fashion_mnist
from lookalike.encoders import get_encoder
from lookalike.images import load_image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "hubble_deep_field",
          "camera", "brick", "grass", "gravel", "coins", "moon")


def _photo(rng: np.random.Generator, sources: list[Image.Image]) -> Image.Image:
    """A random 60–100% crop of a random photo, maybe mirrored, at 640×480."""
    img = sources[int(rng.integers(len(sources)))]
    w, h = img.size
    scale = float(rng.uniform(0.6, 1.0))
    cw, ch = int(w * scale), int(h * scale)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x, y, x + cw, y + ch)).resize((640, 480), Image.Resampling.BICUBIC)
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def make_files(folder: Path, kind: str, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if kind == "photos":
        from skimage import data as photos

        sources = [Image.fromarray(getattr(photos, name)()).convert("RGB") for name in PHOTOS]
        for i in range(n):
            paths.append(folder / f"{i:05d}.jpg")
            _photo(rng, sources).save(paths[-1], quality=90)
        return paths
    fashion = load_fashion_mnist("test")
    for i in range(n):
        paths.append(folder / f"{i:05d}.png")
        Image.fromarray(fashion.images[i]).save(paths[-1])
    return paths


def interleaved(fns: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median seconds per function over ``repeat`` rounds (each function times its own work, leaving out set-up);
    each round runs every function once, so a burst of load from elsewhere on this shared machine hits all of them
    alike instead of one."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(fn())
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_set(kind: str, n: int, repeat: int, workdir: Path) -> list[tuple[str, float]]:
    enc = get_encoder("efficientnet-lite0")
    paths = make_files(workdir / kind, kind, n)
    session = enc.session()  # type: ignore[attr-defined]
    tensors = np.stack([enc.prepare(load_image(p).image) for p in paths])
    batches = [tensors[i : i + enc.batch_size] for i in range(0, n, enc.batch_size)]
    session.run(None, {"images": batches[0]})  # warm-up

    def bare() -> float:
        t = time.perf_counter()
        for b in batches:
            session.run(None, {"images": b})
        return time.perf_counter() - t

    def pipeline() -> float:
        t = time.perf_counter()
        enc.encode(paths)
        return time.perf_counter() - t

    def catalog() -> float:  # a new, empty catalogue each time; its model session is opened before the clock
        with tempfile.TemporaryDirectory(dir=workdir) as d, Catalog(Path(d) / "c") as cat:
            cat.encoder.session()  # type: ignore[attr-defined]
            t = time.perf_counter()
            cat.index_folder(workdir / kind)
            return time.perf_counter() - t

    seconds = interleaved({"bare ONNX Runtime session (prepared tensors)": bare,
                           "Encoder.encode(paths)": pipeline,
                           "Catalog.index_folder (+ sha256, SQLite commit)": catalog}, repeat)
    return [(name, n / s) for name, s in seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sets", default="fashion,photos")
    args = parser.parse_args()
    print("## Encode throughput (efficientnet-lite0, 1280-d, batch 32)\n")  # the section's name (since 2026-12-02: 16)
    print(stamp())
    print(f"- model calls of {get_encoder('efficientnet-lite0').batch_size} images, the pipeline and the bare session "
          "alike\n")
    print("| files | path | images/s | vs bare session |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.sets.split(","):
            rows = bench_set(kind, args.n, args.repeat, Path(tmp))
            base = rows[0][1]
            label = "28×28 PNG" if kind == "fashion" else "640×480 JPEG"
            for name, rate in rows:
                print(f"| {args.n} × {label} | {name} | {rate:.1f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
