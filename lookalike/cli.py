"""The ``lookalike`` command line: each subcommand is a thin call into the library.

Errors a user can cause print one line (``lookalike: error: …``) and exit with status 1; usage errors exit with 2.
Set ``LOOKALIKE_DEBUG=1`` to see a traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .catalog import DEFAULT_ENCODER, DEFAULT_PATH, Catalog, Item, SearchResult
from .errors import InvalidParameterError, LookalikeError
from .images import Box, ImageLimits

EXIT_ERROR = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (LookalikeError, OSError, sqlite3.Error) as err:
        if os.environ.get("LOOKALIKE_DEBUG"):
            raise
        print(f"lookalike: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("lookalike: interrupted (everything committed before this point is kept)", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


# -- argument parsing -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", metavar="PATH", default=argparse.SUPPRESS,
                        help=f"catalogue directory (default: $LOOKALIKE_CATALOG or {DEFAULT_PATH})")
    common.add_argument("--max-pixels", type=int, default=argparse.SUPPRESS,
                        help="refuse images with more pixels than this (decompression-bomb guard)")
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(prog="lookalike", parents=[common],
                                     description="Visual similarity search for image catalogues.")
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int | None], help: str,  # noqa: A002
                with_results: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help,
                           parents=[common, results] if with_results else [common])
        p.set_defaults(func=func)
        return p

    p = command("index", cmd_index, "index every image under DIR (incremental)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--encoder", help=f"encoder of a new catalogue (default {DEFAULT_ENCODER})")
    p.add_argument("--extra-encoder", action="append", default=[], metavar="SPEC",
                   help="keep vectors of this encoder too (new catalogue only; repeatable)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.add_argument("--hash", metavar="NAME", help="learn binary codes on the catalogue's vectors and search by them "
                   "(lsh, pcah, itq, sh, sph, kmh, bingan-head)")
    p.add_argument("--bits", type=int, default=64, help="code length for --hash (multiple of 8, default 64)")
    p.add_argument("--refit", action="store_true", help="fit the --hash hasher again on all items")

    p = command("add", cmd_add, "add image files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--id", help="id of the item (one FILE only)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE|JSON", help="metadata (repeatable)")
    p.add_argument("--check-duplicates", action="store_true",
                   help="show exact / near-duplicate / similar items of each image (needs 'dedup --calibrate')")
    p.add_argument("--refuse", choices=["exact", "near"],
                   help="do not add images that are exact (or exact and near) duplicates of catalogue items")

    p = command("update", cmd_update, "replace an item's image and/or metadata")
    p.add_argument("id", metavar="ID")
    p.add_argument("--image", metavar="FILE")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE|JSON")

    p = command("remove", cmd_remove, "remove items by id")
    p.add_argument("ids", nargs="+", metavar="ID")

    p = command("get", cmd_get, "show one item")
    p.add_argument("id", metavar="ID")

    p = command("list", cmd_list, "list items")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")

    for name, func, what in (("search", cmd_search, "IMAGE"), ("similar", cmd_similar, "ID")):
        p = command(name, func, f"the items most similar to {'an image file' if what == 'IMAGE' else 'an item'}")
        p.add_argument("query", metavar=what)
        p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
        p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="metadata filter")
        p.add_argument("--encoder", help="which of the catalogue's encoders to search")
        p.add_argument("--rerank", type=int, metavar="N",
                       help="with learned codes: take the N best candidates by the codes (the query's real-valued "
                       "projection against them) and order them by exact cosine on the float vectors")
        if name == "search":
            p.add_argument("--box", metavar="X,Y,W,H", help="search with this region of the image")

    command("info", cmd_info, "counts, encoders and sizes of the catalogue")

    p = command("export", cmd_export, "export a dataset to an image folder (one subfolder per class)",
                with_results=False)
    p.add_argument("dataset", choices=["fashion-mnist", "cifar10"])
    p.add_argument("out", metavar="DIR")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--limit", type=int, help="a class-stratified random subset of this size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help="dataset directory (default: the Debian package's)")

    p = command("eval", cmd_eval, "hashing baselines on the BinGAN retrieval protocol (mAP@1000 table)",
                with_results=False)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "cifar10"])
    p.add_argument("--root", help="dataset folder (needed for cifar10: its cifar-10-batches-py)")
    p.add_argument("--features", default="pixels,efficientnet-lite0", help="comma-separated feature names")
    p.add_argument("--hashers", default="lsh,pcah,itq,sh,sph,kmh", help="comma-separated hasher names")
    p.add_argument("--bits", default="16,32,64", help="comma-separated code lengths")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)

    p = command("serve", cmd_serve, "serve the catalogue over HTTP: REST API (/docs) and a web page (/)",
                with_results=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--read-only", action="store_true",
                   help="serve without write endpoints (else $LOOKALIKE_API_KEY must be set; writes need it)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image upload in MiB (default 20)")

    p = command("dedup", cmd_dedup, "duplicate groups of the catalogue (double listings), with a keeper each",
                with_results=False)
    p.add_argument("--calibrate", action="store_true",
                   help="first fit the near-duplicate threshold on edited copies of the catalogue's own items")
    p.add_argument("--target-precision", type=float, default=0.99, help="for --calibrate (default 0.99)")
    p.add_argument("--sample", type=int, default=200, help="items edited by --calibrate (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of --calibrate (default 0)")
    p.add_argument("-k", type=int, default=10, help="neighbours checked per item (default 10)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text")
    p.add_argument("--out", metavar="FILE", help="write the groups here instead of stdout")

    p = command("train", cmd_train, "train a model: `train bingan --data DIR --bits 32 --epochs N --out MODEL`",
                with_results=False)
    p.add_argument("model", choices=["bingan"], help="what to train (bingan: binary codes from pixels)")
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
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, help="train on a seeded subset of this many images")
    p.add_argument("--eval-every", type=int, default=0, metavar="N", help="mAP of held-out queries every N epochs")
    p.add_argument("--eval-k", type=int, default=1000, help="mAP cut-off (1000: paper; 10000: reference code)")
    p.add_argument("--eval-ties", default="stable", choices=["stable", "grouped", "expected"])
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar with each loss term (default: when stderr is a terminal)")

    p = command("demo", cmd_demo, "export Fashion-MNIST, index it and search it with held-out images",
                with_results=False)
    p.add_argument("--dir", default="demo", help="working directory (default ./demo)")
    p.add_argument("--n", type=int, default=3000, help="catalogue size (default 3000)")
    p.add_argument("--queries", type=int, default=5, help="held-out test queries (default 5)")
    return parser


def _catalog(args: argparse.Namespace, *, create: bool = False, encoder: str | None = None,
             extra: Sequence[str] = ()) -> Catalog:
    path = getattr(args, "catalog", None) or os.environ.get("LOOKALIKE_CATALOG") or DEFAULT_PATH
    limits = ImageLimits(max_pixels=args.max_pixels) if getattr(args, "max_pixels", None) else ImageLimits()
    return Catalog(path, encoder, extra_encoders=extra, create=create, limits=limits)


def parse_pairs(values: Sequence[str], what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` or ``['{"a": 1}']`` → a dict; values that parse as JSON are typed (1 → int)."""
    out: dict[str, Any] = {}
    for text in values:
        if text.lstrip().startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise InvalidParameterError(f"{what}: invalid JSON {text!r}: {err.msg}") from err
            if not isinstance(obj, dict):
                raise InvalidParameterError(f"{what}: expected a JSON object. Got {text!r}.")
            out.update(obj)
            continue
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise InvalidParameterError(f"{what}: expected KEY=VALUE or a JSON object. Got {text!r}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# -- output -----------------------------------------------------------------------------------------------------


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _print_results(query: str, results: list[SearchResult], as_json: bool) -> None:
    if as_json:
        _print_json({"query": query, "results": [r.to_dict() for r in results]})
        return
    if not results:
        print("no results")
    for rank, r in enumerate(results, 1):
        meta = f"  {json.dumps(r.metadata, ensure_ascii=False)}" if r.metadata else ""
        print(f"{rank:>3}  {r.score:7.4f}  {r.id}  {r.path or ''}{meta}")


def _print_item(item: Item, as_json: bool) -> None:
    if as_json:
        _print_json(item.to_dict())
    else:
        meta = json.dumps(item.metadata, ensure_ascii=False)
        print(f"{item.id}  {item.width}x{item.height}  {item.sha256[:12]}  {item.path or ''}  {meta}")


# -- commands ---------------------------------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    with _catalog(args, create=True, encoder=args.encoder, extra=args.extra_encoder) as cat:
        report = cat.index_folder(args.dir, progress=progress)
        total = cat.count()
        hashed = None
        if args.hash:
            current = [e.spec for e in cat.encoders if e.spec.endswith(f"+{args.hash}:{args.bits}")]
            hashed = current[0] if current and not args.refit else cat.fit_hasher(args.hash, args.bits).spec
    if args.json:
        _print_json({**report.to_dict(), "items": total, "search": hashed})
        return 0
    print(f"{report.summary()}; {total} items in the catalogue" + (f"; searching {hashed}" if hashed else ""))
    for s in report.skipped:
        print(f"skipped {s.source}: {s.reason}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    meta = parse_pairs(args.meta, "--meta")
    if args.id is not None and len(args.files) != 1:
        raise InvalidParameterError("--id needs exactly one FILE")
    if args.check_duplicates or args.refuse:
        return _add_checked(args, meta)
    with _catalog(args, create=True) as cat:
        if len(args.files) == 1:
            items = [cat.add(args.files[0], id=args.id, metadata=meta)]
            skipped = []
        else:
            report = cat.add_many(args.files, metadata=meta)
            items, skipped = [cat.get(i) for i in report.added], report.skipped
    if args.json:
        _print_json({"added": [i.to_dict() for i in items],
                     "skipped": [{"source": s.source, "reason": s.reason} for s in skipped]})
    else:
        for item in items:
            print(f"added {item.id}")
        for s in skipped:
            print(f"skipped {s.source}: {s.reason}")
    return EXIT_ERROR if skipped else 0


def cmd_update(args: argparse.Namespace) -> int:
    meta = parse_pairs(args.meta, "--meta") if args.meta else None
    if args.image is None and meta is None:
        raise InvalidParameterError("nothing to update: give --image and/or --meta")
    with _catalog(args) as cat:
        _print_item(cat.update(args.id, image=args.image, metadata=meta), args.json)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        removed = cat.remove_many(args.ids)
    missing = [i for i in args.ids if i not in removed]
    if args.json:
        _print_json({"removed": removed, "not_found": missing})
    else:
        for i in removed:
            print(f"removed {i}")
        for i in missing:
            print(f"lookalike: error: no item with id {i!r}", file=sys.stderr)
    return EXIT_ERROR if missing else 0


def cmd_get(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        _print_item(cat.get(args.id), args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        items = cat.list(offset=args.offset, limit=args.limit, where=parse_pairs(args.where, "--where") or None)
    if args.json:
        _print_json([i.to_dict() for i in items])
    for item in [] if args.json else items:
        _print_item(item, False)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    box = Box.parse(args.box) if args.box else None
    with _catalog(args) as cat:
        results = cat.search(args.query, k=args.k, box=box, where=parse_pairs(args.where, "--where") or None,
                             encoder=args.encoder, rerank=args.rerank)
    _print_results(args.query, results, args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        results = cat.similar(args.query, k=args.k, where=parse_pairs(args.where, "--where") or None,
                              encoder=args.encoder, rerank=args.rerank)
    _print_results(args.query, results, args.json)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        info = cat.info()
    if args.json:
        _print_json(info)
        return 0
    print(f"catalogue  {info['path']}\nitems      {info['items']}\nsize       {info['bytes_on_disk']:,} bytes")
    for e in info["encoders"]:
        print(f"encoder    {e['spec']} ({e['kind']}, {e['dim']} {'dims' if e['kind'] == 'float' else 'bits'}, "
              f"{e['vectors']} vectors)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .datasets import export_dataset

    paths = export_dataset(args.dataset, args.out, split=args.split, limit=args.limit, seed=args.seed,
                           root=args.root)
    print(f"exported {len(paths)} images to {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation.protocol import run_protocol

    try:
        bits = [int(b) for b in args.bits.split(",")]
    except ValueError as err:
        raise InvalidParameterError(f"--bits: expected comma-separated integers. Got {args.bits!r}.") from err
    run_protocol(dataset=args.dataset, root=args.root, feature_names=args.features.split(","),
                 hashers=args.hashers.split(","), bits=bits, queries=args.queries, seed=args.seed,
                 out=lambda line: print(line, flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.dir, n=args.n, queries=args.queries)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .service import API_KEY_ENV, ServiceConfig, create_app

    path = getattr(args, "catalog", None) or os.environ.get("LOOKALIKE_CATALOG") or DEFAULT_PATH
    if not args.read_only and not os.environ.get(API_KEY_ENV):
        raise InvalidParameterError(f"set {API_KEY_ENV} to a secret (write requests must send it) or pass "
                                    f"--read-only to serve {path} without write endpoints")
    if not 0 < args.max_upload_mb <= 1024:
        raise InvalidParameterError(f"--max-upload-mb must be in (0, 1024]. Got {args.max_upload_mb}.")
    limits: dict[str, int] = {"max_upload_bytes": int(args.max_upload_mb * 2**20)}
    if getattr(args, "max_pixels", None):
        limits["max_pixels"] = args.max_pixels
    config = ServiceConfig.from_env(path, read_only=args.read_only, **limits)
    app = create_app(config)
    service = app.state.service
    host = f"[{args.host}]" if ":" in args.host else args.host
    mode = "read-only" if args.read_only else f"writes need ${API_KEY_ENV}"
    print(f"lookalike: serving {path} ({service.cat.count()} items, {service.cat.encoder.spec}; {mode})\n"
          f"  web page  http://{host}:{args.port}/\n  API docs  http://{host}:{args.port}/docs", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="none")
    return 0


def _add_checked(args: argparse.Namespace, meta: dict[str, Any]) -> int:
    """``add --check-duplicates / --refuse``: one image at a time, each checked against the catalogue."""
    from .errors import DuplicateImageError, ImageError

    added, refused, skipped = [], [], []
    with _catalog(args, create=True) as cat:
        for path in args.files:
            try:
                added.append(cat.add(path, id=args.id, metadata=meta, check_duplicates=args.check_duplicates,
                                     refuse=args.refuse))
            except DuplicateImageError as err:
                refused.append({"source": path, "reason": str(err), "duplicates": [m.to_dict() for m in err.matches]})
            except ImageError as err:
                skipped.append({"source": err.source, "reason": err.reason})
    if args.json:
        _print_json({"added": [i.to_dict() for i in added], "refused": refused, "skipped": skipped})
    else:
        for item in added:
            print(f"added {item.id}")
            for m in getattr(item, "duplicates", ()):
                print(f"  {m.verdict:<15} {m.id}  cosine {m.cosine:.4f}  evidence {m.evidence:.2f}")
        for r in refused:
            print(f"refused {r['source']}: {r['reason']}")
        for s in skipped:
            print(f"skipped {s['source']}: {s['reason']}")
    return EXIT_ERROR if refused or skipped else 0


def cmd_dedup(args: argparse.Namespace) -> int:
    with _catalog(args) as cat:
        if args.calibrate:
            cal = cat.calibrate_duplicates(target_precision=args.target_precision, sample=args.sample,
                                           seed=args.seed)
            by_edit = ", ".join(f"{k} {v:.2f}" for k, v in cal.recall_by_edit.items())
            print(f"calibrated on {cal.sample} edited copies: near-duplicate from evidence {cal.threshold:.2f}; "
                  f"expected precision {cal.precision:.3f}, recall {cal.recall:.3f} ({by_edit})", file=sys.stderr)
        report = cat.dedup(k=args.k)
    if args.format == "json":
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        text = report.to_csv()
    else:
        lines = [f"{len(report.groups)} duplicate groups among {report.items} items "
                 f"({report.pairs_checked} pairs checked in {report.seconds:.1f} s)"]
        for n, group in enumerate(report.groups, 1):
            lines.append(f"group {n}: keep {group.keeper}")
            lines += [f"  {'keep' if i.id == group.keeper else 'drop'}  {i.id}  {i.width}x{i.height}  {i.path or ''}"
                      for i in group.items]
        text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .bingan.config import BinGANConfig
    from .bingan.data import load_training_data

    for key in ("epochs", "checkpoint_every"):
        if getattr(args, key) < 1:
            raise InvalidParameterError(f"--{key.replace('_', '-')} must be at least 1. Got {getattr(args, key)}.")
    if args.eval_every < 0 or args.threads < 0 or (args.limit is not None and args.limit < 2):
        raise InvalidParameterError("--eval-every and --threads must be >= 0, --limit >= 2")
    bre = args.lambda_bre if args.lambda_bre is not None else (0.001 if args.arch == "retrieval" else 0.01)
    cfg = BinGANConfig(bits=args.bits, arch=args.arch, channels=args.channels, fit=args.fit, width=args.width,
                       batch_size=args.batch_size, lr=args.lr, lambda_dmr=args.lambda_dmr, lambda_bre=bre,
                       fm_layer=args.fm_layer, seed=args.seed)
    data = load_training_data(args.data, cfg)
    import torch

    from .bingan.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    trainer = train(cfg, data, args.epochs, args.out, device=args.device, resume=args.resume,
                    checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, eval_k=args.eval_k,
                    eval_ties=args.eval_ties, limit=args.limit, progress=progress,
                    log=lambda line: print(line, flush=True))
    print(f"wrote {args.out} ({trainer.cfg.bits} bits, {trainer.epoch} epochs); index with "
          f"`lookalike index DIR --encoder bingan:{args.out}`")
    return 0
