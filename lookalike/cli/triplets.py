"""Similarity judgements: ``judge REF --similar ID --dissimilar ID`` and ``triplets`` (list, or export as CSV)."""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from ..errors import InvalidParameterError
from ._common import Commands, open_catalog, option_int, print_json


def register(commands: Commands) -> None:
    p = commands.add("judge", cmd_judge, "mark items as similar or not similar to a reference item (the triplets "
                     "of `train triplet --from-catalog`)")
    p.add_argument("reference", metavar="REF", help="the reference item's id")
    p.add_argument("--similar", nargs="+", action="extend", default=[], metavar="ID", help="items similar to REF")
    p.add_argument("--dissimilar", nargs="+", action="extend", default=[], metavar="ID",
                   help="items not similar to REF")
    p.add_argument("--clear", nargs="+", action="extend", default=[], metavar="ID",
                   help="forget these items' judgements about REF")
    p.add_argument("--forget", action="store_true", help="forget every judgement about REF")

    p = commands.add("triplets", cmd_triplets, "the similarity judgements stored with the catalogue, or every "
                     "triplet they make as CSV")
    p.add_argument("--reference", metavar="ID", help="only the judgements about this item")
    p.add_argument("--csv", metavar="FILE", help="write every (query, positive, negative) triplet to FILE ('-': "
                   "stdout) as `train triplet --data FILE` reads it")
    p.add_argument("--paths", action="store_true", help="with --csv: the items' image paths instead of their ids")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=1000, help="judgements listed (default 1000)")


def cmd_judge(args: argparse.Namespace) -> int:
    with open_catalog(args) as cat:
        if args.forget:
            if args.similar or args.dissimilar or args.clear:
                raise InvalidParameterError("--forget forgets every judgement about REF: it takes no --similar, "
                                            "--dissimilar or --clear")
            n = cat.judgements.forget(args.reference)
            if args.json:
                print_json({"reference": args.reference, "forgotten": n})
            else:
                print(f"forgot {n} judgement{'s' * (n != 1)} about {args.reference}")
            return 0
        counts = cat.judgements.judge(args.reference, similar=args.similar, dissimilar=args.dissimilar,
                                      clear=args.clear)
    if args.json:
        print_json({"reference": args.reference, **counts})
    else:
        print(f"{args.reference}: {counts['judgements']} judgements, {counts['triplets']} triplets")
    return 0


def cmd_triplets(args: argparse.Namespace) -> int:
    option_int(args, "offset", 0, 2**62)
    option_int(args, "limit", 0, 2**62)
    with open_catalog(args) as cat:
        if args.csv:
            if args.reference:
                raise InvalidParameterError("--csv exports every triplet of the catalogue: it takes no --reference")
            text = io.StringIO()  # every row first: a failure leaves an existing FILE as it was
            n = cat.judgements.write_csv(text, paths=args.paths)
            if args.csv == "-":
                sys.stdout.write(text.getvalue())
            else:
                target = Path(args.csv)
                partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # as the model files' writers
                partial.write_text(text.getvalue(), encoding="utf-8")
                os.replace(partial, target)
            print(f"wrote {n} triplets to {'stdout' if args.csv == '-' else args.csv}", file=sys.stderr)
            return 0
        page = cat.judgements.list(args.reference, offset=args.offset, limit=args.limit)
        counts = cat.judgements.counts(args.reference)
    if args.json:
        print_json({"judgements": [j.to_dict() for j in page], "counts": counts})
        return 0
    for j in page:
        print(f"{j.reference}  {'similar    ' if j.similar else 'dissimilar '} {j.item}")
    print(f"{counts['judgements']} judgements about {counts['references']} reference items: {counts['triplets']} "
          "triplets", file=sys.stderr)
    return 0
