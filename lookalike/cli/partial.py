"""Partial-image search on the command line: ``index DIR --partial[=SPEC]`` and ``search IMAGE --partial``.

The ``index`` and ``search`` commands call the two hooks here, so their own modules stay as they are apart from
one option and one call each.
"""

from __future__ import annotations

import argparse

from ..catalog import Catalog
from ..images import Box
from ..partial import PartialSearch
from ..partial.retriever import DEFAULT_SPEC
from ._common import print_json

INDEX_HELP = (f"describe every image by keypoints and binary local descriptors for 'search --partial' (SPEC: "
              f"orb, beblid or teblid and the keypoints per image, default {DEFAULT_SPEC}); kept as the catalogue's "
              f"setting partial.descriptors: images added later are described by the next 'search --partial' or "
              f"'index --partial'; on an existing catalogue it describes the images indexed before")
SEARCH_HELP = ("find catalogue images that contain the query or part of it (the catalogue must be indexed with "
               "--partial); prints the matched box in the catalogue image and in the query")


def add_index_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--partial", nargs="?", const=DEFAULT_SPEC, metavar="SPEC", help=INDEX_HELP)


FALLBACK_HELP = ("with --partial: fill the results up to -k with the global search's (marked 'global', no box), so a "
                 "query that nothing verifies still gets the global ranking")


def add_search_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--partial", action="store_true", help=SEARCH_HELP)
    p.add_argument("--fallback", action="store_true", help=FALLBACK_HELP)


def index_partial(cat: Catalog, args: argparse.Namespace) -> str | None:
    """After ``index``: describe the catalogue's images when ``--partial`` was given; returns a summary line."""
    spec = getattr(args, "partial", None)
    if not spec:
        return None
    report = PartialSearch.enable(cat, spec)
    line = f"partial search: described {len(report.described)} images"
    if report.unavailable:
        line += f", {len(report.unavailable)} could not be described"
    return line


def search_partial(cat: Catalog, args: argparse.Namespace, box: Box | None) -> int:
    """``search IMAGE --partial``: verified matches with their boxes (``--where``/``--encoder``/``--rerank`` do not
    apply and are refused by the caller)."""
    answer = PartialSearch(cat).search(args.query, k=args.k, box=box, fallback=args.fallback)
    if args.json:
        print_json({"query": args.query, "partial": True, "reason": answer.reason,
                    "query_keypoints": answer.query_keypoints, "results": [m.to_dict() for m in answer.results],
                    **({"fallback": [h.to_dict() for h in answer.fallback]} if args.fallback else {})})
        return 0
    if not answer.results:
        print(f"no verified results: {answer.reason}")
    for rank, m in enumerate(answer.results, 1):
        how = f"{m.inliers:>5} inliers" if m.method == "keypoints" else "dense        "
        print(f"{rank:>3}  {m.score:7.4f}  {how}  {m.id}  box {m.box}  query box {m.query_box}  {m.path or ''}")
    for rank, h in enumerate(answer.fallback, len(answer.results) + 1):
        print(f"{rank:>3}  {h.score:7.4f}  global        {h.id}  {h.path or ''}")
    return 0
