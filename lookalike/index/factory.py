"""Indexes from a string a user can type: ``index_factory(dim, "ITQ64,Refine(Flat,300)")``.

Grammar (comma-separated stages, case-insensitive names):

====================================  ==========================================================================
``Flat``                              exact in-memory flat index (cosine, or Hamming for ``metric="hamming"``)
``IDMap2,Flat``                       faiss ``IndexIDMap2`` over a flat index (:mod:`.faiss_idmap`)
``MIH`` / ``MIH(m)``                   exact Hamming search by multi-index hashing over ``m`` substring tables
                                      (default: the paper's ``round(bits / log2 n)``), ``metric="hamming"``
                                      (:class:`~.mih.MultiIndexHashIndex`; option ``mode``)
``<hasher><bits>``                    learned codes of float vectors (``ITQ64``, ``LSH128``, ``PCAH32`` ...; the
                                      names of :func:`lookalike.hashing.available_hashers`):
                                      :class:`~.composed.HashedIndex`, trained by ``train(X)``
``PCA<dims>,Flat``                    a projected space (:class:`~.composed.ProjectedIndex`), trained by ``train``
``...,Refine`` / ``...,Refine(Flat,N)``  re-score the best ``N`` (default ``k_factor * k``) candidates exactly
                                      (:class:`~.composed.RefineIndex` over a new flat index)
====================================  ==========================================================================

Options (keywords of :func:`index_factory`) go to the stages that take them: ``backend`` to the flat indexes and
MIH (``"auto"``, ``"compiled"``, ``"numpy"``, ``"faiss"``), ``mode`` to ``MIH``, ``k_factor`` to ``Refine``,
``seed`` and ``sample`` to ``PCA``, anything else to the hasher (``random_state=0``, ...). An option no stage
takes is an error.

A new backend is one more entry: ``register_index("Milvus", builder)``, where ``builder(dim, metric, args,
**options)`` gets the arguments of the first stage (``"Milvus(uri)"`` → ``["uri"]``) and returns a
:class:`~.protocol.VectorIndex`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lookalike.errors import InvalidParameterError
from lookalike.index.composed import HashedIndex, ProjectedIndex, RefineIndex
from lookalike.index.faiss_idmap import FaissIDMapIndex
from lookalike.index.flat import BinaryFlatIndex, FloatFlatIndex
from lookalike.index.mih import MultiIndexHashIndex
from lookalike.index.protocol import Metric, VectorIndex
from lookalike.validation import Choice, check, check_int, short_repr

__all__ = ["GRAMMAR", "available_indexes", "index_factory", "register_index"]

Builder = Callable[..., VectorIndex]
_BACKENDS: dict[str, Builder] = {}
_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_STAGE = re.compile(rf"^({_NAME}?)(\d*)(?:\((.*)\))?$")
GRAMMAR = ("'Flat', 'IDMap2,Flat', 'MIH[(m)]' (metric 'hamming'), "
           "'<hasher><bits>[,Refine[(Flat,N)]]' (e.g. 'ITQ64,Refine(Flat,300)'), "
           "'PCA<dims>,Flat[,Refine[(Flat,N)]]', or a registered backend: ")


def register_index(name: str, builder: Builder) -> None:
    """Make ``index_factory(dim, "<name>[(args)]")`` build with ``builder(dim, metric, args, **options)``.

    ``name`` (letters first, then letters, digits, ``_`` or ``-``; matched case-insensitively) may replace an
    earlier registration, not a built-in stage.
    """
    if not isinstance(name, str) or not re.fullmatch(_NAME, name) or not callable(builder):
        raise InvalidParameterError(f"register_index needs a name (letters first) and a callable builder. Got "
                                    f"{short_repr(name)} and {type(builder).__name__}.")
    if name.lower() in {"flat", "idmap", "idmap2", "mih", "pca", "refine"}:
        raise InvalidParameterError(f"register_index: {name!r} is a built-in stage of the index grammar")
    _BACKENDS[name.lower()] = builder


def available_indexes() -> list[str]:
    """The spec forms :func:`index_factory` reads, then the registered backends' names."""
    return ["Flat", "IDMap2,Flat", "<hasher><bits>", "<hasher><bits>,Refine(Flat,N)", "PCA<dims>,Flat,Refine",
            *sorted(_BACKENDS)]


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


def _refine(spec: str, stage: str, dim: int, inner: VectorIndex, options: dict[str, Any]) -> RefineIndex:
    match = _STAGE.match(stage)
    if not match or match.group(1).lower() != "refine" or match.group(2):
        raise _bad(spec, f"expected 'Refine' or 'Refine(Flat,N)', not {stage!r}")
    depth = None
    if match.group(3) is not None:
        args = [a.strip() for a in match.group(3).split(",")]
        if len(args) != 2 or args[0].lower() != "flat" or not args[1].isdigit() or int(args[1]) < 1:
            raise _bad(spec, f"Refine takes (Flat,N) with N >= 1, not {stage!r}")
        depth = int(args[1])
    flat = FloatFlatIndex(dim, backend=options.pop("backend", "auto"))
    return RefineIndex(inner, flat, depth=depth, k_factor=options.pop("k_factor", 4))


def index_factory(dim: int, spec: str = "Flat", *, metric: Metric = "cosine", **options: Any) -> VectorIndex:
    """The index ``spec`` describes (see the module docstring) for vectors of ``dim`` dimensions (or bits).

    Raises:
        InvalidParameterError: a bad ``dim`` or ``metric``, a spec outside the grammar (the message shows it), an
            option no stage takes, or a stage's own parameter check.
    """
    check("metric", metric, Choice(("cosine", "hamming")), owner="index_factory")
    dim = check_int("dim", dim, 1, owner="index_factory")
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 200:
        raise _bad(spec, "expected a non-empty string of at most 200 characters")
    stages = _split(spec)
    first = _STAGE.match(stages[0])
    if not first:
        raise _bad(spec, f"cannot read stage {stages[0]!r}")
    name, number, args = first.group(1).lower(), first.group(2), first.group(3)
    if f"{name}{number}" in _BACKENDS and len(stages) == 1:  # a registered name may end in digits
        name, number = f"{name}{number}", ""
    if name in _BACKENDS and not number and len(stages) == 1:
        return _BACKENDS[name](dim, metric, [] if args is None else [a.strip() for a in args.split(",")], **options)
    opts = dict(options)
    index = _build(spec, stages, dim, metric, name, number, args, opts)
    if opts:
        raise InvalidParameterError(f"index_factory: {spec!r} takes no option {', '.join(map(repr, sorted(opts)))} "
                                    "(backend: flat stages; mode: MIH; k_factor: Refine; seed, sample: PCA; "
                                    "others: a hasher)")
    return index


def _build(spec: str, stages: list[str], dim: int, metric: Metric, name: str, number: str, args: str | None,
           opts: dict[str, Any]) -> VectorIndex:
    """The index of a spec without a registered backend; pops the options it uses from ``opts``."""
    if name == "flat" and not number and args is None and len(stages) == 1:
        backend = opts.pop("backend", "auto")
        return FloatFlatIndex(dim, backend=backend) if metric == "cosine" else BinaryFlatIndex(dim, backend=backend)
    if name == "idmap" and number == "2" and args is None and [s.lower() for s in stages[1:]] == ["flat"]:
        return FaissIDMapIndex(dim, metric)
    if name == "mih" and not number and len(stages) == 1:
        if metric != "hamming":
            raise _bad(spec, "MIH searches binary codes: use metric='hamming'")
        if args is not None and not args.strip().isdigit():
            raise _bad(spec, f"MIH(m) takes a whole number of substrings, not {args!r}")
        return MultiIndexHashIndex(dim, substrings=int(args) if args is not None else None,
                                   mode=opts.pop("mode", "auto"), backend=opts.pop("backend", "auto"))
    if metric != "cosine":
        raise _bad(spec, "hashed and projected indexes take float vectors (metric 'cosine')")
    inner: VectorIndex
    if name == "pca" and number and args is None and len(stages) >= 2 and stages[1].lower() == "flat":
        dims = int(number)
        if not 1 <= dims <= dim:
            raise _bad(spec, f"PCA<dims> keeps 1 to {dim} of the {dim} dimensions, not {dims}")
        inner = ProjectedIndex(dims, opts.pop("seed", 0), sample=opts.pop("sample", 8192), dim=dim)
        rest = stages[2:]
    elif number and args is None and name in _hasher_names():
        from lookalike.hashing import get_hasher

        if int(number) < 8 or int(number) % 8:
            raise _bad(spec, f"<hasher><bits> takes a positive multiple of 8 bits, not {number}")
        hasher_options = {k: opts.pop(k) for k in list(opts) if k not in ("backend", "k_factor")}
        inner = HashedIndex(get_hasher(_hasher_names()[name], n_bits=int(number), **hasher_options), dim=dim)
        rest = stages[1:]
    else:
        raise _bad(spec, f"unknown stage {stages[0]!r}")
    if len(rest) > 1:
        raise _bad(spec, "at most one Refine stage may follow")
    return _refine(spec, rest[0], dim, inner, opts) if rest else inner


def _hasher_names() -> dict[str, str]:
    """Lower-case name -> the registry's name of every hasher."""
    from lookalike.hashing import available_hashers

    return {n.lower(): n for n in available_hashers()}
