"""index_factory's grammar, options and registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lookalike.index.factory as factory
from lookalike.errors import InvalidParameterError
from lookalike.index import (
    BinaryFlatIndex,
    FaissIDMapIndex,
    FloatFlatIndex,
    HashedIndex,
    ProjectedIndex,
    RefineIndex,
    VectorIndex,
    available_indexes,
    index_factory,
    register_index,
)


@pytest.mark.parametrize(("spec", "metric", "kind"), [
    ("Flat", "cosine", FloatFlatIndex), ("flat", "hamming", BinaryFlatIndex), (" Flat ", "cosine", FloatFlatIndex),
    ("IDMap2,Flat", "cosine", FaissIDMapIndex), ("idmap2, flat", "hamming", FaissIDMapIndex),
    ("ITQ16", "cosine", HashedIndex), ("lsh32", "cosine", HashedIndex), ("PCAH8", "cosine", HashedIndex),
    ("PCA8,Flat", "cosine", ProjectedIndex), ("ITQ16,Refine", "cosine", RefineIndex),
    ("PCA8,Flat,Refine(Flat,50)", "cosine", RefineIndex),
])
def test_good_specs_build_the_right_types(spec: str, metric: str, kind: type) -> None:
    index = index_factory(64, spec, metric=metric)  # type: ignore[arg-type]
    assert type(index) is kind and index.metric == metric and index.dim == 64


def test_the_stages_get_their_numbers() -> None:
    refine = index_factory(16, "itq16,refine(flat,30)")
    assert isinstance(refine, RefineIndex) and refine.depth == 30 and refine.k_factor == 4
    assert isinstance(refine.candidates, HashedIndex) and refine.candidates.hasher.name == "itq"
    assert refine.candidates.hasher.n_bits == 16 and isinstance(refine.refine, FloatFlatIndex)
    assert refine.refine.dim == 16 and len(refine) == 0
    projected = index_factory(32, "PCA8,Flat,Refine")
    assert isinstance(projected, RefineIndex) and projected.depth is None
    assert isinstance(projected.candidates, ProjectedIndex) and projected.candidates.dims == 8
    assert index_factory(64, "Flat", metric="hamming").dim == 64


def test_options_go_to_the_stages_that_take_them() -> None:
    flat = index_factory(8, "Flat", backend="numpy")
    assert isinstance(flat, FloatFlatIndex) and flat._backend == "numpy"
    hashed = index_factory(48, "ITQ32,Refine(Flat,10)", random_state=3, n_iter=5, k_factor=2, backend="faiss")
    assert isinstance(hashed, RefineIndex) and hashed.k_factor == 2
    assert isinstance(hashed.candidates, HashedIndex)
    assert hashed.candidates.hasher.get_params() == {"n_bits": 32, "n_iter": 5, "random_state": 3}
    projected = index_factory(48, "PCA4,Flat", seed=5, sample=100)
    assert isinstance(projected, ProjectedIndex) and (projected.seed, projected.sample) == (5, 100)
    cases: list[tuple[str, dict[str, Any]]] = [("Flat", {"k_factor": 2}), ("IDMap2,Flat", {"backend": "numpy"}),
             ("PCA4,Flat", {"random_state": 0}), ("ITQ32", {"k_factor": 2})]
    for spec, options in cases:
        with pytest.raises(InvalidParameterError, match="takes no option"):
            index_factory(48, spec, **options)
    with pytest.raises(InvalidParameterError, match="Invalid parameter 'depth' for ITQ"):
        index_factory(48, "ITQ32", depth=3)  # the hasher's own check names its parameters
    with pytest.raises(InvalidParameterError, match="'backend' parameter of FloatFlatIndex"):
        index_factory(8, "Flat", backend="cuda")


@pytest.mark.parametrize("spec", ["", "  ", "Flatt", "Flat,Refine(", "Flat)", "ITQ,Refine", "ITQ64,Refine(Flat,0)",
                                  "ITQ64,Refine(Flat,x)", "ITQ64,Refine(Flat)", "PCA8", "PCA8,Flat,Refine,Refine",
                                  "PCA0,Flat", "PCA65,Flat", "x" * 500, "Flat(1)", "ITQ64,Refine(HNSW,10)",
                                  "IDMap2", "IDMap3,Flat", "Refine", "HNSW32", "ITQ64(2)", "Flat,Flat"])
def test_bad_specs_say_what_the_grammar_is(spec: str) -> None:
    with pytest.raises(InvalidParameterError, match="Valid specs: 'Flat', 'IDMap2,Flat', 'MIH.*'<hasher><bits>"):
        index_factory(64, spec)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: index_factory(64, 5), "Bad index spec 5"),  # type: ignore[arg-type]
    (lambda: index_factory(0, "Flat"), "'dim' parameter of index_factory must be an integer >= 1"),
    (lambda: index_factory(True, "Flat"), "'dim' parameter of index_factory"),
    (lambda: index_factory(8, "Flat", metric="l2"),  # type: ignore[arg-type]
     "'metric' parameter of index_factory must be one of"),
    (lambda: index_factory(64, "ITQ16", metric="hamming"), "take float vectors"),  # codes of codes
    (lambda: index_factory(12, "Flat", metric="hamming"), "'n_bits' parameter of BinaryFlatIndex"),
    (lambda: index_factory(12, "ITQ12"), "takes a positive multiple of 8 bits, not 12"),
])
def test_bad_arguments_are_refused(call: Any, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_register_index_adds_a_backend_the_factory_builds() -> None:
    calls: list[tuple[int, str, list[str], dict[str, Any]]] = []

    def build(dim: int, metric: Any, args: list[str], **options: Any) -> VectorIndex:
        calls.append((dim, metric, args, options))
        return FaissIDMapIndex(dim + int(args[0]) if args else dim, metric)

    register_index("Toy", build)
    register_index("Milvus2", build)
    try:
        assert "toy" in available_indexes() and "milvus2" in available_indexes()
        toy = index_factory(8, "Toy(8)")
        assert isinstance(toy, FaissIDMapIndex) and toy.dim == 16
        assert index_factory(64, "toy", metric="hamming", uri="x").metric == "hamming"
        assert isinstance(index_factory(8, "MILVUS2"), FaissIDMapIndex)
        assert calls == [(8, "cosine", ["8"], {}), (64, "hamming", [], {"uri": "x"}), (8, "cosine", [], {})]
        toy.add([1], np.ones((1, 16), np.float32) / 4)
        assert toy.search(np.ones((1, 16), np.float32) / 4, 1).keys.tolist() == [[1]]
        with pytest.raises(InvalidParameterError, match="Valid specs: .*milvus2, toy"):
            index_factory(8, "Toy,Refine")
    finally:
        factory._BACKENDS.pop("toy")
        factory._BACKENDS.pop("milvus2")
    for name, builder in [("Flat", build), ("Refine", build), ("2x", build), ("", build), ("Ok", "not callable")]:
        with pytest.raises(InvalidParameterError, match="register_index"):
            register_index(name, builder)  # type: ignore[arg-type]
