"""The descriptor index (a binary inverted file over a vocabulary) against exact scans, and its vocabularies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.errors import InvalidParameterError
from lookalike.partial import FEATURE, Extractor, LocalFeatures
from lookalike.partial import vocabulary as vocab
from lookalike.partial.features import DESCRIPTOR_KINDS, unpack
from lookalike.partial.index import SHIFT, DescriptorIndex, brute_force_votes, votes_from

from .conftest import photo


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2).astype(np.int64)


@pytest.fixture(scope="module")
def items(partial_catalog: Path) -> dict[int, LocalFeatures]:
    with Catalog(partial_catalog, create=False) as cat:
        blobs = cat.features(FEATURE)
    return {key: unpack(blob) for key, blob in sorted(blobs.items())}


@pytest.fixture(scope="module")
def query() -> np.ndarray:
    return Extractor("teblid", 400).describe(Image.fromarray(photo("chelsea")[50:250, 100:300])).desc


@pytest.fixture(scope="module")
def small_vocabulary(items: dict[int, LocalFeatures]) -> np.ndarray:
    codes = np.concatenate([f.desc for f in items.values()])
    return vocab.train(codes[np.random.default_rng(0).permutation(len(codes))[:4000]], 32, iterations=5)


def index_of(items: dict[int, LocalFeatures], vocabulary: np.ndarray, nprobe: int, probe: str = "auto"
             ) -> DescriptorIndex:
    index = DescriptorIndex(vocabulary, nprobe, probe)
    index.put_many(items)
    return index


@pytest.mark.parametrize("probe", ["compiled", "faiss"])
def test_every_list_probed_is_an_exact_scan(items: dict[int, LocalFeatures], query: np.ndarray,
                                            small_vocabulary: np.ndarray, probe: str) -> None:
    index = index_of(items, small_vocabulary, len(small_vocabulary), probe)
    assert index.probe == probe
    codes = np.concatenate([f.desc for f in items.values()])
    owners = np.concatenate([np.full(len(f), key) for key, f in items.items()])
    local = np.concatenate([np.arange(len(f)) for f in items.values()])
    d = hamming(query, codes)
    for knn in (1, 4, 8):
        dist, own, rows = index.neighbours(query, knn)
        np.testing.assert_array_equal(dist, np.sort(d, axis=1)[:, :knn])
        for i in range(len(query)):  # the same neighbours strictly inside the k-th distance (ties may differ)
            inside, mine = d[i] < dist[i, -1], dist[i] < dist[i, -1]
            assert sorted(zip(own[i][mine].tolist(), rows[i][mine].tolist(), strict=True)) == sorted(
                zip(owners[inside].tolist(), local[inside].tolist(), strict=True))
    # votes within a radius below every row's 8th distance cannot depend on ties
    radius = int(index.neighbours(query, 8)[0][:, -1].min()) - 1
    assert index.votes(query, knn=8, max_distance=radius) == brute_force_votes(query, items, 8, radius)
    assert index.descriptors == len(codes)


@pytest.mark.parametrize("probe", ["compiled", "faiss"])
@pytest.mark.parametrize("nprobe", [1, 3])
def test_few_lists_probed_equal_a_scan_of_those_lists(items: dict[int, LocalFeatures], query: np.ndarray,
                                                      small_vocabulary: np.ndarray, nprobe: int, probe: str) -> None:
    index = index_of(items, small_vocabulary, nprobe, probe)
    codes = np.concatenate([f.desc for f in items.values()])
    home = index.assign(codes)[:, None]  # each descriptor's list
    nearest, _ = index.quantizer.search(codes, 1)  # the quantiser's nearest centroid: the same distance
    np.testing.assert_array_equal(hamming(codes, small_vocabulary)[np.arange(len(codes)), home[:, 0]], nearest[:, 0])
    centroid_distances, probed = index.probes(query)  # each query's lists: its nprobe nearest centroids
    np.testing.assert_array_equal(centroid_distances, np.sort(hamming(query, small_vocabulary), axis=1)[:, :nprobe])
    d = hamming(query, codes)
    allowed = (home[:, 0][None, :] == probed[:, :, None]).any(axis=1)
    d = np.where(allowed, d, 10_000)
    dist, own, _rows = index.neighbours(query, 8)
    expected = np.sort(d, axis=1)[:, :8]
    np.testing.assert_array_equal(np.where(own >= 0, dist, 10_000), expected)
    exact = index_of(items, small_vocabulary, len(small_vocabulary)).neighbours(query, 8)[0]
    assert (dist >= exact).all() and (dist > exact).any()  # approximate: never nearer, sometimes farther


def test_candidates_carry_one_to_one_matches_from_the_neighbours(items: dict[int, LocalFeatures],
                                                                 query: np.ndarray) -> None:
    index = index_of(items, vocab.load("teblid"), 4)
    ranked = index.candidates(query, 5, knn=8, max_distance=64)
    assert ranked and [v for _, v, _ in ranked] == sorted((v for _, v, _ in ranked), reverse=True)
    dist, own, rows = index.neighbours(query, 8)
    votes = votes_from(dist, own, 64)
    for key, v, pairs in ranked:
        assert votes[key] == v
        assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
        for q, r in pairs:  # every pair is one of that query descriptor's neighbours, in the item
            hit = (own[q] == key) & (rows[q] == r) & (dist[q] <= 64)
            assert hit.any()
            assert dist[q][hit].min() == dist[q][(own[q] == key) & (dist[q] <= 64)].min()  # its nearest there
        assert (pairs[:, 1] < len(items[key])).all()


@pytest.mark.parametrize("probe", ["compiled", "faiss"])
def test_put_replace_and_remove(items: dict[int, LocalFeatures], query: np.ndarray, probe: str) -> None:
    index = DescriptorIndex(vocab.load("teblid"), 4096, probe)  # exact
    keys = list(items)
    index.put_many({k: items[k] for k in keys[:3]})
    assert len(index) == 3 and index.descriptors == sum(len(items[k]) for k in keys[:3])
    index.put(keys[0], items[keys[3]])  # replaced: now the fourth item's descriptors under the first key
    assert index.descriptors == sum(len(items[k]) for k in (keys[3], keys[1], keys[2]))
    dist, own, rows = index.neighbours(items[keys[3]].desc[:20], 1)
    assert (dist[:, 0] == 0).all() and (own[:, 0] == keys[0]).all()
    index.remove([keys[0], keys[1], 12345])  # an unknown key is ignored
    assert keys[0] not in index and len(index) == 1
    assert set(np.unique(index.neighbours(query, 8)[1])) <= {keys[2]}
    index.remove([keys[2]])
    dist, own, rows = index.neighbours(query, 3)
    assert (own == -1).all() and (rows == -1).all() and index.descriptors == 0
    assert index.votes(query, knn=3, max_distance=256) == {}
    assert index.candidates(query, 5, knn=3, max_distance=256) == []
    assert index.neighbours(np.zeros((0, 32), np.uint8), 3)[0].shape == (0, 3)


def test_bad_arguments_are_refused(items: dict[int, LocalFeatures]) -> None:
    v = vocab.load("orb")
    with pytest.raises(InvalidParameterError, match="nprobe"):
        DescriptorIndex(v, 0)
    with pytest.raises(InvalidParameterError, match="probe"):
        DescriptorIndex(v, 4, "gpu")
    with pytest.raises(InvalidParameterError, match="nprobe"):
        DescriptorIndex(v, len(v) + 1)
    with pytest.raises(InvalidParameterError, match="vocabulary"):
        DescriptorIndex(np.zeros((4, 16), np.uint8))
    index = DescriptorIndex(v)
    index.nprobe = 16
    assert index.nprobe == 16
    for bad in (0, len(v) + 1, 2.5, True):
        with pytest.raises(InvalidParameterError, match="nprobe"):
            index.nprobe = bad  # type: ignore[assignment]
    assert index.nprobe == 16
    f = next(iter(items.values()))
    with pytest.raises(InvalidParameterError, match="key"):
        index.put(-1, f)
    with pytest.raises(InvalidParameterError, match="key"):
        index.put(1 << (63 - SHIFT), f)
    assert len(index) == 0


@pytest.mark.parametrize("kind", DESCRIPTOR_KINDS)
def test_the_shipped_vocabularies(kind: str) -> None:
    v = vocab.load(kind)
    assert v.shape == (4096, 32) and v.dtype == np.uint8 and not v.flags.writeable
    assert len(np.unique(v, axis=0)) > 4000  # distinct centroids
    ones = np.unpackbits(v, axis=1).mean(axis=0)
    assert ones.min() > 0.05 and ones.max() < 0.95  # no bit constant across the vocabulary
    with pytest.raises(InvalidParameterError):
        vocab.load("sift")


def test_training_is_seeded_and_checks_its_input() -> None:
    rng = np.random.default_rng(1)
    centres = rng.integers(0, 256, (8, 32), dtype=np.uint8)
    flips = np.packbits(rng.random((800, 256)) < 0.05, axis=1)
    codes = centres[np.arange(800) % 8] ^ flips
    a, b = vocab.train(codes, 8, seed=3), vocab.train(codes, 8, seed=3)
    np.testing.assert_array_equal(a, b)
    # the 8 planted centres are found: each within a few bits of one centroid
    assert hamming(centres, a).min(axis=1).max() <= 8
    with pytest.raises(InvalidParameterError, match="size"):
        vocab.train(codes, 801)
    with pytest.raises(InvalidParameterError, match="uint8"):
        vocab.train(codes[:, :16], 4)


def test_the_compiled_probe_follows_every_change_of_the_lists(items: dict[int, LocalFeatures],
                                                              query: np.ndarray) -> None:
    """The compiled scan reads faiss's lists in place: after puts that grow them (a list's vector may move) and
    removals, it still answers what faiss's own scan of the same lists answers."""
    v = vocab.load("teblid")
    compiled, reference = DescriptorIndex(v, 4, "compiled"), DescriptorIndex(v, 4, "faiss")
    keys = list(items)

    def same() -> None:
        d1, o1, r1 = compiled.neighbours(query, 8)
        d2, o2, r2 = reference.neighbours(query, 8)
        np.testing.assert_array_equal(d1, d2)
        for i in range(len(query)):  # ties at the k-th distance may resolve otherwise
            a, b = d1[i] < d1[i, -1], d2[i] < d2[i, -1]
            assert sorted(zip(o1[i][a], r1[i][a], strict=True)) == sorted(zip(o2[i][b], r2[i][b], strict=True))

    for step in (keys[:2], keys[2:5], keys[5:]):
        for index in (compiled, reference):
            index.put_many({k: items[k] for k in step})
        same()
    for index in (compiled, reference):
        index.remove(keys[1:4])
        index.put(keys[0], items[keys[-1]])
    same()
