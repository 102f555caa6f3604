"""Loading a catalogue's float index holds its vectors about once: no growth by doubling on the way, no blob chunk
as large as the index, and the store's rows read, not left mapped (the 100k-item dedup peaked at 2.5 GB)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog import Catalog
from lookalike.catalog.store import NewItem, Store
from lookalike.index import FloatFlatIndex

N, DIM = 6000, 1024  # pixels:size=32, grey


def _catalogue(path: Path) -> np.ndarray:
    with Catalog(path, "pixels", create=True):
        pass
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = Store(path, create=False)
    num = store.encoders()[0].num
    with store.transaction() as tx:
        for i in range(N):
            key = tx.insert_item(f"v{i}", NewItem(None, f"{i:064x}", 32, 32), "{}")
            tx.put_vectors(num, [key], vectors[i : i + 1])
    store.close()
    return vectors


def test_loading_the_index_allocates_its_vectors_about_once(tmp_path: Path) -> None:
    vectors = _catalogue(tmp_path / "cat")
    with Catalog(tmp_path / "cat") as cat:
        view = cat.vector_index("pixels")
        tracemalloc.start()
        try:
            assert len(view) == N
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        data = N * DIM * 4
        assert peak < 1.5 * data, f"loading {data / 2**20:.1f} MiB of vectors peaked at {peak / 2**20:.1f} MiB"
        # and it is the index a search uses: exact results for a stored vector
        hits = cat.search_vectors(vectors[17:18], k=3)[0]
        assert hits[0].id == "v17"
        # the store still answers after the one-pass read (its memory map is restored for random reads)
        assert cat.get("v5999").id == "v5999"


def _rss_file_mib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile")) // 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="resident file pages are read from Linux's /proc")
def test_bulk_reads_leave_no_mapped_pages_behind(tmp_path: Path) -> None:
    _catalogue(tmp_path / "cat")
    size = (tmp_path / "cat" / "catalog.sqlite").stat().st_size // 2**20
    assert size >= 20
    with Catalog(tmp_path / "cat") as cat:
        before = _rss_file_mib()
        assert len(cat.vector_index("pixels")) == N  # the load: one pass over every vector
        assert len(cat.items_by_key(list(range(1, N + 1)))) == N
        grown = _rss_file_mib() - before
        assert grown < size / 4, f"{grown} MiB of the {size} MiB database stayed mapped"
        # a search's random reads still work (through the map)
        assert cat.search_vectors(np.ones((1, DIM), dtype=np.float32) / 32, k=2)[0]


def test_reserve_makes_room_once_and_changes_nothing_else() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((50, 8)).astype(np.float32)
    plain, reserved = FloatFlatIndex(8), FloatFlatIndex(8)
    reserved.reserve(50)
    reserved.reserve(10)  # smaller than what it holds room for: nothing happens
    for index in (plain, reserved):
        for start in range(0, 50, 7):
            index.add(np.arange(start, min(start + 7, 50)), data[start : start + 7])
    q = rng.standard_normal((3, 8)).astype(np.float32)
    for (va, ka), (vb, kb) in [(plain.search(q, 5), reserved.search(q, 5))]:
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(va, vb)
    assert len(reserved) == 50


def test_overlapping_bulk_reads_map_again_only_when_the_last_ends(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", "pixels", create=True):
        pass
    store = Store(tmp_path / "cat", create=False)
    try:
        mapped = store.rows("PRAGMA mmap_size")[0][0]
        assert mapped > 0
        with store._one_pass(10_000):
            with store._one_pass(10_000):  # another thread's bulk read, overlapping
                assert store.rows("PRAGMA mmap_size")[0][0] == 0
            assert store.rows("PRAGMA mmap_size")[0][0] == 0  # the first one is still reading
        assert store.rows("PRAGMA mmap_size")[0][0] == mapped
        with store._one_pass(10):  # a few rows keep the map
            assert store.rows("PRAGMA mmap_size")[0][0] == mapped
    finally:
        store.close()
