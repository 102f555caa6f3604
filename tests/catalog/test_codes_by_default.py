"""A large catalogue searches by learned codes by itself, re-ranks from vectors read from the store (never loading
every float vector), and keeps exact float search one argument away."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_images import colour_families

from lookalike.catalog import Catalog, _hashing
from lookalike.catalog._stored import StoredVectors
from lookalike.cli import main
from lookalike.encoders.hashed import HashedEncoder
from lookalike.errors import CatalogError, InvalidParameterError, ItemNotFoundError
from lookalike.index import FloatFlatIndex

ENC = "pixels:size=8"


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path / "cat", ENC)
    c.put_setting("search.codes_at", "60")
    yield c
    c.close()


def test_past_codes_at_the_catalogue_learns_codes_and_stays_exact_by_default(cat: Catalog) -> None:
    cat.add_many(colour_families(50))
    assert not isinstance(cat.encoder, HashedEncoder)  # 50 < 60: still the float search
    cat.add_many(colour_families(30, seed=3))
    assert isinstance(cat.encoder, HashedEncoder) and cat.encoder.spec == f"{ENC}+itq:64"
    query = colour_families(1, seed=9)[0]
    exact = cat.search(query, k=10, encoder=ENC)
    default = cat.search(query, k=10)  # 80 candidates < the default depth: the exact answer, from the codes
    assert [h.id for h in default] == [h.id for h in exact]
    assert [h.score for h in default] == pytest.approx([h.score for h in exact], abs=1e-6)
    codes_only = cat.search(query, k=10, rerank=0)
    assert all(h.distance == round(h.distance) for h in codes_only)  # Hamming distances in bits
    assert cat.learn_codes_if_large() is None  # once is enough


def test_the_re_ranked_search_does_not_load_the_float_index(tmp_path: Path, cat: Catalog) -> None:
    cat.add_many(colour_families(80))
    path = cat.path
    cat.close()
    with Catalog(path) as fresh:
        query = colour_families(1, seed=4)[0]
        hits = fresh.search(query, k=5)
        assert len(hits) == 5
        indexes = fresh._indexes
        float_num = next(n for n, e in fresh._set if e.spec == ENC)
        assert indexes.loaded(float_num) is None  # the refine read 80 vectors from the store, loaded none
        exact = fresh.search(query, k=5, encoder=ENC)  # the exact search loads it, on demand
        assert indexes.loaded(float_num) is not None
        assert [h.id for h in fresh.search(query, k=5)] == [h.id for h in exact]  # now refined from memory
    with Catalog(path) as again:  # "more like this" re-ranks by the item's float vector, read from the store
        similar = again.similar(again.list(limit=1)[0].id, k=5)
        assert len(similar) == 5
        float_num = next(n for n, e in again._set if e.spec == ENC)
        assert again._indexes.loaded(float_num) is None


def test_an_encoder_too_small_for_64_bits_never_fits(tmp_path: Path) -> None:
    with Catalog(tmp_path / "tiny", "pixels:size=4") as tiny:  # 16 dimensions: ITQ-64 cannot be learned
        tiny.put_setting("search.codes_at", "20")
        report = tiny.add_many(colour_families(30))
        assert len(report.added) == 30 and not isinstance(tiny.encoder, HashedEncoder)


def test_codes_at_off_and_read_only_catalogues_never_fit(tmp_path: Path) -> None:
    with Catalog(tmp_path / "off", ENC) as off:
        off.put_setting("search.codes_at", "off")
        off.add_many(colour_families(30))
        assert off.learn_codes_if_large() is None and not isinstance(off.encoder, HashedEncoder)
    with Catalog(tmp_path / "small", ENC) as small:
        small.add_many(colour_families(30))  # default threshold: far away
        assert not isinstance(small.encoder, HashedEncoder)
        small.put_setting("search.codes_at", "20")
    with Catalog(tmp_path / "small", read_only=True) as ro:
        assert ro.learn_codes_if_large() is None and not isinstance(ro.encoder, HashedEncoder)
    assert _hashing.codes_threshold(None) == _hashing.CODES_AT
    assert _hashing.codes_threshold("off") is None and _hashing.codes_threshold("0") is None
    assert _hashing.codes_threshold("junk") == _hashing.CODES_AT and _hashing.codes_threshold("1") == _hashing.CODES_AT
    assert _hashing.codes_threshold("-5") == _hashing.CODES_AT and _hashing.codes_threshold("2") == 2


def test_a_large_catalogue_fits_on_a_sample_and_hashes_every_item(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(_hashing, "FIT_SAMPLE", 25)
    monkeypatch.setattr(_hashing, "_PAGE", 7)  # pages of 7: the hashing loop crosses many page boundaries
    with Catalog(tmp_path / "c", ENC) as c:
        c.add_many(colour_families(80))
        hashed = c.fit_hasher("itq", 16)
        index = c.vector_index(hashed.spec)
        assert len(index) == 80
        floats = c.vector_index(ENC)
        keys = floats.keys()
        vectors, present = floats.vectors(keys)  # type: ignore[attr-defined]
        codes, _ = index.vectors(keys)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(codes, hashed.codes_of(vectors))
        assert present.all()


def test_stored_vectors_read_the_store_like_the_flat_index(cat: Catalog) -> None:
    cat.add_many(colour_families(40))
    num = next(n for n, e in cat._set if e.spec == ENC)
    enc = cat._set.by_num(num)
    stored = StoredVectors(cat._db, num, enc.dim, enc.dtype, "cosine")
    flat = cat.vector_index(ENC)
    keys = flat.keys()
    assert len(stored) == 40 and sorted(stored.keys().tolist()) == sorted(keys.tolist())
    assert int(keys[3]) in stored and 10**9 not in stored and "x" not in stored
    np.testing.assert_array_equal(stored.get(int(keys[3])), flat.get(int(keys[3])))  # type: ignore[attr-defined]
    ask = np.array([keys[5], 10**9, keys[5], -1, keys[0]])
    got, present = stored.vectors(ask)
    want, want_present = flat.vectors(ask)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(present, want_present)
    np.testing.assert_array_equal(got, want)
    queries = flat.vectors(keys[:3])[0]  # type: ignore[attr-defined]
    reference = FloatFlatIndex(enc.dim)
    reference.add(keys, flat.vectors(keys)[0])  # type: ignore[attr-defined]
    for k, allowed in ((5, None), (50, None), (4, keys[::3])):
        a, b = stored.search(queries, k, keys=allowed), reference.search(queries, k, keys=allowed)
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    with pytest.raises(ItemNotFoundError):
        stored.get(10**9)
    with pytest.raises(CatalogError, match="read-only view"):
        stored.add([1], queries[:1])
    with pytest.raises(CatalogError, match="read-only view"):
        stored.remove([1])


def test_rerank_values(cat: Catalog) -> None:
    cat.add_many(colour_families(80))
    query = colour_families(1, seed=2)[0]
    cat.put_setting("search.rerank", "0")  # the catalogue's default: the codes' own order
    assert [h.id for h in cat.search(query, k=5)] == [h.id for h in cat.search(query, k=5, rerank=0)]
    cat.put_setting("search.rerank", "12")
    assert [h.id for h in cat.search(query, k=5)] == [h.id for h in cat.search(query, k=5, rerank=12)]
    cat.put_setting("search.rerank", "nonsense")  # unreadable: the built-in default
    assert [h.id for h in cat.search(query, k=5)] == [h.id for h in cat.search(query, k=5, rerank=400)]
    for bad in (-1, 10**6, 1.5, "5", True):
        with pytest.raises(InvalidParameterError, match="rerank"):
            cat.search(query, k=5, rerank=bad)  # type: ignore[arg-type]


def test_cli_index_learns_codes_past_codes_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(colour_families(30)):
        image.save(folder / f"p{i:02d}.png")
    catalog = str(tmp_path / "cat")
    assert main(["--catalog", catalog, "index", str(folder), "--encoder", ENC, "--codes-at", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 30 and out["search"] == f"{ENC}+itq:64"
    assert main(["--catalog", catalog, "search", str(folder / "p03.png"), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits[0]["id"] == "p03.png" and hits[0]["score"] == pytest.approx(1.0, abs=1e-6)  # re-ranked: cosine
    for bad in ("1", "many", "-5"):
        assert main(["--catalog", catalog, "index", str(folder), "--codes-at", bad]) != 0
        assert "--codes-at takes an item count" in capsys.readouterr().err
