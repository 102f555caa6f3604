"""``lookalike demo``: the main job end to end on the embedded default.

Exports a class-stratified sample of Fashion-MNIST training images to an image folder, indexes it with the default
encoder like any user's catalogue, then searches with held-out test images and prints what it finds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .catalog import Catalog
from .datasets import export_image_folder, load_fashion_mnist


def run_demo(workdir: str | Path, *, n: int = 3000, queries: int = 5, k: int = 5) -> int:
    """Run the demo in ``workdir``; returns the process exit status (0)."""
    root = Path(workdir)
    t0 = time.perf_counter()
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    images = export_image_folder(train, root / "images", limit=n, seed=0)
    held_out = export_image_folder(test, root / "queries", limit=queries, seed=1)
    print(f"exported {len(images)} Fashion-MNIST training images to {root / 'images'} "
          f"and {len(held_out)} held-out test images to {root / 'queries'}")

    with Catalog(root / "catalog") as cat:
        t1 = time.perf_counter()
        report = cat.index_folder(root / "images", progress=sys.stderr.isatty())
        t2 = time.perf_counter()
        print(f"indexed with {cat.encoder.spec}: {report.summary()} in {t2 - t1:.1f} s; "
              f"{cat.count()} items in {root / 'catalog'}\n")
        hits = total = 0
        for query in held_out:
            t3 = time.perf_counter()
            results = cat.search(query, k=k)
            ms = (time.perf_counter() - t3) * 1000
            want = query.parent.name
            print(f"query {query}  (class {want}, {ms:.0f} ms)")
            for rank, r in enumerate(results, 1):  # r: SearchResult
                got = Path(r.path or r.id).parent.name
                mark = "✓" if got == want else "✗"
                print(f"  {rank}. {mark} {r.score:.3f}  {r.id}")
                hits += got == want
                total += 1
    print(f"\n{hits}/{total} results share the query's class (precision@{k} = {hits / max(total, 1):.2f}); "
          f"demo took {time.perf_counter() - t0:.0f} s")
    exe = Path(sys.executable).parent / "lookalike"
    print(f"try: {_short(exe)} --catalog {root / 'catalog'} search {held_out[0]} -k 5")
    print(f"or in a browser: {_short(exe)} serve --catalog {root / 'catalog'} --read-only   (then open the URL)")
    return 0


def _short(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (``.venv/bin/lookalike``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
