"""BinGAN on the BinGAN paper's retrieval protocol (Fashion-MNIST: 1,000 seeded test queries against the 60,000
training images, mAP@1000), in the same run as ITQ on the same features.

Two parts:

- ``pixels``: BinGAN trained from pixels (the paper's method) at each code length, then the λ ablation (both 0;
  BRE only; DMR only; both). Uses CUDA when present. A full-length run is
  ``python benchmarks/bingan.py pixels --epochs 400 --batch-size 25 --width 1`` (the reference settings) on a GPU;
  on a CPU, ``--width``, ``--limit`` and ``--epochs`` shrink it, and every row says what it used.
- ``head``: the BinGAN head (``--hash bingan-head``: DMR + BRE on top of a float encoder's vectors, no GAN) on
  efficientnet-lite0 embeddings and on pixels, and its λ ablation.

Cells: mAP@1000 (stable ranking, the paper's table) / mAP@10000 with grouped ties (the reference code's) /
tie-aware mAP@1000, exactly as ``lookalike eval`` scores the hashing baselines.

Run: ``python benchmarks/bingan.py {pixels,head} [--bits 16,32,64] [--report FILE] …`` (``--help`` for all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _stamp import Report, stamp

from lookalike.evaluation.protocol import features, load_split, scores

ABLATION = (("λ_DMR = λ_BRE = 0", 0.0, 0.0), ("λ_DMR = 0, λ_BRE > 0 (BRE only)", 0.0, None),
            ("λ_DMR > 0, λ_BRE = 0 (DMR only)", None, 0.0), ("λ_DMR > 0, λ_BRE > 0 (both)", None, None))


def _cell(m: tuple[float, float, float]) -> str:
    return f"{m[0]:.3f} / {m[1]:.3f} / {m[2]:.3f}"


def _protocol(queries: int, seed: int):  # noqa: ANN202
    import numpy as np

    train, test = load_split("fashion-mnist", "train"), load_split("fashion-mnist", "test")
    picks = np.sort(np.random.default_rng(seed).choice(len(test), queries, replace=False))
    return picks, test.labels[picks], train.labels


def _itq_rows(report: Report, feat: str, bits: list[int], picks, ql, dbl) -> None:  # noqa: ANN001
    from lookalike.hashing import get_hasher

    db, q = features("fashion-mnist", "train", feat), features("fashion-mnist", "test", feat)[picks]
    ceiling = scores(q, db, ql, dbl, "cosine")
    report(f"| float cosine on {feat} ({db.shape[1] * 4:,} bytes) | "
           + " | ".join(f"{ceiling[0]:.3f} / {ceiling[1]:.3f}" for _ in bits) + " | – | – | – |")
    cells, secs = [], []
    for b in bits:
        t0 = time.perf_counter()
        h = get_hasher("itq", n_bits=b, random_state=0).fit(db)
        secs.append(time.perf_counter() - t0)
        cells.append(_cell(scores(h.transform(q), h.transform(db), ql, dbl, "hamming")))
    report(f"| ITQ on {feat} | " + " | ".join(cells) + " | cpu | – | " + " / ".join(f"{s:.0f}" for s in secs) + " |")


def run_pixels(args: argparse.Namespace, report: Report) -> None:
    import numpy as np
    import torch

    from lookalike.bingan.config import BinGANConfig
    from lookalike.bingan.data import load_training_data
    from lookalike.bingan.trainer import train
    from lookalike.datasets import FASHION_MNIST_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    bits = [int(b) for b in args.bits.split(",")]
    picks, ql, dbl = _protocol(args.queries, args.seed)
    base = BinGANConfig(bits=bits[0], width=args.width, batch_size=args.batch_size, seed=args.train_seed,
                        lambda_dmr=args.lambda_dmr, lambda_bre=args.lambda_bre, init_size=args.init_size,
                        fm_layer=args.fm_layer, lr=args.lr, gamma=args.gamma, centre_high=args.centre_high,
                        reg_dropout=not args.reg_no_dropout, d_lr_ratio=args.d_lr_ratio, g_steps=args.g_steps,
                        init_dropout=not args.init_no_dropout)
    data = load_training_data(args.data or FASHION_MNIST_DIR, base, queries=args.queries, query_seed=args.seed)
    assert np.array_equal(data.query_labels, ql) and np.array_equal(data.train_labels, dbl)
    models = Path(args.models_dir)
    models.mkdir(parents=True, exist_ok=True)
    n_train = min(args.limit or len(data.train), len(data.train))
    setting = (f"width {args.width}, batch {args.batch_size}, lr {base.lr}, feature matching on the "
               f"{base.feature_layer} layer, init dropout {base.init_dropout}, λ_DMR {base.lambda_dmr}, "
               f"λ_BRE {base.lambda_bre}, γ {base.gamma}, centred high {base.centre_high}, regulariser pass dropout "
               f"{base.reg_dropout}, D learning rate x{base.d_lr_ratio}, {base.g_steps} G steps per D step, "
               f"{n_train:,} training images, seed {args.train_seed}"
               + (f", model chosen every {args.select_every} epochs on {args.validation:,} held-out training "
                  f"images" if args.select_every else ""))

    curves: list[tuple[str, list[dict[str, float]], int | None]] = []

    def fit(cfg: BinGANConfig, epochs: int, name: str) -> tuple[tuple[float, float, float], float, str]:
        t0 = time.perf_counter()
        trainer = train(cfg, data, epochs, models / f"{name}.bingan", device=args.device, limit=args.limit,
                        checkpoint_every=max(1, epochs), progress=args.progress, log=lambda s: print(s, flush=True),
                        select_every=args.select_every, validation=args.validation, eval_every=int(args.curve))
        if args.curve:
            curves.append((name, trainer.history, trainer.selected))
        wall = time.perf_counter() - t0
        m = scores(np.packbits(trainer.codes(data.queries) >= 0, axis=1),
                   np.packbits(trainer.codes(data.train) >= 0, axis=1), ql, dbl, "hamming")
        print(f"{name}: {_cell(m)} ({wall:.0f} s)", flush=True)
        return m, wall, str(trainer.device)

    report(f"### BinGAN from pixels (28×28 grey padded to 32×32; {setting})\n")
    report("| method | " + " | ".join(f"{b} bits" for b in bits) + " | device | epochs | wall s per cell |")
    report("|---|" + "---|" * len(bits) + "---|---|---|")
    _itq_rows(report, "pixels", bits, picks, ql, dbl)
    if not args.skip_main:
        cells, walls, device = [], [], ""
        for b in bits:
            m, wall, device = fit(base.replace(bits=b), args.epochs, f"bingan-pixels-{b}")
            cells.append(_cell(m))
            walls.append(wall)
        report("| BinGAN (pixels) | " + " | ".join(cells) + f" | {device} | {args.epochs} | "
               + " / ".join(f"{w:.0f}" for w in walls) + " |")
    report("")
    for name, history, selected in curves:
        report(f"Curve of `{name}` (test mAP@1000 reported, never used for a choice; the validation mAP chose "
               f"epoch {selected}):\n")
        report("| epoch | steps | cumulative train s | validation mAP@1000 | test mAP@1000 | L_unl | soft L_ME | "
               "hard L_ME dropout off |")
        report("|---:|---:|---:|---:|---:|---:|---:|---:|")
        held = args.validation if args.select_every else 0
        steps, seconds = (n_train - held) // args.batch_size, 0.0
        for r in history:
            seconds += r.get("seconds", 0.0)
            report(f"| {r['epoch']:.0f} | {steps * r['epoch']:,.0f} | {seconds:.0f} | "
                   f"{r.get('valid_map', float('nan')):.3f} | "
                   f"{r.get('map@1000', float('nan')):.3f} | {r['d_unl']:.3f} | {r['me']:.3f} | "
                   f"{r.get('eval_hard_me', float('nan')):.3f} |")
        report("")
    if args.ablation_bits:
        abits = [int(b) for b in args.ablation_bits.split(",")]
        ep = args.ablation_epochs or args.epochs
        report(f"### λ ablation, BinGAN from pixels ({setting}; λ > 0 means the value above)\n")
        report("| λ | " + " | ".join(f"{b} bits" for b in abits) + " | device | epochs | wall s per cell |")
        report("|---|" + "---|" * len(abits) + "---|---|---|")
        for label, dmr, bre in ABLATION:
            cells, walls, device = [], [], ""
            for b in abits:
                cfg = base.replace(bits=b, lambda_dmr=base.lambda_dmr if dmr is None else dmr,
                                   lambda_bre=base.lambda_bre if bre is None else bre)
                m, wall, device = fit(cfg, ep, f"ablation-{cfg.lambda_dmr}-{cfg.lambda_bre}-{b}")
                cells.append(_cell(m))
                walls.append(wall)
            report(f"| {label} | " + " | ".join(cells) + f" | {device} | {ep} | "
                   + " / ".join(f"{w:.0f}" for w in walls) + " |")
        report("")


def run_head(args: argparse.Namespace, report: Report) -> None:
    from lookalike.hashing import get_hasher

    bits = [int(b) for b in args.bits.split(",")]
    picks, ql, dbl = _protocol(args.queries, args.seed)
    params = {"epochs": args.epochs, "random_state": 0}
    for feat in args.features.split(","):
        db, q = features("fashion-mnist", "train", feat), features("fashion-mnist", "test", feat)[picks]
        probe = get_hasher("bingan-head", n_bits=bits[0], **params)
        report(f"### BinGAN head on {feat} features ({db.shape[1]}-d; {probe!r}, fitted on the 60,000 training "
               "vectors without labels)\n")
        report("| method | " + " | ".join(f"{b} bits" for b in bits) + " | device | epochs | wall s per cell |")
        report("|---|" + "---|" * len(bits) + "---|---|---|")
        _itq_rows(report, feat, bits, picks, ql, dbl)
        rows = ABLATION if args.ablation else ABLATION[-1:]
        for label, dmr, bre in rows:
            cells, walls = [], []
            for b in bits:
                h = get_hasher("bingan-head", n_bits=b, **params)
                h.set_params(**({} if dmr is None else {"lambda_dmr": dmr}), **({} if bre is None else
                                                                                {"lambda_bre": bre}))
                t0 = time.perf_counter()
                h.fit(db)
                walls.append(time.perf_counter() - t0)
                m = scores(h.transform(q), h.transform(db), ql, dbl, "hamming")
                print(f"{feat} {label} {b}: {_cell(m)} ({walls[-1]:.0f} s)", flush=True)
                cells.append(_cell(m))
            name = "BinGAN head" if not args.ablation else f"BinGAN head, {label}"
            report(f"| {name} | " + " | ".join(cells) + f" | cpu | {args.epochs} | "
                   + " / ".join(f"{w:.0f}" for w in walls) + " |")
        report("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["pixels", "head"])
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="query selection seed (the protocol's)")
    parser.add_argument("--report", help="also write the markdown section to this file")
    pix = parser.add_argument_group("pixels")
    pix.add_argument("--data", help="Fashion-MNIST folder (default: the Debian package's)")
    pix.add_argument("--epochs", type=int, default=None, help="epochs (pixels default 400, head default 30)")
    pix.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = paper)")
    pix.add_argument("--batch-size", type=int, default=25)
    pix.add_argument("--lambda-dmr", type=float, default=0.05)
    pix.add_argument("--lambda-bre", type=float, default=0.001)
    pix.add_argument("--init-size", type=int, default=500)
    pix.add_argument("--lr", type=float, default=3e-4)
    pix.add_argument("--init-no-dropout", action="store_true",
                     help="data-dependent init with dropout off (centres the code as the encoder reads it)")
    pix.add_argument("--fm-layer", default="auto", choices=["auto", "code", "pool"])
    pix.add_argument("--gamma", type=float, default=1e-3, help="softsign γ")
    pix.add_argument("--centre-high", action="store_true", help="DMR target / MAC weights from centred high signs")
    pix.add_argument("--reg-no-dropout", action="store_true", help="the regularisers' pass with dropout off")
    pix.add_argument("--d-lr-ratio", type=float, default=1.0, help="D learning rate as a multiple of --lr")
    pix.add_argument("--g-steps", type=int, default=1, help="generator steps per discriminator step")
    pix.add_argument("--select-every", type=int, default=0,
                     help="epochs between validation checks; the model kept is the validation's best (0: last)")
    pix.add_argument("--validation", type=int, default=1000, help="training images held out for --select-every")
    pix.add_argument("--curve", action="store_true",
                     help="test mAP@1000 after every epoch (reported, never used for a choice) as a table")
    pix.add_argument("--limit", type=int, help="train on a seeded subset of this many images")
    pix.add_argument("--train-seed", type=int, default=1)
    pix.add_argument("--device", default="auto")
    pix.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    pix.add_argument("--models-dir", default="bingan-models")
    pix.add_argument("--skip-main", action="store_true", help="only the ablation")
    pix.add_argument("--ablation-bits", default="", help="code lengths of the λ ablation (empty: none)")
    pix.add_argument("--ablation-epochs", type=int, default=0)
    pix.add_argument("--progress", action="store_true")
    head = parser.add_argument_group("head")
    head.add_argument("--features", default="efficientnet-lite0,pixels")
    head.add_argument("--ablation", action="store_true", help="all four λ settings")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 400 if args.part == "pixels" else 30
    report = Report()
    title = "BinGAN from pixels" if args.part == "pixels" else "BinGAN head"
    report(f"## {title} on Fashion-MNIST (BinGAN protocol)\n")
    report(stamp())
    report("Cells: mAP@1000 (stable ranking) / mAP@10000 (grouped ties) / tie-aware mAP@1000; 1,000 seeded test "
           "queries against the 60,000 training images, ITQ computed in the same run.\n")
    t0 = time.perf_counter()
    (run_pixels if args.part == "pixels" else run_head)(args, report)
    report(f"Total wall time {time.perf_counter() - t0:.0f} s.")
    if args.report:
        Path(args.report).write_text(report.text(), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
