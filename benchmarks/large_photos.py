"""Large photos: decoding paths side by side, a warm query end to end over 10,000 items, and indexing a folder.

1. Decode: the same 5120x2880 photograph (skimage's astronaut, upscaled, with sensor-like noise so that it
   compresses like a camera's picture) as baseline JPEG, progressive JPEG, PNG and HEIC, and 4096x4096 as WebP;
   each decoded by Pillow at full size (what lookalike did before), by Pillow's ``draft`` (JPEG) or ``reduce``,
   by libvips' shrink-on-load (``pyvips.Image.thumbnail_buffer``), by libjpeg-turbo's own API at 1/8 scale
   through PyTurboJPEG (JPEG only; measured where ``turbojpeg`` and the system's libturbojpeg are installed:
   ``apt install libturbojpeg0``, ``pip install 'PyTurboJPEG<2'`` for its 2.x library), and by
   ``lookalike.images.load_image`` with the encoders' draft size (the path ingest and queries take). Median of
   ``--repeat`` interleaved rounds, ms.
2. Query: ``Catalog.search`` of each file, warm, against a catalogue of 10,000 items (Fashion-MNIST with cached
   efficientnet-lite0 vectors, as benchmarks/service.py builds it), split into decode, encode and search.
3. Indexing: ``lookalike index`` of a folder of ``--folder`` distinct 5120x2880 JPEGs in a fresh process: images/s
   and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvips
from _stamp import stamp
from PIL import Image
from service import build_catalog

from lookalike import Catalog
from lookalike.images import load_image

DRAFT = (224, 224)

try:  # optional: only measured, lookalike does not use it (Pillow's JPEG decoder is libjpeg-turbo already)
    from turbojpeg import TJPF_RGB, TurboJPEG

    TURBO: object | None = TurboJPEG()
except (ImportError, OSError, RuntimeError):
    TURBO = None


class NotApplicable(Exception):
    """This way does not decode this file."""


def photo(width: int, height: int, seed: int) -> Image.Image:
    import skimage

    base = Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")
    big = np.asarray(base.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0, 4, big.shape)
    return Image.fromarray((big + noise).clip(0, 255).astype(np.uint8))


def files(folder: Path) -> dict[str, Path]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    wide, square = photo(5120, 2880, 0), photo(4096, 4096, 1)
    out = {"JPEG 5120x2880": folder / "base.jpg", "progressive JPEG 5120x2880": folder / "prog.jpg",
           "PNG 5120x2880": folder / "big.png", "WebP 4096x4096": folder / "big.webp",
           "HEIC 5120x2880": folder / "big.heic"}
    wide.save(out["JPEG 5120x2880"], quality=90)
    wide.save(out["progressive JPEG 5120x2880"], quality=90, progressive=True)
    wide.save(out["PNG 5120x2880"])
    square.save(out["WebP 4096x4096"], quality=85)
    wide.save(out["HEIC 5120x2880"], quality=85)
    return out


def pillow_full(data: bytes) -> object:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def pillow_reduced(data: bytes) -> object:
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", DRAFT)
        image.load()
        return image.convert("RGB")
    image.load()
    factor = max(1, min(8, min(image.size) // DRAFT[1]))
    return image.reduce(factor).convert("RGB")


def vips(data: bytes) -> object:
    height, width = 360, 640
    return pyvips.Image.thumbnail_buffer(data, width, height=height, size="down").numpy()


def turbo(data: bytes) -> object:
    if TURBO is None or not data.startswith(b"\xff\xd8"):
        raise NotApplicable
    return TURBO.decode(data, pixel_format=TJPF_RGB, scaling_factor=(1, 8))  # type: ignore[attr-defined]


def lookalike(data: bytes) -> object:
    return load_image(data, draft=DRAFT).image


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median ms of ``fn``; NaN where it cannot decode the file (libvips-binary has no HEVC decoder for HEIC)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            fn()
        except (pyvips.Error, NotApplicable):
            return float("nan")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def decode_table(paths: dict[str, Path], repeat: int) -> list[str]:
    paths_list = list(paths.items())
    ways = {"Pillow, full size (before)": pillow_full, "Pillow draft / reduce": pillow_reduced,
            "libvips shrink-on-load": vips, "PyTurboJPEG 1/8": turbo, "load_image(draft=224) (now)": lookalike}
    found: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeat):  # interleaved: the machine's load moves all paths alike
        for name, path in paths_list:
            data = path.read_bytes()
            for way, fn in ways.items():
                found.setdefault((name, way), []).append(timed(lambda fn=fn, data=data: fn(data), 1))
    rows = ["| file | bytes | " + " | ".join(ways) + " | before / now |", "|---|---:|" + "---:|" * (len(ways) + 1)]
    for name, path in paths_list:
        ms = [statistics.median(found[name, way]) for way in ways]
        rows.append(f"| {name} | {path.stat().st_size:,} | " + " | ".join("n/a" if m != m else f"{m:.0f}" for m in ms)
                    + f" | {ms[0] / ms[-1]:.1f}x |")
    return rows


def query_table(paths: dict[str, Path], catalog: Path, repeat: int) -> list[str]:
    rows = ["| file | decode ms | encode ms | search ms | end to end ms |", "|---|---:|---:|---:|---:|"]
    with Catalog(catalog) as cat:
        cat.search(next(iter(paths.values())), k=10)  # warm: the model and the index loaded
        for name, path in paths.items():
            parts: dict[str, list[float]] = {"decode": [], "encode": [], "search": [], "total": []}
            for _ in range(repeat):
                t0 = time.perf_counter()
                query = cat.pipeline.decode(path)
                t1 = time.perf_counter()
                encoded = cat.pipeline.encode([query])
                t2 = time.perf_counter()
                hits = cat.pipeline.retrieve(encoded, k=10)
                t3 = time.perf_counter()
                assert len(hits[0]) == 10
                for key, value in (("decode", t1 - t0), ("encode", t2 - t1), ("search", t3 - t2), ("total", t3 - t0)):
                    parts[key].append(value * 1000)
            med = {key: statistics.median(values) for key, values in parts.items()}
            rows.append(f"| {name} | {med['decode']:.0f} | {med['encode']:.0f} | {med['search']:.0f} | "
                        f"{med['total']:.0f} |")
    return rows


def index_row(folder: Path, n: int) -> str:
    photos = folder / "photos"
    photos.mkdir()
    base = photo(5120, 2880, 2)
    pixels = np.asarray(base)
    for i in range(n):  # distinct pictures: the photograph shifted and mirrored by turns, each file another
        shifted = np.roll(pixels, (i * 397) % pixels.shape[1], axis=1)
        Image.fromarray(shifted[:, ::-1] if i % 2 else shifted).save(photos / f"p{i:03d}.jpg", quality=90)
    code = ("import sys, time; from lookalike import Catalog; from PIL import Image\n"
            f"c = Catalog({str(folder / 'cat')!r}); c.encoder.encode_pil([Image.new('RGB', (8, 8))])\n"
            f"t = time.perf_counter(); r = c.index_folder({str(photos)!r}); s = time.perf_counter() - t\n"
            "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]\n"
            "print(len(r.added), s, hwm)")  # VmHWM: this process's own peak (ru_maxrss would count the parent's)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    added, seconds, rss_kib = int(out[0]), float(out[1]), int(out[2])
    mib = sum(p.stat().st_size for p in photos.iterdir()) / n / 2**20
    return (f"- indexing {added} distinct 5120x2880 JPEGs (quality 90, {mib:.1f} MiB each) in a fresh process, "
            f"model loaded first: {added / seconds:.1f} images/s, peak RSS "
            f"{rss_kib / 1024:.0f} MiB (the whole process: Python, ONNX Runtime, the model, the decode threads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--folder", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "lookalike" / "bench-large")
    parser.add_argument("--decode-only", action="store_true", help="the decode table only")
    args = parser.parse_args()
    print("## Large photos: decoding, a query end to end, indexing (issue 11)\n")
    print(stamp())
    import PIL

    turbo_version = "not installed" if TURBO is None else "PyTurboJPEG " + __import__("turbojpeg").__version__
    print(f"- libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, Pillow {PIL.__version__}, "
          f"{turbo_version}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = files(Path(tmp))
        print(f"\nDecode, median of {args.repeat} interleaved rounds, ms:\n")
        print("\n".join(decode_table(paths, args.repeat)))
        if args.decode_only:
            return
        catalog = build_catalog(args.workdir / f"items-{args.items}", args.items)
        print(f"\nA warm query (`Catalog.search`, k=10) over {args.items:,} items, median of {args.repeat}, ms:\n")
        print("\n".join(query_table(paths, catalog, args.repeat)))
        print()
        print(index_row(Path(tmp), args.folder))
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"- this benchmark process's own peak RSS: {usage:.0f} MiB")


if __name__ == "__main__":
    main()
