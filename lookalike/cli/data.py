"""Data and model commands: ``export``, ``eval``, ``demo``, ``train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..validation import parameter_error, short_repr
from ._common import Commands, open_catalog, option_int

DATASETS = ["fashion-mnist", "cifar10"]


def register(commands: Commands) -> None:
    p = commands.add("export", cmd_export, "export a dataset to an image folder (one subfolder per class)",
                     with_results=False)
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("out", metavar="DIR")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--limit", type=int, help="a class-stratified random subset of this size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help="dataset directory (default: the Debian package's)")

    p = commands.add("eval", cmd_eval, "hashing baselines on the BinGAN retrieval protocol (mAP@1000 table)",
                     with_results=False)
    p.add_argument("--dataset", default="fashion-mnist", choices=[*DATASETS, "folder"],
                   help="fashion-mnist (default), cifar10, or folder: your own images in --root, one subfolder per "
                   "class, --queries of them drawn with --seed searched among the others")
    p.add_argument("--root", help="dataset folder (needed for cifar10: its cifar-10-batches-py; for folder: the "
                   "class-per-subfolder tree)")
    p.add_argument("--features", default="pixels,efficientnet-lite0", help="comma-separated feature names")
    p.add_argument("--hashers", default="lsh,pcah,itq,sh,sph,kmh", help="comma-separated hasher names")
    p.add_argument("--bits", default="16,32,64", help="comma-separated code lengths")
    p.add_argument("--queries", type=int, default=1000, help="test queries, at most the 10,000 of the test split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="DIR", help="also write PNG plots into DIR (needs the [plots] extra): "
                   "map-vs-bits.png (mAP@1000 against bits) and pr-hamming.png (precision and recall by Hamming "
                   "radius at the largest --bits)")
    _register_eval_patches(p, commands)

    p = commands.add("demo", cmd_demo, "export Fashion-MNIST, index it and search it with held-out images",
                     with_results=False)
    p.add_argument("--dir", default="demo", help="working directory (default ./demo)")
    p.add_argument("--n", type=int, default=3000, help="catalogue size (default 3000, at most 60000)")
    p.add_argument("--queries", type=int, default=5, help="held-out test queries (default 5)")

    _register_train(commands)


def cmd_export(args: argparse.Namespace) -> int:
    from ..datasets import export_dataset

    option_int(args, "seed", 0)  # --limit: checked by export_image_folder
    paths = export_dataset(args.dataset, args.out, split=args.split, limit=args.limit, seed=args.seed,
                           root=args.root)
    print(f"exported {len(paths)} images to {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..evaluation.protocol import ProtocolRun, run_protocol

    try:
        bits = [int(b) for b in args.bits.split(",")]
    except ValueError as err:
        raise parameter_error("--bits", "comma-separated integers", short_repr(args.bits)) from err
    option_int(args, "queries", 1, 10_000)
    option_int(args, "seed", 0)
    record = None
    if args.plot is not None:
        from ..evaluation.plots import pyplot

        if Path(args.plot).exists() and not Path(args.plot).is_dir():
            raise parameter_error("--plot", "a folder (created when missing)", f"{short_repr(args.plot)}, a file")
        pyplot()  # the missing extra is said before the run, not after it
        record = ProtocolRun()
    run_protocol(dataset=args.dataset, root=args.root, feature_names=args.features.split(","),
                 hashers=args.hashers.split(","), bits=bits, queries=args.queries, seed=args.seed,
                 out=lambda line: print(line, flush=True), record=record)
    if record is not None:
        from ..evaluation.plots import plot_protocol

        title = f"{args.dataset}, {args.queries} test queries (seed {args.seed})"
        for path in plot_protocol(record, args.plot, title=title):
            print(f"wrote {path}")
    return 0


def _register_eval_patches(eval_parser: argparse.ArgumentParser, commands: Commands) -> None:
    """``eval patches``: a sub-target of ``eval``; ``eval`` alone keeps running the hashing protocol."""
    targets = eval_parser.add_subparsers(dest="target", metavar="TARGET", help="patches: FPR@95 of patch "
                                         "descriptors; triplets: the catalogue's encoders on its judged triplets")
    _register_eval_triplets(targets, commands)
    text = ("FPR at 95%% recall of patch descriptors (OpenCV's and a BinGAN model) on patch pairs: "
            "`eval patches --set motorcycle --set warps --bingan MODEL`")
    p = targets.add_parser("patches", parents=[commands.common], help=text, description=text)
    p.set_defaults(func=cmd_eval_patches)
    p.add_argument("--set", dest="sets", action="append", metavar="SET",
                   help="motorcycle (stereo pair), warps (warped photographs) or brown:DIR (a Brown / UBC folder's "
                   "100k test pairs); repeat for several (default: motorcycle and warps)")
    p.add_argument("--descriptors", default="all", help="'all' (default) or comma-separated: brief, orb, brisk, "
                   "latch, binboost64/128/256, beblid256/512, teblid256/512, freak, sift, bingan:MODEL")
    p.add_argument("--bingan", metavar="MODEL", action="append", default=[],
                   help="also a BinGAN model file (`train bingan --arch patch --bits 256 --fit resize`)")
    p.add_argument("--pairs", type=int, default=10_000, help="matching (and as many non-matching) pairs of the "
                   "generated sets (default 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _register_eval_triplets(targets: Any, commands: Commands) -> None:  # the add_subparsers() of eval
    text = ("triplet accuracy (the reference closer to the similar item than to the not-similar one) of the "
            "catalogue's encoders on the triplets people judged, and of trained models: `eval triplets --model M`")
    p = targets.add_parser("triplets", parents=[commands.common, commands.results], help=text, description=text)
    p.set_defaults(func=cmd_eval_triplets)
    p.add_argument("--model", action="append", default=[], metavar="MODEL",
                   help="a `train triplet` model file (repeatable); one trained --from-catalog also scores its "
                   "held-out triplets next to the catalogue's default encoder")


def cmd_eval_triplets(args: argparse.Namespace) -> int:
    import json
    import math

    from ..triplet.from_catalog import score_triplets

    with open_catalog(args) as cat:
        scores = score_triplets(cat, args.model)
        default = cat.encoder.spec
    if args.json:
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in vars(s).items()}
                for s in scores]
        print(json.dumps({"default": default, "scores": rows}, indent=2))
        return 0
    if not scores:
        print("no encoder's vectors could be read back (an external index backend) and no --model given")
        return 0
    print(f"{scores[0].triplets} triplets judged in the catalogue")
    print("| encoder | triplet accuracy | held-out triplets | held-out accuracy | default encoder on them |")
    print("|---|---:|---:|---:|---:|")
    for s in scores:
        held = (f"{s.held_out} | {s.held_out_accuracy:.4f} | {s.baseline_held_out:.4f}" if s.held_out else
                "- | - | -")
        mark = " (default)" if s.encoder == default else ""
        print(f"| {s.encoder}{mark} | {s.accuracy:.4f} | {held} |")
    return 0


def cmd_eval_patches(args: argparse.Namespace) -> int:
    import json

    from ..patches.runner import format_table, parse_descriptors, run

    option_int(args, "pairs", 1, 1_000_000)
    option_int(args, "seed", 0)
    names = parse_descriptors(args.descriptors) + [f"bingan:{m}" for m in args.bingan]
    results = run(args.sets or ["motorcycle", "warps"], names, n=args.pairs, seed=args.seed,
                  out=None if args.json else lambda line: print(line, flush=True))
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, indent=2))
    else:
        print(format_table(results))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    option_int(args, "n", 1, 60_000)
    option_int(args, "queries", 1, 10_000)
    from ..demo import run_demo

    return run_demo(args.dir, n=args.n, queries=args.queries)


# -- train ------------------------------------------------------------------------------------------------------


def _register_train(commands: Commands) -> None:
    p = commands.add("train", cmd_train, "train a model: `train bingan --data DIR --bits 32 --out MODEL` or "
                     "`train triplet --data DIR_OR_CSV --out MODEL`", with_results=False)
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL",
                              help="bingan (binary codes from pixels), triplet (a 512-d embedding from triplets) or "
                              "localiser (product boxes for --crop auto)")
    _register_bingan(models.add_parser("bingan", parents=[commands.common], help="BinGAN binary codes from pixels",
                                       description="train BinGAN: `train bingan --data DIR --bits 32 --out MODEL`"))
    _register_triplet(models.add_parser(
        "triplet", parents=[commands.common], help="a similarity embedding learned from triplets",
        description="train a triplet embedding on efficientnet-lite0 features: "
        "`train triplet --data DIR_OR_CSV --out MODEL` or `train triplet --from-catalog --catalog CAT --out MODEL`"))
    from .localise import register_train as register_localiser

    register_localiser(models.add_parser(
        "localiser", parents=[commands.common], help="a product localiser for --crop auto (boxes from a CSV)",
        description="train a crop classifier and box regressor on efficientnet-lite0's feature map: "
        "`train localiser --boxes boxes.csv --out MODEL`"))


def _register_bingan(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_train)
    p.add_argument("--data", required=True, metavar="DIR", help="Fashion-MNIST IDX folder or a folder of images")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (checkpoint: MODEL.ckpt)")
    p.add_argument("--bits", type=int, default=32, help="code length K, a multiple of 8 (default 32)")
    p.add_argument("--epochs", type=int, default=400, help="total epochs (default 400, the reference's)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda[:N]")
    p.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt")
    p.add_argument("--arch", default="retrieval", choices=["retrieval", "patch"])
    p.add_argument("--channels", type=int, default=1, choices=[1, 3], help="1 grey (default) or 3 RGB")
    p.add_argument("--fit", default="pad", choices=["pad", "resize"], help="to 32x32: pad 28x28 (default) or resize")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = the paper's network)")
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lambda-dmr", type=float, default=0.05)
    p.add_argument("--lambda-bre", type=float, default=None, help="default 0.001 (retrieval), 0.01 (patch)")
    p.add_argument("--fm-layer", default="auto", choices=["auto", "code", "pool"],
                   help="feature-matching layer (auto: the reference's, code for retrieval, pool for patch)")
    p.add_argument("--gamma", type=float, default=1e-3, help="softsign gamma (default 0.001, the paper's)")
    p.add_argument("--centre-high", action="store_true",
                   help="DMR target and MAC weights from the signs of the centred high layer (not in the paper)")
    p.add_argument("--reg-no-dropout", action="store_true",
                   help="the regularisers' pass of the real batch with dropout off (the code the encoder reads)")
    p.add_argument("--d-lr-ratio", type=float, default=1.0,
                   help="the discriminator's learning rate as a multiple of --lr (1: the reference)")
    p.add_argument("--g-steps", type=int, default=1, help="generator steps per discriminator step (1: reference)")
    p.add_argument("--select-every", type=int, default=0, metavar="N",
                   help="keep the epoch with the best mAP on a validation split of the training images, checked "
                   "every N epochs (needs labels, e.g. Fashion-MNIST's; 0: the last epoch, default)")
    p.add_argument("--validation", type=int, default=1000, help="training images held out for --select-every")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, help="train on a seeded subset of this many images")
    p.add_argument("--eval-every", type=int, default=0, metavar="N", help="mAP of held-out queries every N epochs")
    p.add_argument("--eval-k", type=int, default=1000, help="mAP cut-off (1000: paper; 10000: reference code)")
    p.add_argument("--eval-ties", default="stable", choices=["stable", "grouped", "expected"])
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar with each loss term (default: when stderr is a terminal)")


def cmd_train(args: argparse.Namespace) -> int:
    from ..bingan.config import BinGANConfig
    from ..bingan.data import load_training_data

    # the options BinGANConfig does not check (it checks bits, width, batch size, rates and the seed)
    for dest, low in (("epochs", 1), ("checkpoint_every", 1), ("eval_every", 0), ("eval_k", 1), ("threads", 0),
                      ("limit", 2), ("select_every", 0), ("validation", 1)):
        option_int(args, dest, low)
    bre = args.lambda_bre if args.lambda_bre is not None else (0.001 if args.arch == "retrieval" else 0.01)
    cfg = BinGANConfig(bits=args.bits, arch=args.arch, channels=args.channels, fit=args.fit, width=args.width,
                       batch_size=args.batch_size, lr=args.lr, lambda_dmr=args.lambda_dmr, lambda_bre=bre,
                       fm_layer=args.fm_layer, seed=args.seed, gamma=args.gamma, centre_high=args.centre_high,
                       reg_dropout=not args.reg_no_dropout, d_lr_ratio=args.d_lr_ratio, g_steps=args.g_steps)
    data = load_training_data(args.data, cfg)
    import torch

    from ..bingan.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    trainer = train(cfg, data, args.epochs, args.out, device=args.device, resume=args.resume,
                    checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, eval_k=args.eval_k,
                    eval_ties=args.eval_ties, limit=args.limit, progress=progress, select_every=args.select_every,
                    validation=args.validation, log=lambda line: print(line, flush=True))
    print(f"wrote {args.out} ({trainer.cfg.bits} bits, {trainer.epoch} epochs); index with "
          f"`lookalike index DIR --encoder bingan:{args.out}`")
    return 0


def _register_triplet(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_train_triplet)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR_OR_CSV",
                        help="class subfolders (DIR/<class>/...), a CSV of query,positive,negative paths, or with "
                        "--pairs a CSV of query,positive pairs (paths relative to the CSV's folder)")
    source.add_argument("--from-catalog", action="store_true",
                        help="the triplets people marked in the catalogue of --catalog (the web page's similar / not "
                        "similar, POST /triplets, `lookalike judge`); whole reference items are held out")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (checkpoint: MODEL.ckpt)")
    p.add_argument("--pairs", action="store_true", help="--data is a CSV of similar pairs; negatives from the batch")
    p.add_argument("--epochs", type=int, default=20, help="total epochs (default 20)")
    p.add_argument("--distance", default="euclidean", choices=["euclidean", "angular"],
                   help="euclidean ||a-b|| (default) or angular 1-cos, both on unit vectors")
    p.add_argument("--margin", type=float, default=None, help="hinge margin g (default 0.05 euclidean, 0.1 angular)")
    p.add_argument("--mining", default="semi-hard", choices=["semi-hard", "hard", "all"],
                   help="negatives chosen in the batch (default semi-hard)")
    p.add_argument("--dim", type=int, default=None, help="embedding length (default 512; 1280 with --residual)")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="learn a correction of the features, normalize(x + head(x)), starting from them (dim 1280): "
                   "for few triplets, e.g. people's judgements (default: on with --from-catalog, off otherwise; "
                   "chosen on a validation split by benchmarks/judged.py)")
    p.add_argument("--hidden", type=int, default=1024, help="hidden width of the head (0: one linear layer)")
    p.add_argument("--fine-tune", type=int, default=0, metavar="N",
                   help="also train the last N MBConv blocks of efficientnet-lite0 (default 0: frozen)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda[:N]")
    p.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    p.add_argument("--per-class", type=int, default=8, help="images of one class drawn together (class folders)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--val-fraction", type=float, default=0.2, help="triplets held out for accuracy (default 0.2)")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    p.add_argument("--suspects", metavar="FILE", help="also write the suspected label errors (class folders: "
                   "images whose nearest neighbours mostly carry another class) to this CSV")
    p.add_argument("--suspect-k", type=int, default=10, help="neighbours that vote (default 10; 0: do not look)")
    p.add_argument("--suspect-share", type=float, default=0.8,
                   help="share of them in another class that makes a suspect (default 0.8)")


def cmd_train_triplet(args: argparse.Namespace) -> int:
    from ..triplet.config import TripletConfig
    from ..triplet.data import load_triplet_data

    for dest, low in (("epochs", 1), ("checkpoint_every", 1), ("threads", 0), ("suspect_k", 0)):
        option_int(args, dest, low)
    if not 0 < args.suspect_share <= 1:
        raise parameter_error("--suspect-share", "a real number in (0, 1]", short_repr(args.suspect_share))
    if args.from_catalog and args.pairs:
        raise parameter_error("--pairs", "used with --data (a CSV of pairs)", "--from-catalog")
    if args.suspects and (args.suspect_k == 0 or args.pairs or not args.data or not Path(args.data).is_dir()):
        raise parameter_error("--suspects", "used with class folders as --data and --suspect-k >= 1",
                              short_repr(args.suspects))
    residual = args.from_catalog if args.residual is None else args.residual
    dim = args.dim if args.dim is not None else (1280 if residual else 512)
    cfg = TripletConfig(dim=dim, hidden=args.hidden, residual=residual, distance=args.distance, margin=args.margin,
                        mining=args.mining, fine_tune=args.fine_tune, batch_size=args.batch_size, lr=args.lr,
                        weight_decay=args.weight_decay, per_class=args.per_class, val_fraction=args.val_fraction,
                        seed=args.seed)
    inputs = None
    if args.from_catalog:
        from ..triplet.from_catalog import catalog_data

        with open_catalog(args) as cat:
            data, inputs = catalog_data(cat, cfg)
    else:
        data = load_triplet_data(args.data, cfg, pairs=args.pairs)
    from ..triplet.trainer import final_accuracy, train

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    trainer = train(cfg, data, args.epochs, args.out, device=args.device, resume=args.resume,
                    checkpoint_every=args.checkpoint_every, progress=progress, threads=args.threads,
                    suspect_k=args.suspect_k, suspect_share=args.suspect_share, inputs=inputs,
                    log=lambda line: print(line, flush=True))
    if args.suspects:
        from ..triplet.suspects import write_suspects

        write_suspects(args.suspects, trainer.suspects, paths=data.paths, classes=data.classes)
        print(f"wrote {args.suspects} ({len(trainer.suspects):,} suspected label errors)")
    b = trainer.baseline
    print(f"wrote {args.out} ({trainer.cfg.dim}-d, {trainer.epoch} epochs); validation triplet accuracy "
          f"{b['untrained']:.4f} untrained -> {final_accuracy(trainer):.4f} trained ({trainer.cfg.backbone} "
          f"features: {b['features']:.4f}); index with `lookalike index DIR --encoder triplet:{args.out}`")
    return 0
