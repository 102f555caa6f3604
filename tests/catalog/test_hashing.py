"""Learned binary codes inside the catalogue: fit on its vectors, search by Hamming, re-rank by exact cosine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from synthetic_images import colour_families

from lookalike.catalog import Catalog
from lookalike.cli import main
from lookalike.encoders import get_encoder
from lookalike.errors import CatalogError, IncompatibleCatalogError, InvalidParameterError
from lookalike.hashing import get_hasher

ENC = "pixels:size=8"


_images = colour_families


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path / "cat", ENC)
    for i, img in enumerate(_images(80)):
        c.add(img, id=f"i{i}", metadata={"family": i % 4})
    yield c
    c.close()


def test_fit_makes_the_codes_the_default_search_re_ranked(cat: Catalog) -> None:
    hashed = cat.fit_hasher("itq", 16)
    assert hashed.spec == f"{ENC}+itq:16" and cat.encoder.spec == hashed.spec
    query = _images(1, seed=5)[0]
    # By default the codes' candidates (all 80 here: fewer than the default depth) are re-ranked by exact cosine,
    # so the answer is the exact float search's; rerank=0 is the codes' own Hamming order.
    exact = cat.search(query, k=10, encoder=ENC)
    default = cat.search(query, k=10)
    assert [h.id for h in default] == [h.id for h in exact]
    assert [h.score for h in default] == pytest.approx([h.score for h in exact], abs=1e-6)
    hits = cat.search(query, k=10, rerank=0)
    codes = hashed.encode_pil(_images(80))
    q = hashed.encode_pil([query])[0]
    dist = np.unpackbits(codes ^ q, axis=1).sum(axis=1)
    order = np.lexsort((np.arange(80), dist))[:10]
    assert [h.id for h in hits] == [f"i{j}" for j in order]
    assert [h.distance for h in hits] == dist[order].tolist()


def test_rerank_of_every_candidate_equals_exact_float_search(cat: Catalog) -> None:
    cat.fit_hasher("itq", 16)
    query = _images(1, seed=7)[0]
    exact = cat.search(query, k=10, encoder=ENC)
    assert [h.id for h in cat.search(query, k=10, rerank=80)] == [h.id for h in exact]
    partial = cat.search(query, k=10, rerank=20)
    assert len(partial) == 10 and all(-1.0 <= h.score <= 1.0 for h in partial)
    assert [h.score for h in partial] == sorted((h.score for h in partial), reverse=True)
    filtered = cat.search(query, k=5, rerank=80, where={"family": 2})
    assert [h.id for h in filtered] == [h.id for h in cat.search(query, k=5, encoder=ENC, where={"family": 2})]
    similar = cat.similar("i3", k=5, rerank=80)
    assert [h.id for h in similar] == [h.id for h in cat.similar("i3", k=5, encoder=ENC)]


def test_rerank_candidates_are_the_best_by_asymmetric_score(cat: Catalog) -> None:
    """The re-ranked pool is the ``depth`` codes with the highest sum_j p_j (2 b_j - 1), p the query's projection,
    not the ``depth`` nearest in Hamming distance; the pool is then ordered by exact cosine."""
    hashed = cat.fit_hasher("itq", 16)
    images = _images(80)
    floats = get_encoder(ENC).encode_pil(images)
    query = _images(1, seed=11)[0]
    q = get_encoder(ENC).encode_pil([query])
    p = hashed.hasher.project(q)[0].astype(np.float64)  # type: ignore[attr-defined]
    signs = np.unpackbits(hashed.codes_of(floats), axis=1).astype(np.float64) * 2 - 1
    pool = np.lexsort((np.arange(80), -(signs @ p)))[:12]
    cosine = floats[pool] @ q[0]
    expected = [f"i{j}" for j in pool[np.lexsort((pool, -cosine))][:5]]
    assert [h.id for h in cat.search(query, k=5, rerank=12)] == expected
    hamming_pool = np.lexsort((np.arange(80), np.unpackbits(hashed.codes_of(floats) ^ hashed.codes_of(q), axis=1)
                                .sum(axis=1)))[:12]
    assert set(pool) != set(hamming_pool)  # the two candidate rules differ here, so the test tells them apart


def test_items_added_after_the_fit_get_codes_and_the_fit_persists(cat: Catalog, tmp_path: Path) -> None:
    cat.fit_hasher("lsh", 32, random_state=3)
    extra = _images(3, seed=9)
    cat.add(extra[0], id="late")
    assert cat.search(extra[0], k=1)[0].id == "late"
    info = {e["spec"]: e["vectors"] for e in cat.info()["encoders"]}
    assert info == {f"{ENC}+lsh:32": 81, ENC: 81}
    with Catalog(tmp_path / "cat") as again:
        assert again.encoder.spec == f"{ENC}+lsh:32"
        assert again.search(extra[0], k=1)[0].id == "late"
        assert again.search(extra[0], k=1, encoder=ENC)[0].id == "late"
    cat.fit_hasher("lsh", 32, random_state=3)  # refit replaces codes, does not duplicate them
    db = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM hashers").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM vectors").fetchone()[0] == 2 * 81
    db.close()


def test_a_hasher_with_options_is_stored_under_its_canonical_spec(cat: Catalog, tmp_path: Path) -> None:
    hashed = cat.fit_hasher("adapt: ridge=0.5 ,k=5", 16)
    assert hashed.spec == f"{ENC}+adapt:16,k=5,ridge=0.5" and cat.encoder.spec == hashed.spec
    floats = get_encoder(ENC).encode_pil(_images(80))  # the reference: the same hasher fitted outside the catalogue
    reference = get_hasher("adapt", n_bits=16, k=5, ridge=0.5, random_state=0).fit(floats)
    assert np.array_equal(hashed.codes_of(floats), reference.transform(floats))
    assert cat.find_hashed("adapt:k=5,ridge=0.5", 16) is not None  # any spelling of the same setting
    assert cat.find_hashed("adapt", 16) is None and cat.find_hashed("adapt:k=5,ridge=0.5", 32) is None
    assert cat.fit_hasher("adapt:k=30", 16).spec == f"{ENC}+adapt:16"  # the default k: the plain name
    with Catalog(tmp_path / "cat") as again:  # both fits persist, each with its options
        by_spec = {e.spec: e for e in again.encoders}
        assert by_spec[f"{ENC}+adapt:16,k=5,ridge=0.5"].hasher.k == 5  # type: ignore[attr-defined]
        assert by_spec[f"{ENC}+adapt:16"].hasher.k == 30  # type: ignore[attr-defined]
        top = again.search(_images(80)[3], k=1, encoder=f"{ENC}+adapt:16,k=5,ridge=0.5")
        assert top[0].id == "i3"
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        cat.fit_hasher("adapt:k=0", 16)


def test_bad_uses_are_refused(cat: Catalog, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="rerank"):
        cat.search(_images(1)[0], rerank=10)
    cat.search(_images(1)[0], rerank=0)  # 0 is "no re-ranking", allowed even without codes... and with them
    cat.fit_hasher("itq", 16)
    assert cat.search(_images(1)[0], rerank=0)
    for depth in (-1, 10**9, 2.5, True, "10"):
        with pytest.raises(InvalidParameterError, match="rerank"):
            cat.search(_images(1)[0], rerank=depth)
    with pytest.raises(InvalidParameterError):
        cat.fit_hasher("itq", 12)
    with pytest.raises(InvalidParameterError):
        cat.fit_hasher("nonsense", 16)
    with pytest.raises(IncompatibleCatalogError):
        cat.search(_images(1)[0], encoder="pixels+itq:64")
    with Catalog(tmp_path / "tiny", ENC) as tiny:
        tiny.add(_images(1)[0])
        with pytest.raises(CatalogError, match="at least 2"):
            tiny.fit_hasher("itq", 16)
    with Catalog(tmp_path / "binary", "phash") as binary, pytest.raises(InvalidParameterError, match="float"):
        binary.fit_hasher("itq", 16)


def test_cli_index_hash_and_search_rerank(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, img in enumerate(_images(40)):
        img.save(folder / f"p{i:02d}.png")
    catalog = tmp_path / "c"
    assert main(["index", str(folder), "--catalog", str(catalog), "--encoder", ENC, "--hash", "itq",
                 "--bits", "16"]) == 0
    assert f"searching {ENC}+itq:16" in capsys.readouterr().out
    assert main(["search", str(folder / "p05.png"), "--catalog", str(catalog), "-k", "3", "--rerank", "40",
                 "--json"]) == 0
    out = capsys.readouterr().out
    assert '"id": "p05.png"' in out.split("results")[1].split("}")[0]
    assert main(["index", str(folder), "--catalog", str(catalog), "--hash", "adapt:k=5", "--bits", "16"]) == 0
    assert f"searching {ENC}+adapt:16,k=5" in capsys.readouterr().out
    with Catalog(catalog) as cat:
        assert cat.encoder.hasher.k == 5  # type: ignore[attr-defined]
    enc = get_encoder(ENC)
    assert enc.spec == ENC
