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

Background removal inside the box (issue 14, part 4; :mod:`lookalike.localise.mask`): GrabCut initialised by the
box, the background replaced by a fill colour. Its knobs (iterations, margin, fill) are chosen by the retrieval mAP
of the ``validation`` composites as queries (cropped by the localiser at the chosen threshold); the test composites
then measure ``--crop auto`` against ``--crop auto`` + mask, and the true box + mask, with GrabCut's milliseconds.

Run: ``python benchmarks/localise.py [--epochs 12] [--train 3000] [--device auto] [--write]`` (about 15 minutes on
2 cores; more epochs or images on a GPU). ``--reuse`` resumes from the model's checkpoint (``--model``, default in
``--work``), so a finished run's localiser is measured again without training it twice. ``--write`` puts the
section into BENCHMARKS.md.
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
from lookalike.encoders import Encoder, get_encoder
from lookalike.evaluation import retrieval_map
from lookalike.evaluation.composites import CompositeSet, read_composites, write_composites
from lookalike.evaluation.protocol import features, load_split
from lookalike.images import Box, LoadedImage, crop, load_image
from lookalike.localise import Localiser
from lookalike.localise.config import LocaliserConfig
from lookalike.localise.data import load_box_data
from lookalike.localise.mask import FILLS, fill_background, foreground
from lookalike.localise.modelfile import read_model
from lookalike.localise.trainer import evaluate, train

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
MASK_ITERATIONS = (1, 3, 5)  # GrabCut's iterations, chosen on validation with the margin and the fill
MASK_MARGINS = (0.05, 0.15, 0.3)  # context around the box, a share of its longer side


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


def grabcut(images: list[LoadedImage], boxes: list[Box | None], iterations: int, margin: float
            ) -> tuple[list, float]:
    """GrabCut's kept pixels of every box (None: no box, or nothing to segment) and its milliseconds an image."""
    t = time.perf_counter()
    kept = [None if b is None else foreground(li.image, b, iterations=iterations, margin=margin)
            for li, b in zip(images, boxes, strict=True)]
    return kept, (time.perf_counter() - t) / len(images) * 1000


def filled(images: list[LoadedImage], boxes: list[Box | None], kept: list, fill: str) -> list:
    """The queries: each image cut to its box (the whole image without one), its background painted ``fill``."""
    return [li.image if b is None else fill_background(crop(li.image, b).convert("RGB"), k, fill)
            for li, b, k in zip(images, boxes, kept, strict=True)]


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
    parser.add_argument("--model", help="the localiser model file (default WORK/benchmark-LAYER-SIZE.localiser)")
    parser.add_argument("--reuse", action="store_true",
                        help="resume from MODEL.ckpt when it is there: a finished run's model is not trained again")
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
    model = Path(args.model) if args.model else work / f"benchmark-{cfg.layer}-{cfg.size}.localiser"
    resumed = args.reuse and model.with_name(model.name + ".ckpt").exists()
    trainer = train(cfg, data, args.epochs, model, device=args.device, resume=resumed,
                    log=lambda line: print(line, flush=True))
    fit = float(read_model(model).meta["train_seconds"])
    out(f"Composites: {len(data)} train / {len(val)} validation / {len(sets['test'])} test (made and encoded in "
        f"{prep:.0f} s); localiser: {cfg.layer} feature map at {cfg.size}x{cfg.size} ({cfg.grid}x{cfg.grid} cells, "
        f"{len(trainer.cells)} crops an image), {trainer.epoch} epochs on {trainer.device} in {fit:.0f} s"
        + (" (its checkpoint reused: `--reuse`)" if resumed else "") + ".\n")
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
    found_boxes: dict[float, list[Box | None]] = {}
    for th in sorted({0.8, chosen}):
        loc = Localiser(model, threshold=th)
        t2 = time.perf_counter()
        cut = [crop_loaded(li, loc) for li in loaded]
        per_image = (time.perf_counter() - t2) / len(loaded) * 1000
        ious = np.array([box_iou(found, true) for (_, found), true in zip(cut, test.boxes, strict=True)])
        crops[th] = [c.image for c, _ in cut]
        found_boxes[th] = [f for _, f in cut]
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
    mask_section(out, sets["validation"], test, loaded, found_boxes[chosen], Localiser(model, threshold=chosen),
                 chosen, encoder, db, dbl)
    if args.write:
        write_section(out.text())


def mask_section(out: Report, validation: CompositeSet, test: CompositeSet, loaded: list[LoadedImage],
                 test_boxes: list[Box | None], loc: Localiser, chosen: float, encoder: Encoder, db: np.ndarray,
                 dbl: np.ndarray) -> None:
    """Background removal inside the box: knobs chosen on the validation composites, measured on the test ones."""
    def score(q: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        return retrieval_map(q, db, labels, dbl, 1000, metric="cosine"), precision_at_10(q, db, labels, dbl)

    out("### Background removal inside the located box (issue 14, part 4)\n")
    sizes = {(li.image.width, li.image.height) for li in loaded} - {(li.width, li.height) for li in loaded}
    assert not sizes, "composites are PNGs: decoded at full size, so the crop boxes are in the decoded pixels"
    vloaded = [load_image(path, draft=encoder.input_size) for path in validation.paths]
    vboxes = [found.box for found in loc.locate_many([li.image for li in vloaded])]
    vl = validation.labels
    base = score(encoder.encode_pil(filled(vloaded, vboxes, [None] * len(vboxes), "black")), vl)
    out(f"Validation composites ({len(validation)} queries, cropped by the localiser at threshold {chosen:g}; "
        f"chooses the knobs): GrabCut initialised by the box, with a margin of context around it (a share of the "
        f"box's longer side), its background painted a fill colour (`background`: the median colour of the pixels "
        f"it removed). Without the mask: mAP@1000 {base[0]:.3f}, P@10 {base[1]:.3f}.\n")
    out("| iterations | margin | ms an image (GrabCut) | " + " | ".join(f"mAP@1000 {f}" for f in FILLS) + " |")
    out("|---:|---:|---:|" + "---:|" * len(FILLS))
    results: dict[tuple[int, float, str], tuple[float, float]] = {}
    for iterations in MASK_ITERATIONS:
        for margin in MASK_MARGINS:
            kept, ms = grabcut(vloaded, vboxes, iterations, margin)
            for fill in FILLS:
                results[iterations, margin, fill] = score(encoder.encode_pil(filled(vloaded, vboxes, kept, fill)),
                                                          vl)
            out(f"| {iterations} | {margin:g} | {ms:.1f} | "
                + " | ".join(f"{results[iterations, margin, f][0]:.3f}" for f in FILLS) + " |")
    best = max(results, key=lambda k: results[k])
    iterations, margin, fill = best
    out(f"\nChosen on validation: {iterations} iterations, margin {margin:g}, fill {fill} (mAP@1000 "
        f"{results[best][0]:.3f}, P@10 {results[best][1]:.3f}, against {base[0]:.3f} and {base[1]:.3f} without "
        f"the mask).\n")
    true: list[Box | None] = list(test.boxes)
    rows: list[tuple[str, list[Box | None], bool]] = [
        (f"--crop auto (threshold {chosen:g})", test_boxes, False),
        (f"--crop auto + mask ({iterations} iterations, margin {margin:g}, fill {fill})", test_boxes, True),
        ("true box", true, False), ("true box + mask (the mask's ceiling)", true, True)]
    out(f"Test composites ({len(test)} queries against the 60,000 clean training images, as above; never used to "
        "choose anything):\n")
    out("| query | mAP@1000 | P@10 | ms an image (GrabCut, 2 cores) |")
    out("|---|---:|---:|---:|")
    for name, boxes, mask in rows:
        kept, ms = grabcut(loaded, boxes, iterations, margin) if mask else ([None] * len(boxes), 0.0)
        m, p10 = score(encoder.encode_pil(filled(loaded, boxes, kept, fill)), test.labels)
        out(f"| {name} | {m:.3f} | {p10:.3f} | {f'{ms:.1f}' if mask else '-'} |")
    out("")


if __name__ == "__main__":
    main()
