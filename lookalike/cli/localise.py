"""``train localiser`` (registered by :mod:`.data` under ``train``) and the ``--crop`` option of ``index`` and
``search``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..catalog import Catalog
from ..catalog.crop import (
    CROP_SETTING,
    MASK_SETTING,
    MASK_SUFFIX,
    MASK_VALUE,
    mask_setting,
    masks,
    model_of,
    parse_crop,
    resolve,
)
from ..errors import InvalidParameterError
from ._common import option_int

CROP_HELP = ("auto: crop to the product's box predicted by the catalogue's localiser (setting crop.model), "
             "auto:MODEL: by that localiser model file (`lookalike train localiser`); either followed by ,mask: "
             "also remove the background inside the box (GrabCut; for a catalogue indexed with ,mask); a --box "
             "wins")


def register_train(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_train_localiser)
    p.add_argument("--boxes", required=True, metavar="CSV",
                   help="boxes.csv: a header with path,x,y,w,h, then one image and its product's box per row "
                   "(paths relative to the CSV's folder)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (checkpoint: MODEL.ckpt)")
    p.add_argument("--val-boxes", metavar="CSV", help="held-out boxes.csv: mean IoU after every epoch")
    p.add_argument("--epochs", type=int, default=30, help="total epochs (default 30)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda[:N]")
    p.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", default="stage5", choices=["stage5", "stage6", "stage7", "head"],
                   help="efficientnet-lite0 layer whose feature map the crops are read from (default stage5)")
    p.add_argument("--size", type=int, default=224, help="side the image is resized to (default 224)")
    p.add_argument("--threshold", type=float, default=0.995,
                   help="average the boxes of the crops with p(object) >= this (default 0.995, chosen on validation "
                   "composites; TiefVision's 0.8 averaged worse boxes in)")
    p.add_argument("--min-score", type=float, default=0.1,
                   help="below this best p(object), nothing is an object: no box (default 0.1)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--per-image", type=int, default=32, help="crops drawn per image and epoch (default 32)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")


def cmd_train_localiser(args: argparse.Namespace) -> int:
    from ..localise.config import LocaliserConfig
    from ..localise.data import load_box_data

    for dest, low in (("epochs", 1), ("checkpoint_every", 1), ("threads", 0)):
        option_int(args, dest, low)
    cfg = LocaliserConfig(layer=args.layer, size=args.size, threshold=args.threshold, min_score=args.min_score,
                          hidden=args.hidden, per_image=args.per_image, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    data = load_box_data(args.boxes, cfg, progress=progress)
    val = load_box_data(args.val_boxes, cfg, progress=progress) if args.val_boxes else None
    from ..localise.trainer import train

    trainer = train(cfg, data, args.epochs, args.out, device=args.device, resume=args.resume,
                    checkpoint_every=args.checkpoint_every, progress=progress, val=val, threads=args.threads,
                    log=lambda line: print(line, flush=True))
    last = trainer.history[-1] if trainer.history else {}
    score = f"; validation mean IoU {last['mean_iou']:.4f}" if "mean_iou" in last else ""
    print(f"wrote {args.out} ({trainer.epoch} epochs{score}); crop with `lookalike index DIR --crop auto:{args.out}` "
          f"or `lookalike search IMAGE --crop auto:{args.out}`")
    return 0


def index_crop(cat: Catalog, value: str | None) -> None:
    """``index --crop auto:MODEL[,mask]`` (or ``none``): keep the catalogue's crop model (and ``crop.mask``),
    checked, before indexing. A catalogue whose items were indexed with another crop (or none) is refused: its
    vectors would mix crops."""
    if value is None:
        return
    spec = parse_crop(value)
    if spec is not None and spec.removesuffix(MASK_SUFFIX) == "auto":
        raise InvalidParameterError("--crop at index time names the model: --crop auto:MODEL[,mask] (or none)")
    model = None if spec is None else str(Path(model_of(spec, None) or "").resolve())
    if model is not None:
        resolve(spec, None)  # a file that is not a localiser model fails here, before anything is written
    mask = masks(spec)
    current, masked = cat.setting(CROP_SETTING), mask_setting(cat.setting(MASK_SETTING))
    if (model, mask) != (current, masked):
        if cat.count():
            raise InvalidParameterError(
                f"this catalogue's {cat.count()} items were indexed with crop {_shown(current, masked)}; index into "
                f"a new catalogue to crop with {_shown(model, mask)} (its vectors would mix crops)")
        # the mask first: stopped between the two, the new model is never paired with the old mask (the catalogue
        # is empty here, and running the command again sets both)
        cat.put_setting(MASK_SETTING, MASK_VALUE if mask else None)
        cat.put_setting(CROP_SETTING, model)


def _shown(model: str | None, mask: bool) -> str:
    return "none" if model is None else model + (" with its background masked" if mask else "")
