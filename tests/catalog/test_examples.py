""""More like these, less like those": Catalog.similar from several items, against numpy rankings of the stored
vectors (Rocchio's query; Hamming for codes), exclusion of the examples, one id as before, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_images import colour_families

from lookalike.catalog import Catalog
from lookalike.catalog.query import MAX_EXAMPLES, UNLIKE_WEIGHT, rocchio
from lookalike.errors import InvalidParameterError, ItemNotFoundError

ENC = "pixels:size=8"
N = 80


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path / "cat", ENC, extra_encoders=["phash"])
    for i, img in enumerate(colour_families(N)):
        c.add(img, id=f"i{i}", metadata={"family": i % 4})
    yield c
    c.close()


def _stored(cat: Catalog, encoder: str | None = None) -> np.ndarray:
    """Every item's stored vector (row i: item i{i})."""
    view = cat.vector_index(encoder)
    return np.stack([view.get(cat.get(f"i{i}").key) for i in range(N)])


def _rows(ids: list[str]) -> list[int]:
    return [int(i[1:]) for i in ids]


def _numpy_rocchio(X: np.ndarray, like: list[str], unlike: list[str], beta: float) -> np.ndarray:
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    q = unit[_rows(like)].mean(axis=0) - (beta * unit[_rows(unlike)].mean(axis=0) if unlike else 0)
    return q / np.linalg.norm(q)


def _top(scores: np.ndarray, k: int, skip: list[str], descending: bool = True) -> list[str]:
    order = np.lexsort((np.arange(len(scores)), -scores if descending else scores))
    return [f"i{j}" for j in order if f"i{j}" not in skip][:k]


@pytest.mark.parametrize("beta", [0.0, 0.25, 1.0, None])
def test_rocchio_search_is_the_exact_ranking_by_mean_similarity(cat: Catalog, beta: float | None) -> None:
    X = _stored(cat).astype(np.float64)
    like, unlike = ["i0", "i4", "i9"], ["i1", "i2"]
    weight = UNLIKE_WEIGHT if beta is None else beta
    q = _numpy_rocchio(X, like, unlike, weight)
    hits = cat.pipeline.similar(like, unlike=unlike, k=10, beta=beta)
    assert [h.id for h in hits] == _top(X @ q, 10, like + unlike)
    assert [h.score for h in hits] == pytest.approx((X @ q)[_rows([h.id for h in hits])], abs=1e-5)
    # for unit rows the cosine with Rocchio's query ranks exactly as mean similarity to the liked items minus
    # beta times mean similarity to the unliked ones
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    mean_sim = (unit @ unit[_rows(like)].T).mean(axis=1) - weight * (unit @ unit[_rows(unlike)].T).mean(axis=1)
    assert [h.id for h in hits] == _top(mean_sim, 10, like + unlike)
    if beta is None:
        assert [h.id for h in cat.similar(like, unlike=unlike, k=10)] == [h.id for h in hits]


def test_unliked_examples_push_their_family_down(cat: Catalog) -> None:
    like = ["i0", "i4"]  # family 0
    liked_only = cat.similar(like, k=30)
    with_unlike = cat.similar(like, unlike=["i1", "i5"], k=30, encoder=ENC)  # family 1
    family1 = {f"i{j}" for j in range(1, N, 4)}
    assert sum(h.id in family1 for h in with_unlike) <= sum(h.id in family1 for h in liked_only)
    unweighted = cat.pipeline.similar(like, unlike=["i1"], k=10, beta=0.0)  # the same query, i1 left out too
    assert unweighted == [h for h in cat.similar(like, k=11) if h.id != "i1"][:10]


def test_every_example_is_excluded_and_the_filter_holds(cat: Catalog) -> None:
    like, unlike = ["i3", "i7", "i11"], ["i2", "i6"]
    every = cat.similar(like, unlike=unlike, k=N)
    assert len(every) == N - 5 and not {h.id for h in every} & set(like + unlike)
    family = cat.similar(like, unlike=unlike, k=N, where={"family": 3})
    assert len(family) == N // 4 - 3 and all(h.metadata["family"] == 3 for h in family)
    assert [h.id for h in family] == [h.id for h in every if h.metadata["family"] == 3]


def test_one_id_is_todays_more_like_this(cat: Catalog) -> None:
    X = _stored(cat)
    old = cat.similar("i5", k=12)
    assert cat.similar(["i5"], k=12) == old == cat.similar(("i5",), unlike=(), k=12)
    direct = cat.search_vectors(X[5:6], k=13)[0]  # the stored vector searched as is, the item left out
    assert old == [h for h in direct if h.id != "i5"][:12]
    assert np.allclose(rocchio(X[5:6], X[:0], 0.5)[0], X[5], atol=1e-6)  # Rocchio's query of one: its vector


def test_order_of_the_examples_and_repeats_give_one_answer(cat: Catalog) -> None:
    first = cat.similar(["i0", "i8", "i13"], unlike=["i2", "i3"], k=15)
    assert cat.similar(["i0", "i8", "i13"], unlike=["i2", "i3"], k=15) == first
    again = cat.similar(["i13", "i0", "i8"], unlike=["i3", "i2"], k=15)
    assert [h.id for h in again] == [h.id for h in first]
    assert [h.score for h in again] == pytest.approx([h.score for h in first], abs=1e-6)


def test_learned_codes_search_the_float_query_then_its_codes(cat: Catalog) -> None:
    hashed = cat.fit_hasher("itq", 16)
    like, unlike = ["i0", "i4", "i8"], ["i1"]
    floats = _stored(cat, ENC).astype(np.float64)
    q = _numpy_rocchio(floats, like, unlike, UNLIKE_WEIGHT)
    # re-ranking every candidate: the exact float answer of the same query
    reranked = cat.similar(like, unlike=unlike, k=10, rerank=N)
    assert [h.id for h in reranked] == _top(floats @ q, 10, like + unlike)
    assert [h.id for h in reranked] == [h.id for h in cat.similar(like, unlike=unlike, k=10, encoder=ENC)]
    assert cat.similar(like, unlike=unlike, k=10) == reranked  # the default depth (400) holds all 80 too
    # the codes alone: Hamming from the codes of the float query
    codes = _stored(cat)
    query = hashed.codes_of(q[None, :].astype(np.float32))
    dist = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    by_codes = cat.similar(like, unlike=unlike, k=10, rerank=0)
    assert [h.id for h in by_codes] == _top(dist.astype(np.float64), 10, like + unlike, descending=False)
    assert [h.distance for h in by_codes] == dist[_rows([h.id for h in by_codes])].tolist()


def test_binary_codes_vote_by_their_bits(cat: Catalog) -> None:
    codes = _stored(cat, "phash")
    like, unlike = ["i0", "i4", "i8", "i12"], ["i1", "i2"]
    signs = np.unpackbits(codes, axis=1).astype(np.float64) * 2 - 1
    vote = signs[_rows(like)].mean(axis=0) - UNLIKE_WEIGHT * signs[_rows(unlike)].mean(axis=0)
    query = np.packbits(vote >= 0)[None, :]  # ties (a 2-2 split) give bit 1
    dist = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    hits = cat.similar(like, unlike=unlike, k=10, encoder="phash")
    assert [h.id for h in hits] == _top(dist.astype(np.float64), 10, like + unlike, descending=False)
    assert [h.distance for h in hits] == dist[_rows([h.id for h in hits])].tolist()
    tie = rocchio(np.array([[0b10100000]], np.uint8), np.array([[0b10010000]], np.uint8), 1.0, binary=True)
    assert tie.tolist() == [[0b11101111]]  # bits 0 (both 1): 1 - 1 = 0, a tie; bit 2: 1 - (-1); bit 3: -1 - 1


def test_bad_examples_are_refused_with_the_ids_named(cat: Catalog) -> None:
    with pytest.raises(ItemNotFoundError, match="'nope'.*'gone'"):
        cat.similar(["i0", "nope"], unlike=["gone"])
    with pytest.raises(ItemNotFoundError, match="no item with id 'nope'"):
        cat.similar("nope")
    with pytest.raises(InvalidParameterError, match="both liked and unliked: item 'i1'"):
        cat.similar(["i0", "i1"], unlike=["i1"])
    with pytest.raises(InvalidParameterError, match="at least one liked"):
        cat.similar([], unlike=["i1"])
    with pytest.raises(InvalidParameterError, match="distinct: item 'i0' given more than once"):
        cat.similar(["i0", "i0"])
    with pytest.raises(InvalidParameterError, match="'unlike' ids must be distinct"):
        cat.similar(["i0"], unlike=["i2", "i2"])
    with pytest.raises(InvalidParameterError, match=f"at most {MAX_EXAMPLES} item ids in all"):
        cat.similar([f"i{j}" for j in range(60)], unlike=[f"x{j}" for j in range(41)])
    with pytest.raises(InvalidParameterError, match=f"at most {MAX_EXAMPLES} item ids"):
        cat.similar([f"x{j}" for j in range(10_000)])
    for bad in ([1, "i0"], ["i0", None], [""], ["a" * 2000], 7, b"i0"):
        with pytest.raises(InvalidParameterError):
            cat.similar(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        cat.similar(["i0"], unlike=[3])  # type: ignore[list-item]
    for beta in (-1.0, float("nan"), "1"):
        with pytest.raises(InvalidParameterError, match="beta"):
            cat.pipeline.similar(["i0"], unlike=["i1"], beta=beta)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="k"):
        cat.similar(["i0", "i1"], k=0)


def test_examples_that_cancel_out_are_refused(cat: Catalog) -> None:
    cat.add(colour_families(1)[0], id="copy-of-i0")  # the same image as i0: the same vector
    with pytest.raises(InvalidParameterError, match="cancel out"):
        cat.pipeline.similar("i0", unlike=["copy-of-i0"], beta=1.0)
    assert len(cat.similar("i0", unlike=["copy-of-i0"], k=5)) == 5  # a smaller weight leaves i0's direction
