"""What every command group shares: the parser helper, opening the catalogue, ``KEY=VALUE`` pairs, printing.

Arguments are checked with :mod:`lookalike.validation` (one message style, named after the option: ``The '--limit'
parameter must be an integer in [0, 4611686018427387904]. Got -1 instead.``) or left to the library; never with
ad-hoc wordings here.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import DEFAULT_PATH, Catalog, Item, SearchResult
from ..errors import InvalidParameterError
from ..images import ImageLimits
from ..validation import check_int, check_real, short_repr

EXIT_ERROR = 1

Command = Callable[[argparse.Namespace], "int | None"]


@dataclass
class Commands:
    """The ``COMMAND`` subparsers with the option groups every command shares; each group module calls
    :meth:`add` for its commands."""

    add_parser: Callable[..., argparse.ArgumentParser]  # the ``add_parser`` of ``add_subparsers()``
    common: argparse.ArgumentParser
    results: argparse.ArgumentParser

    def add(self, name: str, func: Command, help: str, *,  # noqa: A002
            with_results: bool = True) -> argparse.ArgumentParser:
        parents = [self.common, self.results] if with_results else [self.common]
        p = self.add_parser(name, help=help, description=help, parents=parents)
        p.set_defaults(func=func)
        return p


def common_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """(options of every command, ``--json`` of the commands that print results)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", metavar="PATH", default=argparse.SUPPRESS,
                        help=f"catalogue directory (default: $LOOKALIKE_CATALOG or {DEFAULT_PATH})")
    common.add_argument("--backend", metavar="URI|local", default=argparse.SUPPRESS,
                        help="index backend, kept as the catalogue's setting: milvus:///path.db (Milvus Lite), "
                        "milvus://host:19530 (a Milvus server), local (the in-memory indexes); default: as kept")
    common.add_argument("--max-pixels", type=int, default=argparse.SUPPRESS,
                        help="refuse images with more pixels than this (decompression-bomb guard)")
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return common, results


# -- the catalogue ----------------------------------------------------------------------------------------------


def catalog_path(args: argparse.Namespace) -> str:
    return getattr(args, "catalog", None) or os.environ.get("LOOKALIKE_CATALOG") or DEFAULT_PATH


def image_limits(args: argparse.Namespace) -> ImageLimits:
    """``--max-pixels`` (checked by :class:`ImageLimits`) or the default limits."""
    max_pixels = getattr(args, "max_pixels", None)
    return ImageLimits() if max_pixels is None else ImageLimits(max_pixels=max_pixels)


def open_catalog(args: argparse.Namespace, *, create: bool = False, encoder: str | None = None,
                 extra: Sequence[str] = ()) -> Catalog:
    limits = image_limits(args)  # before anything is created
    return Catalog(catalog_path(args), encoder, extra_encoders=extra, create=create, limits=limits,
                   backend=getattr(args, "backend", None))


# -- arguments --------------------------------------------------------------------------------------------------


def option_int(args: argparse.Namespace, dest: str, low: int, high: int | None = None) -> None:
    """Check the integer option ``dest`` (skipped when not given), named as typed: ``--eval-every``."""
    value = getattr(args, dest)
    if value is not None:
        check_int(option_name(dest), value, low, high)


def option_real(args: argparse.Namespace, dest: str, low: float, high: float | None = None) -> None:
    value = getattr(args, dest)
    if value is not None:
        check_real(option_name(dest), value, low, high)


def option_name(dest: str) -> str:
    return dest if dest == "k" else "--" + dest.replace("_", "-")


def parse_pairs(values: Sequence[str], what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` or ``['{"a": 1}']`` → a dict; values that parse as JSON are typed (1 → int)."""
    out: dict[str, Any] = {}
    for text in values:
        if text.lstrip().startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise InvalidParameterError(f"{what}: invalid JSON {short_repr(text)}: {err.msg}") from err
            if not isinstance(obj, dict):
                raise InvalidParameterError(f"{what}: expected a JSON object. Got {short_repr(text)}.")
            out.update(obj)
            continue
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise InvalidParameterError(f"{what}: expected KEY=VALUE or a JSON object. Got {short_repr(text)}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def where_filter(args: argparse.Namespace) -> dict[str, Any] | None:
    return parse_pairs(args.where, "--where") or None


# -- output -----------------------------------------------------------------------------------------------------


def print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def print_results(query: str, results: list[SearchResult], as_json: bool) -> None:
    if as_json:
        print_json({"query": query, "results": [r.to_dict() for r in results]})
        return
    if not results:
        print("no results")
    for rank, r in enumerate(results, 1):
        meta = f"  {json.dumps(r.metadata, ensure_ascii=False)}" if r.metadata else ""
        print(f"{rank:>3}  {r.score:7.4f}  {r.id}  {r.path or ''}{meta}")


def print_item(item: Item, as_json: bool) -> None:
    if as_json:
        print_json(item.to_dict())
    else:
        meta = json.dumps(item.metadata, ensure_ascii=False)
        print(f"{item.id}  {item.width}x{item.height}  {item.sha256[:12]}  {item.path or ''}  {meta}")
