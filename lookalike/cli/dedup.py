"""``dedup``: the duplicate groups of the catalogue, optionally after calibrating the near-duplicate threshold."""

from __future__ import annotations

import argparse
import json
import sys

from ..validation import check_int
from ._common import Commands, open_catalog, option_int

MAX_K = 1000  # the duplicate graph's bound on neighbours per item (lookalike.dedup.graph)


def register(commands: Commands) -> None:
    p = commands.add("dedup", cmd_dedup, "duplicate groups of the catalogue (double listings), with a keeper each",
                     with_results=False)
    p.add_argument("--calibrate", action="store_true",
                   help="first fit the near-duplicate threshold on edited copies of the catalogue's own items")
    p.add_argument("--target-precision", type=float, default=0.99, help="for --calibrate (default 0.99)")
    p.add_argument("--sample", type=int, default=200, help="items edited by --calibrate (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of --calibrate (default 0)")
    p.add_argument("-k", type=int, default=10, help="neighbours checked per item (default 10)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text")
    p.add_argument("--out", metavar="FILE", help="write the groups here instead of stdout")


def cmd_dedup(args: argparse.Namespace) -> int:
    # -k and --seed before a calibration is written (target precision and sample: by the calibration itself)
    check_int("k", args.k, 1, MAX_K)
    option_int(args, "seed", 0)
    with open_catalog(args) as cat:
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
