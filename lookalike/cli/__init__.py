"""The ``lookalike`` command line: each subcommand is a thin call into the library.

One module per command group registers its subcommands: :mod:`.catalogue` (index, add, update, remove, get, list,
info), :mod:`.search` (search, similar), :mod:`.triplets` (judge, triplets), :mod:`.dedup`, :mod:`.serve` and
:mod:`.data` (export, eval, demo, train); :mod:`._common` holds what they share (opening the catalogue,
``KEY=VALUE`` pairs, printing).

Errors a user can cause print one line (``lookalike: error: …``) and exit with status 1; usage errors exit with 2.
A closed stdout (``lookalike list | head -1``) ends the command quietly with status 0. Set ``LOOKALIKE_DEBUG=1`` to
see a traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import LookalikeError
from . import catalogue, data, dedup, search, serve, triplets
from ._common import EXIT_ERROR, Commands, common_options, parse_pairs

__all__ = ["EXIT_ERROR", "build_parser", "main", "parse_pairs"]

GROUPS = (catalogue, search, triplets, dedup, serve, data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except (LookalikeError, OSError, sqlite3.Error) as err:
        if os.environ.get("LOOKALIKE_DEBUG"):
            raise
        print(f"lookalike: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("lookalike: interrupted (everything committed before this point is kept)", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    common, results = common_options()
    parser = argparse.ArgumentParser(prog="lookalike", parents=[common],
                                     description="Visual similarity search for image catalogues.")
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(sub.add_parser, common, results)
    for group in GROUPS:
        group.register(commands)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at interpreter exit does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured by a test, say)
        pass
