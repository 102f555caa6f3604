"""Train the descriptor vocabularies that ship with lookalike (``lookalike/partial/vocabulary-{kind}.npy``).

Training pictures: ``partial.outside_photos()`` — the pictures on this machine that are not catalogue photographs of
``benchmarks/partial.py`` and never their tiles (matplotlib's grace_hopper and Minduka_Present_Blue_Pack,
scikit-image's cell, color, logo and microaneurysms, matplotlib's two elevation grids as hill shading), each
described (up to 3,000 keypoints) at scales 0.5, 0.75, 1, 1.5 and 2 and turned by 0, 20, 45 and 90 degrees, so the
centroids see the descriptors' spread over views. Then binary k-means (``lookalike.partial.vocabulary.train``,
4,096 centroids, 20 iterations, seed 0). About 100 s a kind on 2 cores.

    python benchmarks/partial_vocabulary.py [--kinds teblid,orb,beblid] [--size 4096]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partial import outside_photos  # noqa: E402

from lookalike.partial.features import Extractor  # noqa: E402
from lookalike.partial.vocabulary import train  # noqa: E402

SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
ANGLES = (0, 20, 45, 90)


def training_descriptors(kind: str) -> np.ndarray:
    extractor = Extractor(kind, 3000)
    out = []
    for a in outside_photos().values():
        img = Image.fromarray(a)
        for scale in SCALES:
            for angle in ANGLES:
                view = img.resize((max(32, round(img.width * scale)), max(32, round(img.height * scale))),
                                  Image.BILINEAR)
                if angle:
                    view = view.rotate(angle, Image.BILINEAR, expand=True)
                out.append(extractor.describe(view).desc)
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="teblid,orb,beblid")
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent / "lookalike" / "partial"
    for kind in args.kinds.split(","):
        t = time.perf_counter()
        descriptors = training_descriptors(kind)
        centroids = train(descriptors, args.size, seed=0)
        np.save(root / f"vocabulary-{kind}.npy", centroids)
        print(f"{kind}: {len(descriptors):,} descriptors -> {len(centroids)} centroids in "
              f"{time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
