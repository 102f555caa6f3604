"""The catalogue under concurrent writers: a remove that races an add or a "more like this" read.

Each test opens the race window on purpose (a hook inside the first call starts the remove in another thread and
gives it half a second), so without the locking the remove lands in the window every time; with it, the remove
waits for the first call and the catalogue stays consistent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.errors import ItemNotFoundError

ENC = "pixels:size=8"
_WINDOW = 0.5  # seconds the racing thread gets inside the window


def _img(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((24, 24))


def _race(action: Callable[[], Any]) -> threading.Thread:
    """Run ``action`` in a thread and give it up to ``_WINDOW`` seconds before going on (it may be blocked)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except ItemNotFoundError as err:  # removed already: not what these tests look at
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(_WINDOW)
    return thread


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    rng = np.random.default_rng(0)
    with Catalog(tmp_path / "cat", encoder=ENC) as c:
        for i in range(6):
            c.add(_img(rng), id=f"i{i}")
        c.search(_img(rng), k=1)  # loads the index, so that adds update it in memory
        yield c


def test_remove_racing_an_add_leaves_no_stray_vector(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    indexes = cat._indexes  # internal: the in-memory indexes the writer updates after each commit
    original = indexes.add
    threads: list[threading.Thread] = []

    def hooked(keys: Any, vectors: Any) -> None:
        new_id = cat.items_by_key([int(keys[0])])[int(keys[0])].id
        threads.append(_race(lambda: cat.remove(new_id)))  # committed, not yet in the index: the old gap
        original(keys, vectors)

    monkeypatch.setattr(indexes, "add", hooked)
    cat.add(_img(np.random.default_rng(1)), id="new")
    threads[0].join(10)
    assert not threads[0].is_alive()
    assert "new" not in cat
    assert sorted(cat.vector_index().keys().tolist()) == sorted(i.key for i in cat.list(limit=1000))


class _HookedRows(dict):  # type: ignore[type-arg]
    """The index's key -> row map, calling ``hook`` once right after the row of ``key`` is looked up."""

    def __init__(self, rows: dict[int, int], key: int, hook: Callable[[], None]) -> None:
        super().__init__(rows)
        self.key, self.hook = key, hook

    def get(self, key: Any, default: Any = None) -> Any:
        row = super().get(key, default)
        if key == self.key and self.hook is not None:
            hook, self.hook = self.hook, None  # type: ignore[assignment]
            hook()
        return row


def test_similar_reads_its_vector_under_the_lock(cat: Catalog) -> None:
    num = cat._set.default[0]  # internal: the default encoder's number and its loaded index
    index = cat._indexes.get(num)
    key = cat.get("i0").key
    expected = index.get(key)
    threads: list[threading.Thread] = []
    index._row_of = _HookedRows(index._row_of, key, lambda: threads.append(_race(lambda: cat.remove("i0"))))
    try:
        got = cat._engine.vectors_of(num, [key], ["i0"])  # what similar("i0") searches with
    except ItemNotFoundError:
        got = None
    threads[0].join(10)
    assert not threads[0].is_alive() and "i0" not in cat
    # without the lock the remove moved the last row into i0's row between the lookup and the read
    assert got is not None and np.array_equal(got[0], expected)


@pytest.mark.slow
def test_two_index_runs_of_one_folder_at_once_agree(tmp_path: Path) -> None:
    """Issue 11.8: two concurrent ``lookalike index`` runs printed 300 "id already used by <the same path>" lines.
    A file the other run added meanwhile is now unchanged (or updated), never skipped."""
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(300):
        _img(rng).save(photos / f"p{i:03d}.png")
    Catalog(tmp_path / "cat", ENC).close()
    code = "import sys; from lookalike.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "--catalog", str(tmp_path / "cat"), "index", str(photos)]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "already used" not in out + err and "0 skipped" in out, out
    with Catalog(tmp_path / "cat") as cat:
        assert len(cat) == 300 and len(cat.vector_index()) == 300
