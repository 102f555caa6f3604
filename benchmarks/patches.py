"""Patch matching: FPR at 95% recall of the classical descriptors (OpenCV) and the BinGAN patch model, on the
offline pair sets (``motorcycle``: the stereo pair with ground-truth disparity; ``warps``: known warps of
scikit-image's photographs) and on a Brown / UBC folder when one is given (``--brown DIR``, the paper's data).

The BinGAN patch model (256 bits, the patch network) is trained here without labels on ``--train-patches``
patches of scikit-image photographs that no test set uses (``lookalike.patches.training_patches``), for
``--epochs`` epochs at ``--width`` (a CPU budget; the paper trains the full-width network far longer on a Brown
subset), unless ``--bingan MODEL`` gives a trained model. The table says which.

Run: ``python benchmarks/patches.py [--pairs 10000] [--brown DIR] [--bingan MODEL | --epochs 4 --width 0.5]
[--write]`` (``--write`` puts the table into BENCHMARKS.md as its own section).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _stamp import Report, stamp, write_section

from lookalike.patches import DESCRIPTORS, format_table, run, training_patches

HEADING = "## Patch matching: FPR@95 (issue 15)"


def _train(args: argparse.Namespace, work: Path, say: Report) -> tuple[str, str]:
    """Train the BinGAN patch model on CPU; (model path, a line saying how)."""
    import numpy as np
    import torch

    from lookalike.bingan.config import BinGANConfig
    from lookalike.bingan.data import load_training_data
    from lookalike.bingan.trainer import train

    torch.set_num_threads(args.threads)
    npy = work / "train-patches.npy"
    np.save(npy, training_patches(args.train_patches, seed=args.seed + 1))
    cfg = BinGANConfig(bits=256, arch="patch", channels=1, fit="resize", width=args.width, lambda_bre=0.01,
                       batch_size=args.batch_size, seed=args.seed + 1)
    data = load_training_data(npy, cfg)
    model = work / "patch.bingan"
    t0 = time.perf_counter()
    train(cfg, data, args.epochs, model, device="cpu", log=lambda line: print(line, file=sys.stderr, flush=True))
    secs = time.perf_counter() - t0
    how = (f"BinGAN patch model (256 bits, width {args.width}, batch {args.batch_size}, λ_DMR 0.05, λ_BRE 0.01): "
           f"trained here without labels on {args.train_patches:,} patches of the training photographs, "
           f"{args.epochs} epoch(s) = {args.epochs * (args.train_patches // args.batch_size)} steps, "
           f"{secs / 60:.1f} min on {args.threads} CPU threads")
    return str(model), how


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=10_000, help="matching (= non-matching) pairs per generated set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--brown", action="append", default=[], metavar="DIR", help="a Brown / UBC folder (repeatable)")
    p.add_argument("--descriptors", default=",".join(DESCRIPTORS))
    p.add_argument("--bingan", metavar="MODEL", help="a trained BinGAN model instead of training one here")
    p.add_argument("--epochs", type=int, default=4, help="BinGAN epochs when training here (0: no BinGAN row)")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--train-patches", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=25, help="BinGAN minibatch (25: the reference's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = p.parse_args(argv)
    say = Report()
    sets = ["motorcycle", "warps"] + [f"brown:{d}" for d in args.brown]
    names = args.descriptors.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        how = ""
        if args.bingan:
            names.append(f"bingan:{args.bingan}")
            how = f"BinGAN: the model file {args.bingan}"
        elif args.epochs > 0:
            model, how = _train(args, Path(tmp), say)
            names.append(f"bingan:{model}")
        t0 = time.perf_counter()
        results = run(sets, names, n=args.pairs, seed=args.seed, out=lambda line: print(line, file=sys.stderr))
        secs = time.perf_counter() - t0
    say(HEADING)
    say()
    say(stamp().rstrip("\n"))
    say(f"- sets: motorcycle and warps, {args.pairs:,} matching + {args.pairs:,} non-matching pairs each (seed "
        f"{args.seed})" + "".join(f"; {r}" for r in sets[2:]) + f"; evaluation {secs:.0f} s")
    if how:
        say(f"- {how}")
    say()
    say("FPR at 95% recall, in percent (lower is better); Hamming distance for binary descriptors, L2 for SIFT.")
    say()
    say(format_table(results))
    failed = {f"{r.descriptor}@{r.pairs}": r.failed for r in results if r.failed}
    if failed:
        say()
        say(f"Patches a descriptor could not describe (rejected at every threshold): {json.dumps(failed)}")
    if args.write:
        write_section(say.text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
