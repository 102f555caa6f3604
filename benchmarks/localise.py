"""Product localisation on composites (issue 14, part 2): the localiser's IoU on held-out composites, and what
``--crop auto`` does to the retrieval of composite queries.

Data (``lookalike.evaluation.composites``): Fashion-MNIST products pasted on real photographs at random positions
and scales. The localiser trains on the ``train`` composites; every default it reports (the threshold row marked
"chosen") is picked on the ``validation`` composites; the ``test`` composites (products of the Fashion-MNIST test
split, their own strip of every photograph) are only measured.

Retrieval: the test composites are the queries, the 60,000 clean Fashion-MNIST training images the database (the
cached efficientnet-lite0 features of ``lookalike eval``), an image of the query's class is relevant; mAP@1000 and
P@10 of the query encoded whole, cropped by ``--crop auto`` (the catalogue's decode step: the image decoded with the
catalogue's hint, cut to the localiser's box) and cropped to the true box (the ceiling).

Run: ``python benchmarks/localise.py [--epochs 12] [--train 3000] [--device auto] [--write]`` (about 10 minutes on
2 cores; more epochs or images on a GPU). ``--write`` puts the section into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.catalog.crop import crop_loaded
from lookalike.encoders import get_encoder
from lookalike.evaluation import retrieval_map
from lookalike.evaluation.composites import CompositeSet, read_composites, write_composites
from lookalike.evaluation.protocol import features, load_split
from lookalike.images import Box, load_image
from lookalike.localise import Localiser
from lookalike.localise.config import LocaliserConfig
from lookalike.localise.data import load_box_data
from lookalike.localise.trainer import evaluate, train

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)


def composites(work: Path, split: str, n: int) -> CompositeSet:
    csv = work / split / "boxes.csv"
    if csv.exists():
        made = read_composites(csv)
        if len(made) == n:
            return made
    return write_composites(work / split, split, n)


def box_iou(a: Box | None, b: Box) -> float:
    if a is None:
        return 0.0
    w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = w * h
    return inter / (a.w * a.h + b.w * b.h - inter)


def precision_at_10(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray) -> float:
    top = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :10]
    return float((dbl[top] == ql[:, None]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=3000, help="training composites (default 3000)")
    parser.add_argument("--val", type=int, default=300, help="validation composites (default 300)")
    parser.add_argument("--test", type=int, default=1000, help="test composites = queries (default 1000)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--layer", default="stage5")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "lookalike" / "composites"))
    parser.add_argument("--write", action="store_true", help="replace this section in BENCHMARKS.md")
    args = parser.parse_args()
    work = Path(args.work)
    out = Report()
    out("## Product localisation on composites (issue 14, part 2)\n")
    out(stamp())
    t0 = time.perf_counter()
    sets = {s: composites(work, s, n) for s, n in (("train", args.train), ("validation", args.val),
                                                    ("test", args.test))}
    cfg = LocaliserConfig(layer=args.layer, size=args.size)
    data, val = load_box_data(sets["train"].root / "boxes.csv", cfg), load_box_data(sets["validation"].root /
                                                                                   "boxes.csv", cfg)
    prep = time.perf_counter() - t0
    model = work / f"benchmark-{cfg.layer}-{cfg.size}.localiser"
    t1 = time.perf_counter()
    trainer = train(cfg, data, args.epochs, model, device=args.device, log=lambda line: print(line, flush=True))
    fit = time.perf_counter() - t1
    out(f"Composites: {len(data)} train / {len(val)} validation / {len(sets['test'])} test (made and encoded in "
        f"{prep:.0f} s); localiser: {cfg.layer} feature map at {cfg.size}x{cfg.size} ({cfg.grid}x{cfg.grid} cells, "
        f"{len(trainer.cells)} crops an image), {args.epochs} epochs on {trainer.device} in {fit:.0f} s.\n")
    p, boxes = trainer.predict(val)
    out("Validation composites (chooses the threshold): the boxes of the crops with p(object) >= threshold, "
        "averaged.\n")
    out("| threshold | mean IoU | IoU >= 0.5 | no box |")
    out("|---:|---:|---:|---:|")
    scores = {}
    for th in THRESHOLDS:
        scores[th] = ev = evaluate(p, boxes, val.boxes, th, cfg.min_score)
        out(f"| {th:g} | {ev['mean_iou']:.3f} | {ev['iou50']:.3f} | {ev['no_box']:.3f} |")
    chosen = max(THRESHOLDS, key=lambda th: scores[th]["mean_iou"])
    out(f"\nChosen on validation: threshold {chosen:g} (the default, 0.8, is TiefVision's).\n")
    test = sets["test"]
    encoder = get_encoder("efficientnet-lite0")
    loaded = [load_image(path, draft=encoder.input_size) for path in test.paths]
    rows = []
    crops: dict[float, list] = {}
    for th in sorted({0.8, chosen}):
        loc = Localiser(model, threshold=th)
        t2 = time.perf_counter()
        cut = [crop_loaded(li, loc) for li in loaded]
        per_image = (time.perf_counter() - t2) / len(loaded) * 1000
        ious = np.array([box_iou(found, true) for (_, found), true in zip(cut, test.boxes, strict=True)])
        crops[th] = [c.image for c, _ in cut]
        rows.append(f"| {th:g}{' (chosen)' if th == chosen else ''} | {ious.mean():.3f} | "
                    f"{(ious >= 0.5).mean():.3f} | {np.mean([f is None for _, f in cut]):.3f} | {per_image:.1f} |")
    out("Test composites (held out: never used to choose anything):\n")
    out("| threshold | mean IoU | IoU >= 0.5 | no box | ms an image (localiser, 2 cores) |")
    out("|---:|---:|---:|---:|---:|")
    for row in rows:
        out(row)
    db, dbl = features("fashion-mnist", "train", "efficientnet-lite0"), load_split("fashion-mnist", "train").labels
    ql = test.labels
    queries = {"whole composite (no crop)": [li.image for li in loaded],
               **{f"--crop auto (threshold {th:g})": crops[th] for th in crops},
               "true box (ceiling)": [li.image.crop((b.x, b.y, b.x + b.w, b.y + b.h)) for li, b in
                                      zip(loaded, test.boxes, strict=True)]}
    out(f"\nRetrieval: {len(test)} test composites as queries against the 60,000 clean Fashion-MNIST training "
        "images (efficientnet-lite0, cosine; relevant: the same class).\n")
    out("| query | mAP@1000 | P@10 |")
    out("|---|---:|---:|")
    for name, images in queries.items():
        q = encoder.encode_pil(images)
        out(f"| {name} | {retrieval_map(q, db, ql, dbl, 1000, metric='cosine'):.3f} | "
            f"{precision_at_10(q, db, ql, dbl):.3f} |")
    out("")
    if args.write:
        write_section(out.text())


if __name__ == "__main__":
    main()
