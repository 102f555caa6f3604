"""The catalogue: add/get/update/remove/list, incremental folder indexing, exact search against brute force."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from milvus_server import milvus_uri
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.encoders import get_encoder
from lookalike.errors import (
    CatalogError,
    DuplicateItemError,
    IncompatibleCatalogError,
    InvalidParameterError,
    InvalidRegionError,
    ItemNotFoundError,
    NotAnImageError,
    TruncatedImageError,
)

ENC = "pixels:size=8"


def _img(rng: np.random.Generator, size: int = 24) -> Image.Image:
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _folder(root: Path, rng: np.random.Generator, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = root / f"sub{i % 3}" / f"img{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        _img(rng).save(p)
        paths.append(p)
    return paths


@pytest.fixture(params=["Flat", "IDMap2,Flat", "milvus"])
def index_spec(request: pytest.FixtureRequest) -> str:
    """Every CRUD and search test runs on the built-in flat index, on a faiss IndexIDMap2 backend, chosen by
    factory string, and on Milvus Lite as the catalogue's external backend: the catalogue only sees the
    VectorIndex protocol."""
    return str(request.param)


def _open(path: Path, encoder: str, index_spec: str) -> Catalog:
    if index_spec == "milvus":
        return Catalog(path, encoder, backend=milvus_uri())
    return Catalog(path, encoder, index=index_spec)


@pytest.fixture
def cat(tmp_path: Path, index_spec: str) -> Catalog:
    c = _open(tmp_path / "cat", ENC, index_spec)
    yield c
    c.close()


# -- items ------------------------------------------------------------------------------------------------------


def test_add_get_update_remove_round_trip(cat: Catalog, rng: np.random.Generator, tmp_path: Path) -> None:
    f = tmp_path / "shoe.png"
    _img(rng).save(f)
    item = cat.add(f, metadata={"colour": "red", "price": 10})
    assert item.id == "shoe.png" and item.path == str(f.absolute()) and item.width == 24
    assert cat.get("shoe.png").metadata == {"colour": "red", "price": 10}
    second = cat.add(f)  # same file name again: a free id is chosen
    assert second.id == "shoe.png-2"
    named = cat.add(_png(_img(rng)), id="bytes-item")
    assert named.path is not None and Path(named.path).is_relative_to((tmp_path / "cat" / "images").absolute())
    assert Path(named.path).exists()
    assert cat.count() == 3 and "bytes-item" in cat

    updated = cat.update("shoe.png", metadata={"colour": "blue"})
    assert updated.metadata == {"colour": "blue"} and updated.sha256 == item.sha256
    replaced = cat.update("bytes-item", image=_png(_img(rng)))
    assert replaced.sha256 != named.sha256 and not Path(named.path).exists()  # the old copy is gone

    cat.remove("bytes-item")
    assert "bytes-item" not in cat and cat.count() == 2
    with pytest.raises(ItemNotFoundError):
        cat.get("bytes-item")
    with pytest.raises(ItemNotFoundError):
        cat.remove("bytes-item")
    assert cat.remove_many(["shoe.png", "nope"]) == ["shoe.png"]


def test_duplicate_id_is_refused_and_nothing_changes(cat: Catalog, rng: np.random.Generator) -> None:
    cat.add(_img(rng), id="a", metadata={"v": 1})
    with pytest.raises(DuplicateItemError):
        cat.add(_img(rng), id="a", metadata={"v": 2})
    assert cat.get("a").metadata == {"v": 1} and cat.count() == 1


@pytest.mark.parametrize("meta", [[1, 2], {"k": {1, 2}}, {"k": float("nan")}, {1: "x"}, "text"])
def test_bad_metadata_is_refused(cat: Catalog, rng: np.random.Generator, meta: object) -> None:
    with pytest.raises(InvalidParameterError):
        cat.add(_img(rng), metadata=meta)  # type: ignore[arg-type]
    assert cat.count() == 0


@pytest.mark.parametrize("bad_id", ["", "a\nb", "x" * 2000, 5, None])
def test_bad_ids_are_refused(cat: Catalog, bad_id: object) -> None:
    with pytest.raises(InvalidParameterError):
        cat.get(bad_id)  # type: ignore[arg-type]


def test_bad_image_raises_and_loses_nothing(cat: Catalog, rng: np.random.Generator, tmp_path: Path) -> None:
    cat.add(_img(rng), id="keep")
    (tmp_path / "fake.png").write_bytes(b"hello")
    with pytest.raises(NotAnImageError, match="fake.png"):
        cat.add(tmp_path / "fake.png")
    with pytest.raises(TruncatedImageError):
        cat.add(_png(_img(rng))[:200])
    assert cat.count() == 1 and len(cat.search_vectors(get_encoder(ENC).encode(_img(rng)), k=5)[0]) == 1


def test_list_pages_and_filters(cat: Catalog, rng: np.random.Generator) -> None:
    for i in range(7):
        cat.add(_img(rng), id=f"i{i}", metadata={"even": i % 2 == 0, "n": i, "tag": "t" if i < 3 else "u"})
    assert [i.id for i in cat.list(limit=3)] == ["i0", "i1", "i2"]
    assert [i.id for i in cat.list(offset=5)] == ["i5", "i6"]
    assert [i.id for i in cat.list(where={"tag": "t", "even": True})] == ["i0", "i2"]
    assert cat.count(where={"n": 4}) == 1
    with pytest.raises(InvalidParameterError):
        cat.list(where={'x"); DROP TABLE items; --': 1})
    with pytest.raises(InvalidParameterError):
        cat.list(where={"tag": ["t"]})
    for huge in (10**24, -(2**63) - 1, 2**63):  # issue 11: SQLite's OverflowError was a traceback
        for call in (cat.list, cat.count):
            with pytest.raises(InvalidParameterError, match="64-bit range"):
                call(where={"n": huge})
        with pytest.raises(InvalidParameterError, match="64-bit range"):
            cat.search(_img(rng), k=3, where={"n": huge})
    assert cat.count(where={"n": 2**63 - 1}) == 0 and cat.count(where={"n": -(2**63)}) == 0
    with pytest.raises(InvalidParameterError):
        cat.list(limit=-1)
    assert cat.count() == 7


# -- search -----------------------------------------------------------------------------------------------------


def test_float_search_equals_brute_force(cat: Catalog, rng: np.random.Generator) -> None:
    imgs = [_img(rng) for _ in range(60)]
    for i, img in enumerate(imgs):
        cat.add(img, id=f"i{i}", metadata={"half": i % 2})
    enc = get_encoder(ENC)
    db = enc.encode_pil(imgs)
    for q in [_img(rng) for _ in range(5)]:
        scores = db @ enc.encode_pil([q])[0]
        order = np.lexsort((np.arange(60), -scores))[:7]
        hits = cat.search(q, k=7)
        assert [h.id for h in hits] == [f"i{j}" for j in order]
        np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)
        np.testing.assert_allclose([h.distance for h in hits], 1 - scores[order], atol=1e-5)
        filtered = cat.search(q, k=7, where={"half": 1})
        odd = [j for j in np.lexsort((np.arange(60), -scores)) if j % 2 == 1][:7]
        assert [h.id for h in filtered] == [f"i{j}" for j in odd]


def test_binary_search_equals_brute_force_hamming(tmp_path: Path, rng: np.random.Generator, index_spec: str) -> None:
    imgs = [_img(rng, 48) for _ in range(40)]
    with _open(tmp_path / "c", "phash", index_spec) as cat:
        for i, img in enumerate(imgs):
            cat.add(img, id=f"i{i}")
        enc = get_encoder("phash")
        codes = enc.encode_pil(imgs)
        q = enc.encode_pil([imgs[3]])[0]
        dist = np.unpackbits(codes ^ q, axis=1).sum(axis=1)
        order = np.lexsort((np.arange(40), dist))[:10]
        hits = cat.search(imgs[3], k=10)
        assert [h.id for h in hits] == [f"i{j}" for j in order]
        assert hits[0].id == "i3" and hits[0].distance == 0 and hits[0].score == 1.0
        assert [h.distance for h in hits] == dist[order].tolist()


def test_similar_excludes_the_item_itself(cat: Catalog, rng: np.random.Generator) -> None:
    for i in range(10):
        cat.add(_img(rng), id=f"i{i}")
    hits = cat.similar("i4", k=3)
    assert len(hits) == 3 and "i4" not in [h.id for h in hits]
    with pytest.raises(ItemNotFoundError):
        cat.similar("nope")


def test_k_larger_than_catalogue_and_bad_k(cat: Catalog, rng: np.random.Generator) -> None:
    cat.add(_img(rng), id="only")
    assert [h.id for h in cat.search(_img(rng), k=50)] == ["only"]
    for k in (0, -3, 10**9, 2.5, True):
        with pytest.raises(InvalidParameterError):
            cat.search(_img(rng), k=k)  # type: ignore[arg-type]


def test_region_search_uses_the_box(cat: Catalog, rng: np.random.Generator) -> None:
    left, right = _img(rng, 32), _img(rng, 32)
    cat.add(left, id="left")
    cat.add(right, id="right")
    both = Image.new("RGB", (64, 32))
    both.paste(left, (0, 0))
    both.paste(right, (32, 0))
    assert cat.search(both, k=1, box="0,0,32,32")[0].id == "left"
    assert cat.search(both, k=1, box="32,0,32,32")[0].id == "right"
    with pytest.raises(InvalidRegionError):
        cat.search(both, box="100,100,5,5")
    with pytest.raises(InvalidParameterError):
        cat.search(both, box="1,2,3")


# -- folders ----------------------------------------------------------------------------------------------------


def test_index_folder_is_incremental(cat: Catalog, rng: np.random.Generator, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    paths = _folder(root, rng, 12)
    first = cat.index_folder(root)
    assert len(first.added) == 12 and not first.skipped and cat.count() == 12
    assert "sub0/img000.png" in cat

    again = cat.index_folder(root)
    assert len(again.unchanged) == 12 and not again.added and not again.updated

    _img(rng).save(paths[0])  # changed content
    paths[1].unlink()  # vanished
    paths[2].rename(root / "moved.png")  # moved: same content, new path → reuses vectors
    (root / "notes.txt").write_text("not an image, ignored")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    report = cat.index_folder(root)
    assert report.updated == ["sub0/img000.png"]
    assert sorted(report.removed) == ["sub1/img001.png", "sub2/img002.png"]
    assert report.added == ["moved.png"]
    assert [s.source for s in report.skipped] == [str((root / "broken.jpg").absolute())]
    assert cat.count() == 11
    new_vec = get_encoder(ENC).encode(paths[0])
    assert cat.search_vectors(new_vec, k=1)[0][0].id == "sub0/img000.png"


def test_bad_files_do_not_stop_a_batch(cat: Catalog, rng: np.random.Generator, tmp_path: Path) -> None:
    good = [tmp_path / f"g{i}.png" for i in range(5)]
    for p in good:
        _img(rng).save(p)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    sources = [good[0], tmp_path / "empty.png", good[1], tmp_path / "missing.png", b"junk", *good[2:],
               tmp_path / "text.png"]
    report = cat.add_many(sources)
    assert len(report.added) == 5 and len(report.skipped) == 4
    assert all(s.reason for s in report.skipped)
    assert cat.count() == 5


def test_catalogue_reopens_and_other_connections_see_changes(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "cat"
    with Catalog(path, ENC) as a:
        a.add(_img(rng), id="x")
        b = Catalog(path)
        assert b.encoder.spec == ENC and b.count() == 1
        assert [h.id for h in b.search(_img(rng), k=5)] == ["x"]  # b loads its index
        a.add(_img(rng), id="y")  # committed by another connection
        assert {h.id for h in b.search(_img(rng), k=5)} == {"x", "y"}  # b notices and reloads
        a.remove("x")
        assert [h.id for h in b.search(_img(rng), k=5)] == ["y"]
        b.close()


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalogue"):
        Catalog(tmp_path / "absent", create=False)
    Catalog(tmp_path / "c", ENC).close()
    with pytest.raises(IncompatibleCatalogError):
        Catalog(tmp_path / "c", "phash")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError):
        Catalog(junk)


def test_several_encoders_in_one_catalogue(tmp_path: Path, rng: np.random.Generator) -> None:
    imgs = [_img(rng, 48) for _ in range(8)]
    with Catalog(tmp_path / "c", ENC, extra_encoders=["phash"]) as cat:
        for i, img in enumerate(imgs):
            cat.add(img, id=f"i{i}")
        assert cat.search(imgs[5], k=1, encoder="phash")[0].id == "i5"
        assert cat.search(imgs[5], k=1)[0].id == "i5"
        info = cat.info()
        assert [e["vectors"] for e in info["encoders"]] == [8, 8]
    db = sqlite3.connect(tmp_path / "c" / "catalog.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


@pytest.mark.parametrize("extra", [(), ("phash",), ("phash", "pixels:size=4")])
def test_a_catalogue_image_searched_by_itself_scores_one(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """One decode recipe for ingest and query: an 800x800 JPEG of the catalogue finds itself at 1.0 whatever
    extra encoders the catalogue keeps (they used to change how ingest decoded it: 0.9999956)."""
    from skimage_photos import data_photo

    jpeg = tmp_path / "photo.jpg"
    data_photo("astronaut.png", 512).resize((800, 800)).save(jpeg, quality=90)
    with Catalog(tmp_path / "c", "efficientnet-lite0", extra_encoders=list(extra)) as cat:
        cat.add(jpeg, id="me")
        cat.add(data_photo("coffee.png", 640), id="other")
        hit = cat.search(jpeg, k=1)[0]
        assert hit.id == "me" and hit.score == pytest.approx(1.0, abs=1e-6) and 0.0 <= hit.distance < 1e-6
        assert hit.score <= 1.0  # clamped: float32 rounding no longer gives 1.0000004


def test_an_unknown_index_spec_is_refused_on_open(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="Valid specs"):
        Catalog(tmp_path / "c", ENC, index="HNSW32")
