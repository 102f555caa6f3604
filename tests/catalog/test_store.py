"""The store as a repository: typed rows, one transaction object for writes, many vectors per item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog import Item
from lookalike.catalog.store import NewItem, Store, metadata_json
from lookalike.errors import CatalogError, DuplicateItemError, InvalidParameterError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "cat", create=True)
    s.initialise([("pixels", "float", 4), ("phash", "binary", 64)])
    return s


def test_items_come_back_as_typed_rows(store: Store) -> None:
    with store.transaction() as tx:
        key = tx.insert_item("a", NewItem("/x/a.png", "ab" * 32, 10, 20), metadata_json({"k": 1}))
    item = store.item("a")
    assert isinstance(item, Item) and item.key == key and item.metadata == {"k": 1} and item.width == 10
    assert store.items_by_key([key, 999]) == {key: item}
    assert [e.spec for e in store.encoders()] == ["pixels", "phash"] and store.schema_version() == 5


def test_a_failing_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(DuplicateItemError), store.transaction() as tx:
        tx.insert_item("a", NewItem(None, "00" * 32, 1, 1), "{}")
        tx.insert_item("a", NewItem(None, "11" * 32, 1, 1), "{}")
    assert store.count() == 0
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_item("b", NewItem(None, "00" * 32, 1, 1), "{}")
        raise RuntimeError("boom")
    assert store.item("b") is None


def test_an_item_holds_many_vectors_of_one_encoder(store: Store) -> None:
    rng = np.random.default_rng(0)
    whole, regions = rng.random((1, 4), dtype=np.float32), rng.random((3, 4), dtype=np.float32)
    with store.transaction() as tx:
        key = tx.insert_item("a", NewItem(None, "00" * 32, 1, 1), "{}")
        tx.put_vectors(1, [key], whole)
        for part in range(1, 4):
            tx.put_vectors(1, [key], regions[part - 1 : part], part=part)
    parts = store.parts_of(1, key)
    assert sorted(parts) == [0, 1, 2, 3]
    assert np.array_equal(np.frombuffer(parts[2], dtype=np.float32), regions[1])
    (keys, blobs), = list(store.iter_vectors(1))  # the whole-image index reads part 0 only
    assert keys.tolist() == [key] and np.array_equal(np.frombuffer(blobs[0], dtype=np.float32), whole[0])
    with store.transaction() as tx:
        tx.delete_items(["a"])
    assert store.parts_of(1, key) == {} and store.vector_counts() == {}


def test_features_are_per_item_and_go_with_the_item(store: Store) -> None:
    with store.transaction() as tx:
        key = tx.insert_item("a", NewItem(None, "00" * 32, 1, 1), "{}")
        tx.put_features("f", {key: b"xyz", 12345: b"gone"})  # unknown keys are skipped
    assert store.features("f") == {key: b"xyz"} and store.features("f", [key, 7]) == {key: b"xyz"}
    with store.transaction() as tx:
        tx.delete_items(["a"])
    assert store.features("f") == {}


@pytest.mark.parametrize("where", [{"": 1}, {'a"b': 1}, {"a": [1]}, {"a": {"b": 1}}, ["a"]])
def test_bad_filters_are_refused(store: Store, where: object) -> None:
    with pytest.raises(InvalidParameterError):
        store.count(where)  # type: ignore[arg-type]


def test_no_connection_leaves_the_store(store: Store) -> None:
    public = [name for name in dir(store) if not name.startswith("_")]
    assert all("sqlite3" not in type(getattr(store, name)).__module__ for name in public)
    with store.transaction() as tx:
        assert all("sqlite3" not in type(getattr(tx, n)).__module__ for n in dir(tx) if not n.startswith("_"))


def test_a_missing_catalogue_is_not_created_unasked(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        Store(tmp_path / "none", create=False)
