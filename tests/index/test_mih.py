"""MultiIndexHashIndex against BinaryFlatIndex fed the same operations: identical k-NN and radius answers (ties
and padding included), through adds, upserts, removals, rebuilds and filters, probing in C and in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import BinaryFlatIndex, MultiIndexHashIndex, index_factory
from lookalike.index import mih as mih_module
from lookalike.index.mih import substring_count, substrings, weight_masks


def clustered(rng: np.random.Generator, n: int, n_bits: int, centres: int = 40, flip: float = 0.05) -> np.ndarray:
    """Codes near a few centres (as learned codes of similar items are), packed like the indexes want."""
    bits = rng.integers(0, 2, (centres, n_bits))[rng.integers(0, centres, n)]
    bits ^= rng.random((n, n_bits)) < flip
    return np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")


def pair(n_bits: int, **options: object) -> tuple[MultiIndexHashIndex, BinaryFlatIndex]:
    return MultiIndexHashIndex(n_bits, **options), BinaryFlatIndex(n_bits)  # type: ignore[arg-type]


def same(mih: MultiIndexHashIndex, flat: BinaryFlatIndex, queries: np.ndarray, k: int, keys: object = None) -> None:
    got, expected = mih.hamming(queries, k, keys=keys), flat.hamming(queries, k, keys=keys)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    scores = mih.search(queries, k, keys=keys)
    np.testing.assert_array_equal(scores.keys, flat.search(queries, k, keys=keys).keys)
    for index in (mih, flat):  # the shortlist's codes by row are the codes of the keys hamming finds
        found, codes = index.nearest_codes(queries, k, keys=keys)
        np.testing.assert_array_equal(found, expected[1])
        want, present = flat.vectors(found.reshape(-1))
        np.testing.assert_array_equal(present, found.reshape(-1) != -1)
        np.testing.assert_array_equal(codes.reshape(-1, codes.shape[2]), want)


@pytest.fixture(params=["compiled", "numpy"])
def probing(request: pytest.FixtureRequest) -> bool:
    return request.param == "compiled"


@pytest.mark.parametrize("n_bits", [16, 64, 128, 256])
@pytest.mark.parametrize("spread", ["clustered", "uniform", "ties"])
def test_knn_equals_the_flat_scan(probing: bool, n_bits: int, spread: str) -> None:
    rng = np.random.default_rng([n_bits, len(spread)])
    n = 3000
    if spread == "uniform":
        codes = rng.integers(0, 256, (n, n_bits // 8), dtype=np.uint8)
    elif spread == "ties":  # six distinct codes: nearly every distance ties
        codes = rng.integers(0, 256, (6, n_bits // 8), dtype=np.uint8)[rng.integers(0, 6, n)]
    else:
        codes = clustered(rng, n, n_bits)
    keys = rng.permutation(10 * n)[:n]
    mih, flat = pair(n_bits, mode="mih", compiled=probing)
    mih.add(keys, codes)
    flat.add(keys, codes)
    queries = np.concatenate([codes[:5] ^ rng.integers(0, 2, (5, n_bits // 8), dtype=np.uint8),
                              rng.integers(0, 256, (3, n_bits // 8), dtype=np.uint8)])
    for k in (1, 10, 257, n + 7):
        same(mih, flat, queries, k)
    assert mih.stats["mih_queries"] > 0 and mih.stats["scan_queries"] == 0


def test_an_empty_batch_of_queries_answers_an_empty_batch(probing: bool) -> None:
    rng = np.random.default_rng(3)
    mih, flat = pair(256, mode="mih", compiled=probing)
    codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    mih.add(np.arange(500), codes)
    flat.add(np.arange(500), codes)
    same(mih, flat, np.zeros((0, 32), np.uint8), 5)  # was a ZeroDivisionError in the compiled probe's statistics
    assert mih.hamming(np.zeros((0, 32), np.uint8), 5)[0].shape == (0, 5)


def test_changes_between_searches_keep_it_exact(probing: bool) -> None:
    # Adds land in the delta, upserts and removals mask build rows and move rows around, a rebuild comes when
    # enough changed: after each step the answer equals the scan's, and a rebuild happened along the way.
    rng = np.random.default_rng(7)
    mih, flat = pair(64, mode="mih", compiled=probing)
    codes = clustered(rng, 6000, 64)
    for index in (mih, flat):
        index.add(np.arange(3000), codes[:3000])
    queries = codes[rng.integers(0, 6000, 6)] ^ np.uint8(1)
    same(mih, flat, queries, 10)
    steps = [
        lambda ix: ix.add(np.arange(3000, 3500), codes[3000:3500]),  # new rows: the delta
        lambda ix: ix.add(np.arange(0, 400, 2), codes[5000:5200]),  # upserts: rewritten rows
        lambda ix: ix.remove(rng_keys[:700]),  # removals: the last rows move into the holes
        lambda ix: ix.add(np.arange(3500, 6000), codes[3500:6000]),  # enough to trigger a rebuild
        lambda ix: ix.remove(np.arange(6000)),  # everything
        lambda ix: ix.add([5], codes[:1]),
    ]
    rng_keys = np.random.default_rng(1).permutation(3500)
    for step in steps:
        step(mih)
        step(flat)
        assert len(mih) == len(flat)
        np.testing.assert_array_equal(mih.keys(), flat.keys())
        for k in (1, 10, 50):
            same(mih, flat, queries, k)
            same(mih, flat, queries, k, keys=np.arange(0, 6000, 3))
    assert mih.stats["rebuilds"] >= 2


@pytest.mark.parametrize("share", [0.5, 0.05])
def test_filters_give_the_scan_answer(probing: bool, share: float) -> None:
    rng = np.random.default_rng(3)
    codes = clustered(rng, 4000, 64)
    mih, flat = pair(64, mode="mih", compiled=probing)
    for index in (mih, flat):
        index.add(np.arange(4000) * 2, codes)
    queries = codes[:4] ^ np.uint8(3)
    allowed = rng.permutation(4000)[: int(4000 * share)] * 2
    for k in (1, 10, 4000):
        same(mih, flat, queries, k, keys=allowed)
    same(mih, flat, queries, 5, keys=[])  # nothing allowed: all padding
    same(mih, flat, queries, 5, keys=[123457])  # only unknown keys


@pytest.mark.parametrize("n_bits", [16, 64, 256])
def test_radius_search_equals_the_scan_and_the_brute_force(n_bits: int) -> None:
    rng = np.random.default_rng(n_bits)
    codes = clustered(rng, 2500, n_bits)
    mih, flat = pair(n_bits, mode="mih")
    for index in (mih, flat):
        index.add(np.arange(2500) + 100, codes)
    mih.add(np.arange(2500, 2600) + 100, codes[:100])  # a delta, searched too
    flat.add(np.arange(2500, 2600) + 100, codes[:100])
    queries = codes[:6] ^ rng.integers(0, 2, (6, n_bits // 8), dtype=np.uint8)
    data = np.concatenate([codes, codes[:100]])
    for radius in (0, 3, n_bits // 8, n_bits // 3):
        got, expected = mih.within(queries, radius), flat.within(queries, radius)
        for query, (d, keys), (d2, keys2) in zip(queries, got, expected, strict=True):
            np.testing.assert_array_equal(d, d2)
            np.testing.assert_array_equal(keys, keys2)
            brute = np.bitwise_count(data ^ query).sum(axis=1)
            rows = np.flatnonzero(brute <= radius)
            rows = rows[np.lexsort((rows, brute[rows]))]
            np.testing.assert_array_equal(keys, rows + 100)
            np.testing.assert_array_equal(d, brute[rows])
    subset = np.arange(100, 2700, 4)
    for (d, keys), (d2, keys2) in zip(mih.within(queries, 9, keys=subset), flat.within(queries, 9, keys=subset),
                                      strict=True):
        np.testing.assert_array_equal(keys, keys2)
        np.testing.assert_array_equal(d, d2)


def test_auto_mode_scans_where_probing_cannot_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MultiIndexHashIndex, "search_mode", lambda self, nq, k: "mih")  # past the size rule
    rng = np.random.default_rng(5)
    n = 200_000
    spread, near = MultiIndexHashIndex(64), MultiIndexHashIndex(64)
    flat_spread, flat_near = BinaryFlatIndex(64), BinaryFlatIndex(64)
    # Uniform codes (no neighbour closer than ~15 bits) against near-duplicates (4 copies of each picture, a
    # bit or so apart), the case probing is for.
    uniform = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    close = np.repeat(uniform[: n // 4], 4, axis=0) ^ np.packbits(rng.random((n, 64)) < 0.01, axis=1)
    for index, codes in ((spread, uniform), (flat_spread, uniform), (near, close), (flat_near, close)):
        index.add(np.arange(n), codes)
    one_bit = np.zeros((20, 8), np.uint8)
    one_bit[:, 0] = 1
    same(spread, flat_spread, uniform[:20] ^ one_bit, 3)
    same(near, flat_near, close[:20] ^ one_bit, 3)
    assert spread.stats["scan_queries"] == 60  # every query went over budget (hamming, search, nearest_codes: 3 x 20)
    assert near.stats["mih_queries"] == 60 and near.stats["scan_queries"] == 0


def test_auto_mode_scans_small_indexes_and_large_k() -> None:
    index = MultiIndexHashIndex(64)
    index.add(np.arange(100), np.zeros((100, 8), np.uint8))
    assert index.search_mode(1, 10) == "scan"
    assert MultiIndexHashIndex(64, mode="mih").search_mode(1, 10) == "mih"


def test_substring_count_follows_the_paper() -> None:
    assert substring_count(64, 1_000_000) == 3  # round(64 / 19.93)
    assert substring_count(64, 10_000) == 5  # round(64 / 13.3)
    assert substring_count(128, 1_000_000) == 6
    assert substring_count(256, 2) == 256  # tiny n: one bit each
    assert substring_count(64, 2**40) == 3  # capped so that no substring passes 24 bits
    assert substring_count(512, 10**9) == 22  # 512 / 24 rounded up beats round(512 / 29.9) = 17


def test_substrings_and_masks() -> None:
    codes = np.array([[0b10110010, 0b00000001]], dtype=np.uint8)
    assert substrings(codes, 0, 4)[0] == 0b0010
    assert substrings(codes, 4, 8)[0] == 0b00011011  # bits 4..11 across the byte boundary
    assert list(weight_masks(4, 2)) == [0b0011, 0b0101, 0b0110, 0b1001, 0b1010, 0b1100]
    assert list(weight_masks(3, 0)) == [0]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'substrings' parameter"):
        MultiIndexHashIndex(64, substrings=0)
    with pytest.raises(InvalidParameterError, match="'substrings' parameter"):
        MultiIndexHashIndex(64, substrings=2)  # 32-bit substrings: tables of 2**32 offsets
    with pytest.raises(InvalidParameterError, match="'mode' parameter"):
        MultiIndexHashIndex(64, mode="fast")
    index = MultiIndexHashIndex(64)
    index.add([1], np.zeros((1, 8), np.uint8))
    with pytest.raises(InvalidParameterError, match="'radius' parameter"):
        index.within(np.zeros((1, 8), np.uint8), 65)
    with pytest.raises(InvalidParameterError, match="'radius' parameter"):
        index.within(np.zeros((1, 8), np.uint8), -1)
    with pytest.raises(InvalidParameterError, match="'queries' parameter"):
        index.hamming(np.zeros((1, 4), np.uint8), 1)


def test_the_c_probe_refuses_inconsistent_tables() -> None:
    from lookalike.index._compiled_topk import _HAMMING

    assert _HAMMING is not None
    codes, queries = np.zeros((10, 8), np.uint8), np.zeros((2, 8), np.uint8)
    widths, starts = np.array([30], np.int32), np.array([0], np.int32)
    base = np.zeros(1, np.int64)
    out = (np.empty(2 * 3, np.int32), np.empty(2 * 3, np.int64), np.empty(2, np.uint8))
    args = (queries, codes, 8, 3, widths, starts, np.zeros(5, np.int32), base, np.zeros(10, np.int32),
            np.zeros((10, 8), np.uint8), base, np.arange(10, dtype=np.int64), np.empty(0, np.int64), None, -1.0, 16.0,
            *out, 1)
    with pytest.raises(ValueError, match="a table lies outside its buffers"):
        _HAMMING.mih_search(*args)
    bad_delta = list(args)
    bad_delta[4], bad_delta[6], bad_delta[12] = np.array([2], np.int32), np.zeros(5, np.int32), np.array([10])
    with pytest.raises(ValueError, match="a delta row is outside the codes"):
        _HAMMING.mih_search(*bad_delta)
    bad_out = list(args)
    bad_out[16] = np.empty(5, np.int32)
    with pytest.raises(ValueError, match="inconsistent buffer sizes"):
        _HAMMING.mih_search(*bad_out)
    bad_codes = list(args)
    bad_codes[9] = np.zeros((9, 8), np.uint8)  # one code short of the members
    with pytest.raises(ValueError, match="inconsistent buffer sizes"):
        _HAMMING.mih_search(*bad_codes)


def test_corrupt_tables_cannot_read_out_of_bounds() -> None:
    # Offsets and members past their buffers are clamped or skipped in the C loop: wrong tables give a wrong
    # answer, never a crash.
    rng = np.random.default_rng(0)
    index = MultiIndexHashIndex(16, mode="mih")
    index.add(np.arange(50), rng.integers(0, 256, (50, 2), dtype=np.uint8))
    index.rebuild()
    tables = index._tables
    assert tables is not None
    tables.all_offsets[:] = 10**9
    tables.all_members[:] = -5
    tables.member_codes[:] = 0  # every copy looks like the query: each one reaches the (bad) member lookup
    index._cur_of_build[:] = 10**12
    distances, keys = index.hamming(np.zeros((1, 2), np.uint8), 3)
    assert distances.shape == (1, 3) and keys.shape == (1, 3)


def test_the_factory_builds_it() -> None:
    index = index_factory(64, "MIH", metric="hamming")
    assert isinstance(index, MultiIndexHashIndex) and index.dim == 64
    fixed = index_factory(64, "MIH(4)", metric="hamming", mode="mih")
    fixed.add(np.arange(10), np.zeros((10, 8), np.uint8))
    fixed.search(np.zeros((1, 8), np.uint8), 3)
    assert isinstance(fixed, MultiIndexHashIndex) and len(fixed._tables.widths) == 4  # type: ignore[union-attr]
    with pytest.raises(InvalidParameterError, match="metric='hamming'"):
        index_factory(64, "MIH")
    with pytest.raises(InvalidParameterError, match="whole number of substrings"):
        index_factory(64, "MIH(x)", metric="hamming")


def test_rebuild_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mih_module, "_MIN_REBUILD", 10)
    index = MultiIndexHashIndex(16, mode="mih")
    index.add(np.arange(100), np.zeros((100, 2), np.uint8))
    index.search(np.zeros((1, 2), np.uint8), 1)
    assert index.stats["rebuilds"] == 1
    index.add(np.arange(100, 110), np.zeros((10, 2), np.uint8))
    index.remove([0, 1])  # 12 changed: not more than max(10, 100 // 8)
    index.search(np.zeros((1, 2), np.uint8), 1)
    assert index.stats["rebuilds"] == 1
    index.add([0], np.zeros((1, 2), np.uint8))  # 13
    index.search(np.zeros((1, 2), np.uint8), 1)
    assert index.stats["rebuilds"] == 2


def test_more_tables_than_the_c_probe_takes_are_probed_by_numpy() -> None:
    rng = np.random.default_rng(11)
    codes = clustered(rng, 500, 128)
    mih, flat = pair(128, substrings=65, mode="mih")
    for index in (mih, flat):
        index.add(np.arange(500), codes)
    same(mih, flat, codes[:3] ^ np.uint8(2), 7)  # the C probe would refuse 65 tables; numpy probes them
    assert mih.stats["mih_queries"] == 9 and mih.stats["scan_queries"] == 0
