"""The one table of issue 16: every hasher × 16/32/64 bits × {pixels, efficientnet-lite0} on the BinGAN protocol,
in one run, with fit time and device, the learned rows again with a second query seed, and the pictures.

Protocol (``lookalike.evaluation.protocol``): 1,000 Fashion-MNIST test queries drawn with ``--seed`` (0) against
the 60,000 training images, which are also every hasher's unlabelled training data (random_state 0); cells are
mAP@1000 with a stable ranking (the paper's number). The fitted hashers are then scored again on 1,000 queries drawn
with ``--seed2`` (1): the learned rows did not pick their settings on that draw. The BinGAN head, ``adapt`` and
``adapt-spectral`` run with their defaults. BinGAN trained from pixels (the GAN itself) gets a row on pixels with
the best recipe measured on CPU (``--bingan-epochs``, default 3; 0 leaves it out): width 0.25, batch 25, 5,000
training images, centred DMR target, λ_BRE 0.1, γ 0.1, the regularisers on the dropout-off code, the epoch kept by
a validation split of 1,000 of those training images (BENCHMARKS.md, "BinGAN from pixels: a centred DMR target…").

Pictures (``--plots``, default ``docs/plots``): ``map-vs-bits.png`` (mAP@1000 against bits, float cosine as a line),
``pr-hamming.png`` (precision and recall by Hamming radius at 64 bits, seed-0 queries) and ``quality-vs-time.png``
(mAP@1000 at 64 bits on efficientnet-lite0 against fit seconds: every hasher as a point, the BinGAN head as a curve
of separate fits with 1, 2, 3 epochs and its default 5).

Run: ``python benchmarks/one_table.py [--hashers lsh,…] [--bits 16,32,64] [--threads 2] [--write]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from _stamp import Report, stamp, write_section

from lookalike.evaluation import precision_recall_of_codes, retrieval_map
from lookalike.evaluation.plots import plot_map_vs_bits, plot_pr_by_radius, plot_quality_vs_time
from lookalike.evaluation.protocol import features, load_split

HASHERS = "lsh,pcah,itq,sh,sph,kmh,bingan-head,adapt,adapt-spectral"
LEARNED = ("bingan-head", "adapt", "adapt-spectral", "bingan-pixels")
PR_METHODS = ("lsh", "pcah", "itq", "kmh", "bingan-head", "adapt-spectral")
CURVE_EPOCHS = (1, 2, 3)  # extra BinGAN-head fits for the quality-vs-time curve (min_steps 0), plus the default
ROOT = Path(__file__).resolve().parent.parent


def _label(name: str) -> str:
    special = {"bingan-head": "BinGAN head (defaults)", "adapt": "adapt (defaults)",
               "adapt-spectral": "adapt-spectral (defaults)", "bingan-pixels": "BinGAN from pixels (the GAN)"}
    return special.get(name, name.upper())


def bingan_pixels(args: argparse.Namespace, bits: int, draws: dict[int, np.ndarray]) -> tuple[dict[int, float], float]:
    """BinGAN trained from pixels at ``bits`` with the best CPU recipe: (mAP@1000 per query seed, train seconds)."""
    import tempfile

    from lookalike.bingan.config import BinGANConfig
    from lookalike.bingan.data import load_training_data
    from lookalike.bingan.trainer import train
    from lookalike.datasets import FASHION_MNIST_DIR

    cfg = BinGANConfig(bits=bits, width=0.25, batch_size=25, seed=1, lambda_bre=0.1, gamma=0.1, centre_high=True,
                       reg_dropout=False)
    out, secs = {}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for s, picks in draws.items():
            data = load_training_data(FASHION_MNIST_DIR, cfg, queries=len(picks), query_seed=s)
            if not secs:
                t0 = time.perf_counter()
                trainer = train(cfg, data, args.bingan_epochs, Path(tmp) / "model.bingan", device="cpu", limit=5000,
                                checkpoint_every=args.bingan_epochs, select_every=1, validation=1000)
                secs = time.perf_counter() - t0
                db = np.packbits(trainer.codes(data.train) >= 0, axis=1)
            q = np.packbits(trainer.codes(data.queries) >= 0, axis=1)
            out[s] = retrieval_map(q, db, data.query_labels, data.train_labels, 1000)
    return out, secs


def run(args: argparse.Namespace, report: Report) -> None:
    from lookalike.hashing import get_hasher

    feats, hashers = args.features.split(","), args.hashers.split(",")
    bits = [int(b) for b in args.bits.split(",")]
    train, test = load_split("fashion-mnist", "train"), load_split("fashion-mnist", "test")
    dbl = train.labels
    draws = {s: np.sort(np.random.default_rng(s).choice(len(test), args.queries, replace=False))
             for s in (args.seed, args.seed2)}
    cells: dict[tuple[str, str, int, int], float] = {}
    fit_s: dict[tuple[str, str, int], float] = {}
    ceilings: dict[tuple[str, int], float] = {}
    pr: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    curve: list[tuple[float, float]] = []
    t_all = time.perf_counter()
    for feat in feats:
        db, test_x = features("fashion-mnist", "train", feat), features("fashion-mnist", "test", feat)
        for s, picks in draws.items():
            ceilings[(feat, s)] = retrieval_map(test_x[picks], db, test.labels[picks], dbl, 1000, metric="cosine")
        for name in hashers:
            for b in bits:
                t0 = time.perf_counter()
                h = get_hasher(name, n_bits=b, random_state=0).fit(db)
                fit_s[(feat, name, b)] = time.perf_counter() - t0
                codes = h.transform(db)
                for s, picks in draws.items():
                    q = h.transform(test_x[picks])
                    cells[(feat, name, b, s)] = retrieval_map(q, codes, test.labels[picks], dbl, 1000)
                    if s == args.seed and b == max(bits) and name in PR_METHODS:
                        pr[(feat, name)] = precision_recall_of_codes(q, codes, test.labels[picks], dbl)
                print(f"{feat} {name} {b}: {cells[(feat, name, b, args.seed)]:.4f} / "
                      f"{cells[(feat, name, b, args.seed2)]:.4f} (fit {fit_s[(feat, name, b)]:.1f} s, "
                      f"{time.perf_counter() - t_all:.0f} s in all)", flush=True)
        if feat == "pixels" and args.bingan_epochs:
            for b in bits:
                found, fit_s[(feat, "bingan-pixels", b)] = bingan_pixels(args, b, draws)
                for s in draws:
                    cells[(feat, "bingan-pixels", b, s)] = found[s]
                print(f"pixels bingan {b}: {found[args.seed]:.4f} ({fit_s[(feat, 'bingan-pixels', b)]:.0f} s)",
                      flush=True)
        if feat == "efficientnet-lite0" and "bingan-head" in hashers and args.curve:
            b, picks = max(bits), draws[args.seed]
            for epochs in CURVE_EPOCHS:
                t0 = time.perf_counter()
                h = get_hasher("bingan-head", n_bits=b, random_state=0, epochs=epochs, min_steps=0).fit(db)
                secs = time.perf_counter() - t0
                curve.append((secs, retrieval_map(h.transform(test_x[picks]), h.transform(db),
                                                  test.labels[picks], dbl, 1000)))
                print(f"curve: {epochs} epochs, {curve[-1][1]:.4f} ({secs:.0f} s)", flush=True)
            curve.append((fit_s[(feat, "bingan-head", b)], cells[(feat, "bingan-head", b, args.seed)]))
    total = time.perf_counter() - t_all

    def methods(feat: str) -> list[str]:  # the hashers, and BinGAN from pixels where it ran
        return [*hashers, *(["bingan-pixels"] if (feat, "bingan-pixels", bits[0], args.seed) in cells else [])]

    report(f"{args.queries:,} test queries (seed {args.seed}) against the 60,000 training images, every hasher "
           "fitted on the training features (random_state 0) in this run; cells: mAP@1000 (stable ranking). Fit s: "
           "seconds per fit at each length. Device: where the fit ran (the BinGAN head, adapt-spectral and BinGAN "
           "from pixels train with PyTorch; the others are numpy).\n")
    report("| features | method | " + " | ".join(f"{b} bits" for b in bits) + " | fit s (" +
           " / ".join(map(str, bits)) + ") | device |")
    report("|---|---|" + "---:|" * len(bits) + "---:|---|")
    for feat in feats:
        dim = features("fashion-mnist", "train", feat).shape[1]
        report(f"| {feat} | float cosine ({dim * 4:,} bytes) | "
               + " | ".join(f"{ceilings[(feat, args.seed)]:.3f}" for _ in bits) + " | – | – |")
        for name in methods(feat):
            report(f"| {feat} | {_label(name)} | " + " | ".join(f"{cells[(feat, name, b, args.seed)]:.3f}"
                                                             for b in bits)
                   + " | " + " / ".join(f"{fit_s[(feat, name, b)]:.1f}" for b in bits) + " | cpu |")
    report("")
    if any(n in LEARNED for f in feats for n in methods(f)):
        report(f"The learned rows with a second query draw: cells mAP@1000 with seed {args.seed} / seed "
               f"{args.seed2} (the same fitted models; {args.queries:,} other random test queries), ITQ and float "
               "cosine for reference.\n")
        report("| features | method | " + " | ".join(f"{b} bits" for b in bits) + " |")
        report("|---|---|" + "---:|" * len(bits))
        for feat in feats:
            c0, c1 = ceilings[(feat, args.seed)], ceilings[(feat, args.seed2)]
            report(f"| {feat} | float cosine | " + " | ".join(f"{c0:.3f} / {c1:.3f}" for _ in bits) + " |")
            for name in [n for n in ("itq",) if n in hashers] + [n for n in methods(feat) if n in LEARNED]:
                report(f"| {feat} | {_label(name)} | " + " | ".join(
                    f"{cells[(feat, name, b, args.seed)]:.3f} / {cells[(feat, name, b, args.seed2)]:.3f}"
                    for b in bits) + " |")
        report("")
    if args.bingan_epochs and "pixels" in feats:
        report(f"BinGAN from pixels: the GAN trained {args.bingan_epochs} epoch(s) of 160 steps on 5,000 training "
               "images (width 0.25, batch 25, the best CPU recipe of \"BinGAN from pixels: a centred DMR target…\"), "
               "the epoch kept by 1,000 of them held out; its fit s is training and selection. The paper trains 400 "
               "epochs at full width on a GPU; none was lent.\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report(f"Scoring and fitting took {total:.0f} s in all, on {os.cpu_count()} CPU cores shared with other jobs (load "
           f"average {load:.1f} at the end): fit times move by 2× or more between runs; compare them within a run.\n")

    plots = Path(args.plots)
    title = f"Fashion-MNIST, {args.queries:,} test queries (seed {args.seed}) vs 60,000 training images"
    shown = {(f, n, b): cells[(f, n, b, args.seed)] for f in feats for n in methods(f) for b in bits}
    written = [plot_map_vs_bits(shown,
                                plots / "map-vs-bits.png", ceilings={f: ceilings[(f, args.seed)] for f in feats},
                                title=title)]
    if pr:
        written.append(plot_pr_by_radius(pr, plots / "pr-hamming.png", bits=max(bits), title=title))
    feat = "efficientnet-lite0"
    if feat in feats:
        b = max(bits)
        series = {_label(n): [(fit_s[(feat, n, b)], cells[(feat, n, b, args.seed)])] for n in hashers}
        if curve:  # the default fit is the curve's last point
            series["BinGAN head (defaults)"] = []
            series[f"BinGAN head, {', '.join(map(str, CURVE_EPOCHS))} and 5 epochs"] = curve
        written.append(plot_quality_vs_time(series, plots / "quality-vs-time.png",
                                            title=f"{feat}, {b} bits: mAP@1000 against fit time"))
    links = {"map-vs-bits.png": "mAP@1000 against bits", "pr-hamming.png": "precision and recall by Hamming radius",
             "quality-vs-time.png": "quality against training time"}
    for path in written:
        rel = os.path.relpath(path, ROOT)
        print(f"wrote {rel}")
        report(f"![{links[path.name]}]({rel})\n")
    if curve:
        report(f"The quality-against-time curve: the BinGAN head at {max(bits)} bits on efficientnet-lite0, separate "
               f"fits of {', '.join(map(str, CURVE_EPOCHS))} epochs (min_steps 0) and its default 5 epochs: "
               + ", ".join(f"{m:.3f} in {s:.0f} s" for s, m in curve) + "; the other methods are one point each "
               "(their fit has no training schedule). `lookalike.evaluation.plots.plot_quality_vs_time` takes any "
               "list of (seconds, mAP) points, such as `history_points` of a BinGAN model trained with "
               "`--eval-every`.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="pixels,efficientnet-lite0")
    parser.add_argument("--hashers", default=HASHERS)
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the protocol's query seed")
    parser.add_argument("--seed2", type=int, default=1, help="the second query seed")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the BinGAN head's fits)")
    parser.add_argument("--curve", action=argparse.BooleanOptionalAction, default=True,
                        help="the extra BinGAN-head fits of the quality-vs-time curve")
    parser.add_argument("--bingan-epochs", type=int, default=3,
                        help="epochs of the BinGAN-from-pixels row (0: no such row)")
    parser.add_argument("--plots", default=str(ROOT / "docs" / "plots"), help="folder of the PNGs")
    parser.add_argument("--write", action="store_true", help="replace this section in BENCHMARKS.md")
    args = parser.parse_args()
    if args.bingan_epochs or {"bingan-head", "adapt-spectral"} & set(args.hashers.split(",")):
        import torch

        torch.set_num_threads(args.threads)
    report = Report()
    report("## One table: every hasher × bits × features, and pictures (issue 16)\n")
    report(stamp())
    run(args, report)
    if args.write:
        write_section(report.text())


if __name__ == "__main__":
    main()
