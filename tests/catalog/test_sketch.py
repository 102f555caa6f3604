"""The sketch learned with the codes of a wide float encoder: stored for every item and kept current, and the
three-stage search it makes (codes -> sketch -> exact on the few read) equal to the same stages done by hand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from synthetic_images import colour_families

from lookalike.catalog import Catalog
from lookalike.catalog.query import SKETCH_POOL, SKETCHED_RERANK
from lookalike.encoders.hashed import HashedEncoder, SketchEncoder
from lookalike.index import BinaryFlatIndex, HashedIndex

ENC = "pixels"  # 32 x 32 grey: 1024 dims, wide enough for a sketch (SKETCH_FROM)
CODES, SKETCH = f"{ENC}+itq:64", f"{ENC}+sketch:128"


def stored(path: Path, spec: str) -> dict[str, np.ndarray]:
    db = sqlite3.connect(path / "catalog.sqlite")
    rows = db.execute("SELECT i.id, v.vec FROM vectors v JOIN items i ON i.key = v.key JOIN encoders e ON "
                      "e.num = v.encoder WHERE e.spec = ? AND v.part = 0", (spec,)).fetchall()
    db.close()
    dtype = np.uint8 if "+itq" in spec else np.float32
    return {item: np.frombuffer(vec, dtype) for item, vec in rows}


def keys_by_id(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path / "catalog.sqlite")
    out = {item: key for item, key in db.execute("SELECT id, key FROM items")}
    db.close()
    return out


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path / "cat", ENC)
    c.add_many(colour_families(300))
    c.fit_hasher("itq", 64)
    yield c
    c.close()


def sketch_encoder(cat: Catalog) -> SketchEncoder:
    found = [e for e in cat.info()["encoders"] if e["spec"] == SKETCH]
    assert len(found) == 1
    enc = cat._set.sketch_of(next(n for n, e in cat._set if e.spec == ENC))
    assert enc is not None
    return enc[1]


def test_every_item_has_its_sketch_and_keeps_it_through_changes(cat: Catalog) -> None:
    enc = sketch_encoder(cat)
    assert enc.basis.shape == (1024, 128)
    np.testing.assert_allclose(enc.basis.T @ enc.basis, np.eye(128), atol=1e-4)  # orthonormal columns

    def check() -> None:
        basis = sketch_encoder(cat).basis
        floats, sketches = stored(cat.path, ENC), stored(cat.path, SKETCH)
        assert sorted(sketches) == sorted(floats) == sorted(i.id for i in cat.list(limit=1000))
        for item, vec in floats.items():
            np.testing.assert_allclose(sketches[item], vec @ basis, atol=1e-5)

    check()
    first, second = [i.id for i in cat.list(limit=2)]
    cat.add_many(colour_families(7, seed=5))  # added after the fit
    cat.update(first, image=colour_families(1, seed=6)[0])  # replaced
    cat.remove(second)
    check()
    cat.fit_hasher("itq", 64, random_state=1)  # a refit fits the sketch again (another sample): still one
    check()
    assert not np.array_equal(sketch_encoder(cat).basis, enc.basis)


def test_the_search_is_codes_then_sketch_then_exact_on_the_few(cat: Catalog) -> None:
    """The catalogue's answer equals the stages done here by hand from the stored vectors."""
    assert isinstance(cat.encoder, HashedEncoder) and cat.encoder.spec == CODES
    sketch = sketch_encoder(cat)
    keys = keys_by_id(cat.path)
    ids = sorted(keys, key=keys.get)  # type: ignore[arg-type]
    key_arr = np.array([keys[i] for i in ids])
    floats = np.stack([stored(cat.path, ENC)[i] for i in ids])
    codes = np.stack([stored(cat.path, CODES)[i] for i in ids])
    hashed = HashedIndex(cat.encoder.hasher, codes=BinaryFlatIndex(64))
    hashed.codes.add(key_arr, codes)
    queries = colour_families(12, seed=11)
    for depth in (SKETCHED_RERANK, 15):
        pool_size = max(SKETCH_POOL, 10 * depth)
        for query in queries:
            q = cat.pipeline.encode([cat.pipeline.decode(query)], encoder=ENC).vectors
            pool = hashed.search(q, min(pool_size, len(ids))).keys[0]
            pool = pool[pool >= 0]
            rows = np.searchsorted(key_arr, pool)
            scores = (floats[rows] @ sketch.basis) @ (q[0] @ sketch.basis)
            best = rows[np.lexsort((pool, -scores.astype(np.float64)))[:depth]]
            exact = floats[best] @ q[0]
            want = [ids[r] for r in best[np.lexsort((key_arr[best], -exact.astype(np.float64)))][:10]]
            got = cat.search(query, k=10, rerank=depth if depth != SKETCHED_RERANK else None)
            assert [h.id for h in got] == want
            assert [h.score for h in got] == pytest.approx(sorted(exact.tolist(), reverse=True)[:10], abs=1e-5)


def test_the_sketch_reloads_and_small_encoders_get_none(cat: Catalog, tmp_path: Path) -> None:
    basis = sketch_encoder(cat).basis
    query = colour_families(1, seed=21)[0]
    before = [h.id for h in cat.search(query, k=10)]
    cat.close()
    with Catalog(tmp_path / "cat") as again:
        np.testing.assert_array_equal(sketch_encoder(again).basis, basis)
        assert [h.id for h in again.search(query, k=10)] == before
        exact = [h.id for h in again.search(query, k=10, encoder=ENC)]
        assert len(set(before) & set(exact)) >= 8  # the three stages find most of the exact top 10
    with Catalog(tmp_path / "small", "pixels:size=8") as small:  # 64 dims: read whole, no sketch
        small.add_many(colour_families(100))
        small.fit_hasher("itq", 32)
        assert [e["spec"] for e in small.info()["encoders"]] == ["pixels:size=8+itq:32", "pixels:size=8"]
