"""Search commands: ``search IMAGE`` and ``similar ID [ID ...] [--unlike ID ...]``."""

from __future__ import annotations

import argparse

from ..catalog.query import MAX_EXAMPLES, UNLIKE_WEIGHT, check_examples, check_k
from ..errors import InvalidParameterError
from ..images import Box
from ._common import Commands, open_catalog, print_json, print_results, where_filter
from .localise import CROP_HELP
from .partial import add_search_option, search_partial


def register(commands: Commands) -> None:
    for name, func, what in (("search", cmd_search, "IMAGE"), ("similar", cmd_similar, "ID")):
        p = commands.add(name, func, f"the items most similar to {'an image file' if what == 'IMAGE' else 'items'}")
        if name == "search":
            p.add_argument("query", metavar=what)
        else:
            p.add_argument("query", metavar=what, nargs="+", help="the item, or several: more like these")
            p.add_argument("--unlike", action="extend", nargs="+", default=[], metavar="ID",
                           help="less like these items (repeatable; after the liked ids). With several ids the "
                           f"query is the liked items' mean vector minus {UNLIKE_WEIGHT} x the unliked ones' mean "
                           f"(at most {MAX_EXAMPLES} ids in all); every example is left out of the results")
        p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
        p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="metadata filter")
        p.add_argument("--encoder", help="which of the catalogue's encoders to search")
        p.add_argument("--rerank", type=int, metavar="N",
                       help="with learned codes: take the N best candidates by the codes (the query's real-valued "
                       "projection against them) and order them by exact cosine on the float vectors (default: "
                       "the catalogue's setting search.rerank, else 80 when the codes have a sketch and 400 "
                       "without; 0: the codes' own order)")
        if name == "search":
            p.add_argument("--box", metavar="X,Y,W,H", help="search with this region of the image")
            p.add_argument("--crop", metavar="auto[,mask]|auto:MODEL[,mask]|none", help=CROP_HELP)
            add_search_option(p)


# k, rerank and the encoder are checked by the catalogue's query pipeline, before any image is decoded


def cmd_search(args: argparse.Namespace) -> int:
    box = Box.parse(args.box) if args.box else None
    where = where_filter(args)
    if args.fallback and not args.partial:
        raise InvalidParameterError("--fallback belongs to search --partial (the global search's results fill it up)")
    if args.partial:
        given = [f"--{name}" for name, value in (("where", where), ("encoder", args.encoder), ("rerank", args.rerank),
                                                 ("crop", args.crop)) if value]
        if given:
            raise InvalidParameterError(f"search --partial matches local descriptors; it takes no {', '.join(given)}")
        check_k(args.k)
        with open_catalog(args) as cat:
            return search_partial(cat, args, box)
    with open_catalog(args) as cat:
        if args.crop is None or box is not None:
            results = cat.search(args.query, k=args.k, box=box, where=where, encoder=args.encoder,
                                 rerank=args.rerank, crop=args.crop)
        else:  # the stages of Catalog.search, to show the box the query was cropped to
            pipe = cat.pipeline
            check_k(args.k)
            pipe.rerank_for(args.encoder, args.rerank)
            query = pipe.decode(args.query, crop=args.crop)
            results = pipe.retrieve(pipe.encode([query], encoder=args.encoder, rerank=args.rerank), k=args.k,
                                    where=where)[0]
            shown = "none (no object found: the whole image)" if query.box is None else str(query.box)
            if args.json:
                print_json({"query": args.query, "box": None if query.box is None else str(query.box),
                            "crop": query.crop, "results": [r.to_dict() for r in results]})
                return 0
            masked = ", its background masked" if query.box is not None and query.crop == "auto,mask" else ""
            print(f"cropped to {shown}{masked}")
    print_results(args.query, results, args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    where = where_filter(args)
    check_examples(args.query, args.unlike)  # before the catalogue is opened
    with open_catalog(args) as cat:
        results = cat.similar(args.query, unlike=args.unlike, k=args.k, where=where, encoder=args.encoder,
                              rerank=args.rerank)
    if len(args.query) == 1 and not args.unlike:
        print_results(args.query[0], results, args.json)
    elif args.json:
        print_json({"query": {"like": args.query, "unlike": args.unlike}, "results": [r.to_dict() for r in results]})
    else:
        print_results("", results, False)
    return 0
