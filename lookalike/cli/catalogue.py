"""Catalogue commands: ``index``, ``add``, ``update``, ``remove``, ``get``, ``list``, ``info``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalog import DEFAULT_ENCODER, Catalog, DuplicateMatch, Item
from ..catalog.crop import CROP_FEATURE
from ..errors import DuplicateImageError, ImageError, InvalidParameterError
from ..validation import Integer, check
from ._common import EXIT_ERROR, Commands, open_catalog, parse_pairs, print_item, print_json, where_filter
from .localise import index_crop
from .partial import add_index_option, index_partial


def register(commands: Commands) -> None:
    p = commands.add("index", cmd_index, "index every image under DIR (incremental)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--encoder", help=f"encoder of a new catalogue (default {DEFAULT_ENCODER})")
    p.add_argument("--extra-encoder", action="append", default=[], metavar="SPEC",
                   help="keep vectors of this encoder too (new catalogue only; repeatable)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.add_argument("--hash", metavar="NAME[:KEY=VALUE,...]", help="learn binary codes on the catalogue's vectors "
                   "and search by them (lsh, pcah, itq, sh, sph, kmh, bingan-head, adapt, adapt-spectral), with the "
                   "hasher's options if given, e.g. adapt-spectral:min_dim=32")
    p.add_argument("--bits", type=int, default=64, help="code length for --hash (multiple of 8, default 64)")
    p.add_argument("--refit", action="store_true", help="fit the --hash hasher again on all items")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="decode and encode on Ray actors: a local Ray (no ADDRESS), or a cluster (ray://host:10001, "
                   "host:6379); results are committed here chunk by chunk, and a rerun resumes")
    p.add_argument("--ray-workers", type=int, metavar="N", help="Ray actors (default: one per CPU of the cluster)")
    p.add_argument("--crop", metavar="auto:MODEL[,mask]|none", help="crop every image to the product's box "
                   "predicted by this localiser before encoding (kept as the setting crop.model, used by `search "
                   "--crop auto`); ,mask: also remove the background inside the box (GrabCut; setting crop.mask, "
                   "searched with `--crop auto,mask`)")
    add_index_option(p)
    p.add_argument("--codes-at", metavar="N|off",
                   help="learn 64-bit codes by itself once the catalogue holds N items (stored as the setting "
                   "search.codes_at; default 100000; off: never)")

    p = commands.add("add", cmd_add, "add image files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--id", help="id of the item (one FILE only)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE|JSON", help="metadata (repeatable)")
    p.add_argument("--check-duplicates", action=argparse.BooleanOptionalAction, default=None,
                   help="show the exact / near-duplicate / similar items of each image (needs 'dedup --calibrate'); "
                   "--no-check-duplicates skips the check; default: exact and near duplicates when the catalogue "
                   "is calibrated, exact copies otherwise")
    p.add_argument("--refuse", choices=["exact", "near"],
                   help="do not add images that are exact (or exact and near) duplicates of catalogue items")

    p = commands.add("update", cmd_update, "replace an item's image and/or metadata")
    p.add_argument("id", metavar="ID")
    p.add_argument("--image", metavar="FILE")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE|JSON")

    p = commands.add("remove", cmd_remove, "remove items by id")
    p.add_argument("ids", nargs="+", metavar="ID")

    p = commands.add("get", cmd_get, "show one item")
    p.add_argument("id", metavar="ID")

    p = commands.add("list", cmd_list, "list items")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")

    commands.add("info", cmd_info, "counts, encoders and sizes of the catalogue")


def cmd_index(args: argparse.Namespace) -> int:
    if args.hash:
        from ..hashing import parse_hasher

        # a bad name, option or code length fails before anything is indexed (the hasher checks its bits when
        # fitting)
        check("--bits", args.bits, Integer(1, multiple_of=8))
        parse_hasher(args.hash)
    codes_at = None if args.codes_at is None else args.codes_at.strip().lower()
    if codes_at == "never":
        codes_at = "off"
    if codes_at is not None and codes_at != "off" and (not codes_at.isdigit() or int(codes_at) < 2):
        raise InvalidParameterError(f"--codes-at takes an item count >= 2 or 'off'. Got {args.codes_at!r}.")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    with open_catalog(args, create=True, encoder=args.encoder, extra=args.extra_encoder) as cat:
        if codes_at is not None:
            cat.put_setting("search.codes_at", codes_at)
        index_crop(cat, args.crop)
        before = cat.encoder.spec
        report = cat.index_folder(args.dir, progress=progress, ray=args.ray, ray_workers=args.ray_workers)
        total = cat.count()
        hashed = cat.encoder.spec if cat.encoder.spec != before else None  # learned by itself past codes_at
        if args.hash:
            found = None if args.refit else cat.find_hashed(args.hash, args.bits)
            hashed = (found or cat.fit_hasher(args.hash, args.bits)).spec
        partial = index_partial(cat, args)
    if args.json:
        print_json({**report.to_dict(), "items": total, "search": hashed, "partial": partial})
        return 0
    print(f"{report.summary()}; {total} items in the catalogue" + (f"; searching {hashed}" if hashed else ""))
    if partial:
        print(partial)
    for s in report.skipped:
        print(f"skipped {s.source}: {s.reason}")
    return 0


# -- add --------------------------------------------------------------------------------------------------------


@dataclass
class _Added:
    """What ``add`` did: the items with the duplicate verdicts to show, refused and skipped sources."""

    items: list[tuple[Item, Sequence[DuplicateMatch]]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, source: str, matches: Sequence[DuplicateMatch]) -> None:
        self.refused.append({"source": source, "reason": matches[0].describe(),
                             "duplicates": [m.to_dict() for m in matches]})


def cmd_add(args: argparse.Namespace) -> int:
    meta = parse_pairs(args.meta, "--meta")
    if args.id is not None and len(args.files) != 1:
        raise InvalidParameterError(f"--id needs exactly one FILE. Got {len(args.files)} files.")
    with open_catalog(args, create=True) as cat:
        done = _add(cat, args, meta)
    # the automatic check reports copies only; an explicit --check-duplicates shows similar items too
    shown = [(item, [m for m in matches if args.check_duplicates or m.is_duplicate]) for item, matches in done.items]
    if args.json:
        print_json({"added": [{**item.to_dict(), "duplicates": [m.to_dict() for m in matches]}
                              for item, matches in shown],
                    "refused": done.refused, "skipped": done.skipped})
    else:
        for item, matches in shown:
            print(f"added {item.id}")
            for m in matches:
                print(f"  {m.verdict:<15} {m.id}  cosine {m.cosine:.4f}  evidence {m.evidence:.2f}")
        for r in done.refused:
            print(f"refused {r['source']}: {r['reason']}")
        for s in done.skipped:
            print(f"skipped {s['source']}: {s['reason']}")
    return EXIT_ERROR if done.refused or done.skipped else 0


def _add(cat: Catalog, args: argparse.Namespace, meta: dict[str, Any]) -> _Added:
    """One file (a bad image is the command's error) or an explicit full check: image by image with
    :meth:`Catalog.add`, which returns every verdict; otherwise one batch, :meth:`Catalog.add_many`."""
    done = _Added()
    check, refuse = args.check_duplicates, args.refuse
    if len(args.files) == 1 or check is True:
        for path in args.files:
            try:
                item = cat.add(path, id=args.id, metadata=meta, check_duplicates=check, refuse=refuse)
            except DuplicateImageError as err:
                done.refuse(path, err.matches)
            except ImageError as err:
                if len(args.files) == 1:
                    raise
                done.skipped.append({"source": err.source, "reason": err.reason})
            else:
                done.items.append((item, getattr(item, "duplicates", ())))
        return done
    report = cat.add_many(args.files, metadata=meta, check_duplicates=check, refuse=refuse)
    done.items = [(cat.get(i), report.duplicates.get(i, [])) for i in report.added]
    for r in report.refused:
        done.refuse(r.source, r.duplicates)
    done.skipped = [{"source": s.source, "reason": s.reason} for s in report.skipped]
    return done


# -- the other item commands ------------------------------------------------------------------------------------


def cmd_update(args: argparse.Namespace) -> int:
    meta = parse_pairs(args.meta, "--meta") if args.meta else None
    if args.image is None and meta is None:
        raise InvalidParameterError("nothing to update: give --image and/or --meta")
    with open_catalog(args) as cat:
        print_item(cat.update(args.id, image=args.image, metadata=meta), args.json)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_catalog(args) as cat:
        removed = cat.remove_many(args.ids)
    missing = [i for i in args.ids if i not in removed]
    if args.json:
        print_json({"removed": removed, "not_found": missing})
    else:
        for i in removed:
            print(f"removed {i}")
        for i in missing:
            print(f"lookalike: error: no item with id {i!r}", file=sys.stderr)
    return EXIT_ERROR if missing else 0


def cmd_get(args: argparse.Namespace) -> int:
    with open_catalog(args) as cat:
        item = cat.get(args.id)
        cropped = cat.features(CROP_FEATURE, [item.key]).get(item.key)  # the box --crop auto encoded, if any
    if args.json and cropped is not None:
        print_json({**item.to_dict(), "crop_box": cropped.decode() or None})
        return 0
    print_item(item, args.json)
    if cropped is not None:
        print(f"cropped to {cropped.decode() or 'none (no object found: the whole image)'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_catalog(args) as cat:  # offset and limit are checked by Catalog.list
        items = cat.list(offset=args.offset, limit=args.limit, where=where_filter(args))
    if args.json:
        print_json([i.to_dict() for i in items])
        return 0
    for item in items:
        print_item(item, False)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with open_catalog(args) as cat:
        info = cat.info()
    if args.json:
        print_json(info)
        return 0
    print(f"catalogue  {info['path']}\nitems      {info['items']}\nsize       {info['bytes_on_disk']:,} bytes")
    for e in info["encoders"]:
        print(f"encoder    {e['spec']} ({e['kind']}, {e['dim']} {'dims' if e['kind'] == 'float' else 'bits'}, "
              f"{e['vectors']} vectors)")
    return 0
