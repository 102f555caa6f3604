"""People's similarity judgements stored with the catalogue (issue 14, part 3): judge, replace, clear, forget,
count, the triplets they make, the CSV export, cascades on remove, and bad input that writes nothing."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.catalog.judgements import MAX_IDS
from lookalike.errors import InvalidParameterError, ItemNotFoundError, ReadOnlyCatalogError


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    rng = np.random.default_rng(3)
    root = tmp_path / "images"
    root.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / f"i{i}.png")
    c = Catalog(tmp_path / "cat", "pixels:size=8")
    c.index_folder(root)
    yield c
    c.close()


def _rows(cat: Catalog) -> list[tuple[str, str, bool]]:
    return [(j.reference, j.item, j.similar) for j in cat.judgements.list(limit=1000)]


def test_judgements_make_every_similar_by_not_similar_triplet(cat: Catalog) -> None:
    counts = cat.judgements.judge("i0.png", similar=["i1.png", "i2.png"], dissimilar=["i5.png", "i6.png", "i7.png"])
    assert counts == {"judgements": 5, "references": 1, "triplets": 6}
    cat.judgements.judge("i3.png", similar=["i4.png"])  # no negative yet: no triplet
    assert cat.judgements.counts() == {"judgements": 6, "references": 2, "triplets": 6}
    triplets = [(a.id, b.id, c.id) for a, b, c in cat.judgements.triplets()]
    assert triplets == [("i0.png", p, n) for p, n in itertools.product(["i1.png", "i2.png"],
                                                                        ["i5.png", "i6.png", "i7.png"])]
    assert cat.judgements.counts("i3.png") == {"judgements": 1, "references": 1, "triplets": 0}
    assert [j.item for j in cat.judgements.list("i0.png")] == ["i1.png", "i2.png", "i5.png", "i6.png", "i7.png"]
    assert all(j.added > 0 for j in cat.judgements.list())
    assert [j.to_dict()["item"] for j in cat.judgements.list(offset=1, limit=2)] == ["i2.png", "i5.png"]


def test_judging_again_replaces_and_clear_forgets(cat: Catalog) -> None:
    cat.judgements.judge("i0.png", similar=["i1.png"], dissimilar=["i2.png"])
    cat.judgements.judge("i0.png", dissimilar=["i1.png"], clear=["i2.png"])  # changed my mind
    assert _rows(cat) == [("i0.png", "i1.png", False)]
    cat.judgements.judge("i1.png", similar=["i0.png"])  # the relation is not symmetric: its own reference
    assert _rows(cat) == [("i0.png", "i1.png", False), ("i1.png", "i0.png", True)]
    assert cat.judgements.forget("i0.png") == 1
    assert _rows(cat) == [("i1.png", "i0.png", True)]
    cat.judgements.judge("i1.png", clear=["i5.png"])  # clearing what was never judged is fine
    assert cat.judgements.counts()["judgements"] == 1


def test_a_removed_item_takes_its_judgements_along(cat: Catalog) -> None:
    cat.judgements.judge("i0.png", similar=["i1.png"], dissimilar=["i2.png", "i3.png"])
    cat.judgements.judge("i4.png", similar=["i0.png"], dissimilar=["i2.png"])
    cat.remove("i2.png")
    assert _rows(cat) == [("i0.png", "i1.png", True), ("i0.png", "i3.png", False), ("i4.png", "i0.png", True)]
    cat.remove("i0.png")
    assert _rows(cat) == []
    cat.update("i1.png", metadata={"kind": "x"})  # an update keeps them (the item is the same item)
    cat.judgements.judge("i1.png", similar=["i3.png"])
    cat.update("i1.png", metadata={"kind": "y"})
    assert _rows(cat) == [("i1.png", "i3.png", True)]


def test_the_csv_export_is_what_train_triplet_reads(cat: Catalog) -> None:
    cat.judgements.judge("i0.png", similar=["i1.png"], dissimilar=["i5.png", "i6.png"])
    out = io.StringIO()
    assert cat.judgements.write_csv(out) == 2
    assert out.getvalue() == "query,positive,negative\ni0.png,i1.png,i5.png\ni0.png,i1.png,i6.png\n"
    out = io.StringIO()
    cat.judgements.write_csv(out, paths=True)
    rows = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    assert [[Path(p).name for p in row] for row in rows] == [["i0.png", "i1.png", "i5.png"],
                                                             ["i0.png", "i1.png", "i6.png"]]
    assert all(Path(p).is_file() for row in rows for p in row)


def test_judgements_survive_reopening(cat: Catalog, tmp_path: Path) -> None:
    cat.judgements.judge("i0.png", similar=["i1.png"], dissimilar=["i2.png"])
    cat.close()
    with Catalog(tmp_path / "cat") as again:
        assert again.judgements.counts() == {"judgements": 2, "references": 1, "triplets": 1}


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({}, InvalidParameterError, "at least one item id"),
    ({"similar": "i1.png"}, InvalidParameterError, "list of item ids"),
    ({"similar": [1]}, InvalidParameterError, "item id must be"),
    ({"similar": [""]}, InvalidParameterError, "item id must be"),
    ({"similar": ["x" * 2000]}, InvalidParameterError, "item id must be"),
    ({"similar": ["i1.png\x00"]}, InvalidParameterError, "item id must be"),
    ({"similar": ["i1.png"], "dissimilar": ["i1.png"]}, InvalidParameterError, "named twice"),
    ({"similar": ["i1.png", "i1.png"]}, InvalidParameterError, "named twice"),
    ({"similar": ["i2.png"], "clear": ["i2.png"]}, InvalidParameterError, "named twice"),
    ({"similar": ["i0.png"]}, InvalidParameterError, "against itself"),
    ({"similar": ["i1.png"], "dissimilar": ["nope.png"]}, ItemNotFoundError, "nope.png"),
    ({"similar": [f"n{i}" for i in range(MAX_IDS + 1)]}, InvalidParameterError, f"at most {MAX_IDS}"),
])
def test_bad_judgements_are_refused_and_write_nothing(cat: Catalog, kwargs: dict, error: type, words: str) -> None:
    cat.judgements.judge("i0.png", similar=["i3.png"])
    with pytest.raises(error, match=words):
        cat.judgements.judge("i0.png", **kwargs)
    assert _rows(cat) == [("i0.png", "i3.png", True)]


def test_an_unknown_reference_is_not_found(cat: Catalog) -> None:
    with pytest.raises(ItemNotFoundError, match="ghost"):
        cat.judgements.judge("ghost", similar=["i1.png"])
    for call in (lambda: cat.judgements.list("ghost"), lambda: cat.judgements.counts("ghost"),
                 lambda: cat.judgements.forget("ghost")):
        with pytest.raises(ItemNotFoundError):
            call()
    with pytest.raises(InvalidParameterError):
        cat.judgements.list(limit=-1)
    assert _rows(cat) == []


def test_the_database_refuses_what_the_checks_would(cat: Catalog, tmp_path: Path) -> None:
    """The table's own constraints hold even for a writer that bypasses the checks (an older or foreign tool)."""
    db = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")
    db.execute("PRAGMA foreign_keys=ON")
    key = db.execute("SELECT key FROM items WHERE id = 'i0.png'").fetchone()[0]
    for values in ((key, key, 1), (key, key + 1, 2), (key, 10**9, 1)):
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO judgements VALUES (?, ?, ?, 0)", values)
    db.close()


def test_a_read_only_catalogue_refuses_judgements(cat: Catalog, tmp_path: Path) -> None:
    cat.judgements.judge("i0.png", similar=["i1.png"])
    cat.close()
    with Catalog(tmp_path / "cat", read_only=True) as ro:
        assert ro.judgements.counts()["judgements"] == 1
        with pytest.raises(ReadOnlyCatalogError):
            ro.judgements.judge("i0.png", dissimilar=["i2.png"])
        with pytest.raises(ReadOnlyCatalogError):
            ro.judgements.forget("i0.png")
