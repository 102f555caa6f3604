"""Indexes from a string a user can type: ``index_factory(dim, "ITQ64,Refine(Flat,300)")``.

Grammar (comma-separated stages, case-insensitive names):

====================================  ==========================================================================
``Flat``                              exact in-memory flat index (cosine, or Hamming for ``metric="hamming"``)
``IDMap2,Flat``                       faiss ``IndexIDMap2`` over a flat index (:mod:`.faiss_idmap`)
``<hasher><bits>``                    learned codes of float vectors (``ITQ64``, ``LSH128``, ``PCAH32`` ...):
                                      :class:`~.composed.HashedIndex`, trained by ``train(X)``
``PCA<dims>,Flat``                    a projected space (:class:`~.composed.ProjectedIndex`), trained by ``train``
``...,Refine`` / ``...,Refine(Flat,N)``  re-score the best ``N`` (default ``4 k``) candidates exactly
                                      (:class:`~.composed.RefineIndex` over a new flat index)
====================================  ==========================================================================

A new backend is one more entry: ``register_index("Milvus", builder)``, where ``builder(dim, metric, args)`` gets
the arguments of the first stage (``"Milvus(uri)"`` → ``["uri"]``) and returns a :class:`~.protocol.VectorIndex`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lookalike.errors import InvalidParameterError
from lookalike.index.composed import HashedIndex, ProjectedIndex, RefineIndex
from lookalike.index.faiss_idmap import FaissIDMapIndex
from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.protocol import Metric, VectorIndex
from lookalike.validation import Choice, check, short_repr

__all__ = ["available_indexes", "index_factory", "register_index"]

Builder = Callable[[int, Metric, list[str]], VectorIndex]
_BACKENDS: dict[str, Builder] = {}
_STAGE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*?)(\d*)(?:\((.*)\))?$")
GRAMMAR = ("'Flat', 'IDMap2,Flat', '<hasher><bits>[,Refine[(Flat,N)]]' (e.g. 'ITQ64,Refine(Flat,300)'), "
           "'PCA<dims>,Flat[,Refine[(Flat,N)]]', or a registered backend: ")


def register_index(name: str, builder: Builder) -> None:
    """Make ``index_factory(dim, "<name>...")`` build with ``builder(dim, metric, args)``."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or not callable(builder):
        raise InvalidParameterError(f"register_index needs a name (letters first) and a builder. Got {name!r}.")
    _BACKENDS[name.lower()] = builder


def available_indexes() -> list[str]:
    return ["Flat", "IDMap2,Flat", "<hasher><bits>,Refine(Flat,N)", "PCA<dims>,Flat,Refine", *sorted(_BACKENDS)]


def _bad(spec: object, why: str) -> InvalidParameterError:
    return InvalidParameterError(f"Bad index spec {short_repr(spec)}: {why}. Valid specs: {GRAMMAR}"
                                 f"{', '.join(sorted(_BACKENDS)) or 'none'}.")


def _split(spec: str) -> list[str]:
    """Stages separated by commas outside parentheses."""
    stages, depth, current = [], 0, ""
    for ch in spec:
        if ch == "," and depth == 0:
            stages.append(current.strip())
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise _bad(spec, "unbalanced parentheses")
        current += ch
    if depth:
        raise _bad(spec, "unbalanced parentheses")
    return [*stages, current.strip()]


def _refine(spec: str, stage: str, dim: int, inner: VectorIndex) -> RefineIndex:
    match = _STAGE.match(stage)
    if not match or match.group(1).lower() != "refine" or match.group(2):
        raise _bad(spec, f"expected 'Refine' or 'Refine(Flat,N)', not {stage!r}")
    depth = None
    if match.group(3) is not None:
        args = [a.strip() for a in match.group(3).split(",")]
        if len(args) != 2 or args[0].lower() != "flat" or not args[1].isdigit() or int(args[1]) < 1:
            raise _bad(spec, f"Refine takes (Flat,N) with N >= 1, not {stage!r}")
        depth = int(args[1])
    return RefineIndex(inner, FloatFlatIndex(dim), depth=depth)


def index_factory(dim: int, spec: str = "Flat", *, metric: Metric = "cosine") -> VectorIndex:
    """The index ``spec`` describes (see the module docstring) for vectors of ``dim`` dimensions (or bits)."""
    check("metric", metric, Choice(("cosine", "hamming")))
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 200:
        raise _bad(spec, "expected a non-empty string")
    stages = _split(spec)
    first = _STAGE.match(stages[0])
    if not first:
        raise _bad(spec, f"cannot read stage {stages[0]!r}")
    name, number, args = first.group(1).lower(), first.group(2), first.group(3)
    if name in _BACKENDS and len(stages) == 1:
        return _BACKENDS[name](dim, metric, [] if args is None else [a.strip() for a in args.split(",")])
    if name == "flat" and not number and args is None and len(stages) == 1:
        return FloatFlatIndex(dim) if metric == "cosine" else BinaryFlatIndex(dim)
    if name == "idmap" and number == "2" and [s.lower() for s in stages[1:]] == ["flat"]:
        return FaissIDMapIndex(dim, metric)
    if metric != "cosine":
        raise _bad(spec, "hashed and projected indexes take float vectors (metric 'cosine')")
    if name == "pca" and number and args is None and len(stages) >= 2 and stages[1].lower() == "flat":
        inner: VectorIndex = ProjectedIndex(int(number))
        rest = stages[2:]
    elif number and args is None and name in _hasher_names():
        from lookalike.hashing import get_hasher

        inner = HashedIndex(get_hasher(name, n_bits=int(number)))
        rest = stages[1:]
    else:
        raise _bad(spec, f"unknown stage {stages[0]!r}")
    if len(rest) > 1:
        raise _bad(spec, "at most one Refine stage may follow")
    return _refine(spec, rest[0], dim, inner) if rest else inner


def _hasher_names() -> set[str]:
    from lookalike.hashing import available_hashers

    return {n.lower() for n in available_hashers()}
