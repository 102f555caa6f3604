"""The catalogue on Milvus (Lite, really started): attaching an existing catalogue by one setting, the index
journal on every write path, crashes between the SQLite commit and the Milvus write (and the other way round) in
real processes killed half-way, a backend that fails, read-only use, detaching, the CLI and the service.

Each test that kills a process uses its own Milvus Lite file: Lite lets one process at a time open a file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from milvus_server import MilvusServer, milvus_uri
from PIL import Image

from lookalike.catalog import Catalog
from lookalike.catalog._backend import BACKEND, SYNCED
from lookalike.catalog.store import IndexJournal
from lookalike.cli import main
from lookalike.encoders import get_encoder
from lookalike.errors import IndexBackendError, InvalidParameterError
from lookalike.index import FloatFlatIndex, MilvusIndex

ENC = "pixels:size=8"
DIM = get_encoder(ENC).dim


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((24, 24)) for _ in range(n)]


def _folder(root: Path, n: int, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(_images(n, seed)):
        image.save(root / f"p{i:03d}.png")
    return root


def _milvus_of(cat: Catalog) -> MilvusIndex:
    index = cat._indexes.get(cat._set.default[0])
    assert isinstance(index, MilvusIndex)
    return index


def _consistent(cat: Catalog) -> None:
    """Milvus holds exactly the store's whole-image vectors, the journal is empty, and search equals an exact
    local index over the store's vectors."""
    num = cat._set.default[0]
    index = _milvus_of(cat)
    keys = cat._db.vector_keys(num).tolist()
    stored = {k: np.frombuffer(b, np.float32) for k, b in cat._db.vectors_by_key(num, keys).items()}
    assert sorted(index.keys().tolist()) == sorted(stored)
    if stored:
        got, present = index.vectors(list(stored))
        assert present.all()
        np.testing.assert_allclose(got, np.stack(list(stored.values())), atol=1e-6)
        local = FloatFlatIndex(index.dim)
        local.add(list(stored), np.stack(list(stored.values())))
        queries = np.stack(list(stored.values()))[:3]
        want, found = local.search(queries, 5), index.search(queries, 5)
        np.testing.assert_allclose(found.scores, want.scores, atol=1e-5)
        assert found.keys[:, 0].tolist() == want.keys[:, 0].tolist()
    assert IndexJournal(cat._db).pending() == []


def test_an_existing_catalogue_moves_to_milvus_by_one_setting_and_searches_the_same(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "photos", 30)
    with Catalog(tmp_path / "cat", ENC) as cat:
        cat.index_folder(folder)
        before = [[(r.id, round(r.score, 5)) for r in hits] for hits in cat.search_many(_images(3, 9), k=5)]
        assert cat.info()["index"] == "Flat"
    uri = milvus_uri()
    with Catalog(tmp_path / "cat", backend=uri) as cat:  # the one setting; the first open uploads every vector
        assert cat.info()["index"] == uri and cat._db.meta(BACKEND) == uri
        with pytest.raises(InvalidParameterError, match="index.backend"):
            cat.put_setting("index.backend", "local")  # only through backend=, which also installs the journal
        after = [[(r.id, round(r.score, 5)) for r in hits] for hits in cat.search_many(_images(3, 9), k=5)]
        assert after == before
        _consistent(cat)
        assert cat._db.meta(SYNCED.format(num=cat._set.default[0])) == uri
    with Catalog(tmp_path / "cat") as cat:  # reopened without saying: the kept backend
        assert cat.info()["index"] == uri
        assert [[(r.id, round(r.score, 5)) for r in hits] for hits in cat.search_many(_images(3, 9), k=5)] == before


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    started = MilvusServer(tmp_path_factory.mktemp("milvus-server"))
    yield started
    started.stop()


def test_an_existing_catalogue_moves_to_a_milvus_server_by_one_setting(tmp_path: Path, server: MilvusServer,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The deployment page's one step, on a real gRPC Milvus server (Lite's server binary on a TCP port), and
    then two processes writing and searching through it at once."""
    folder = _folder(tmp_path / "photos", 20)
    cat = str(tmp_path / "cat")
    assert main(["index", str(folder), "--catalog", cat, "--encoder", ENC]) == 0
    assert main(["info", "--catalog", cat, "--backend", server.uri]) == 0  # the one setting
    capsys.readouterr()
    _folder(folder / "more", 5, seed=3)  # new files for the other process: ids more/p000.png ...
    with Catalog(cat) as opened:  # this process holds the server while another one writes through it
        assert opened.info()["index"] == server.uri and len(opened.search(_images(1)[0], k=30)) == 20
        done = subprocess.run([sys.executable, "-c", "from lookalike.cli import main; raise SystemExit(main())",
                               "index", str(folder), "--catalog", cat],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert len(opened.search(_images(1)[0], k=30)) == 25  # the other process's commits, applied
        _consistent(opened)


def test_every_write_path_is_journalled_and_applied(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", ENC, backend=milvus_uri()) as cat:
        images = _images(12, seed=1)
        for i, image in enumerate(images[:6]):
            cat.add(image, id=f"a{i}", metadata={"n": i})
        cat.add_many(images[6:])
        _consistent(cat)
        cat.update("a1", image=images[11].transpose(Image.Transpose.FLIP_LEFT_RIGHT))  # a new vector, same key
        _consistent(cat)
        cat.remove("a2")
        cat.remove_many(["a3", "a4", "nope"])
        _consistent(cat)
        hits = cat.search(images[0], k=3, where={"n": 0})  # a metadata filter: keys resolved in SQLite
        assert [h.id for h in hits] == ["a0"]
        cat.fit_hasher("itq", 8)  # a new encoder's codes go to their own (binary) collection
        codes = cat._indexes.get(cat._set.default[0])
        assert isinstance(codes, MilvusIndex) and codes.metric == "hamming" and len(codes) == cat.count()
        assert cat.search(images[0], k=1)[0].id == "a0"


_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from PIL import Image
    from lookalike.catalog import Catalog
    from lookalike.catalog import _backend
    from lookalike.catalog.store import journal

    where, path, uri, ENC = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]
    if where == "before-backend-write":  # killed after the SQLite commit, before Milvus saw the change
        _backend.Backend.apply = lambda *a, **k: os._exit(9)
    elif where == "before-forgetting":  # killed after the Milvus write, before the journal entries were deleted
        journal.IndexJournal.done = lambda *a, **k: os._exit(9)
    cat = Catalog(path, ENC, backend=uri)
    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((24, 24)) for _ in range(4)]
    op = sys.argv[4]
    if op == "setup":  # a catalogue on Milvus, fully synced, before the process that is killed
        for i in range(10):
            cat.add(Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((24, 24)),
                    id=f"p{i:03d}.png", metadata={"n": i})
        cat.search(images[0], k=1)
        sys.exit(0)
    if op == "add":
        cat.add_many(images, metadata={"batch": "late"})
    elif op == "update":
        cat.update("p000.png", image=images[0])
    else:
        cat.remove("p001.png")
    print("not killed")
""")


@pytest.mark.parametrize("where", ["before-backend-write", "before-forgetting"])
@pytest.mark.parametrize("op", ["add", "update", "remove"])
def test_a_process_killed_between_sqlite_and_milvus_leaves_a_catalogue_that_reopens_consistent(
        tmp_path: Path, where: str, op: str, caplog: pytest.LogCaptureFixture) -> None:
    uri = f"milvus://{tmp_path / 'milvus.db'}"

    def child(step: str, kill: str) -> subprocess.CompletedProcess[str]:  # its own process: Lite locks the file
        return subprocess.run([sys.executable, "-c", _CHILD, kill, str(tmp_path / "cat"), uri, step, ENC],
                              capture_output=True, text=True, timeout=300)

    ready = child("setup", "nowhere")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    db = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")
    ids_before = {row[0] for row in db.execute("SELECT id FROM items")}
    assert db.execute("SELECT count(*) FROM index_journal").fetchone()[0] == 0  # synced
    done = child(op, where)
    assert done.returncode == 9, done.stdout + done.stderr  # really killed half-way
    assert db.execute("SELECT count(*) FROM index_journal").fetchone()[0] > 0  # the change waits in the journal
    assert db.execute("SELECT value FROM meta WHERE key LIKE 'index.backend.synced.%'").fetchone()[0] == uri
    db.close()
    caplog.set_level(logging.INFO, logger="lookalike.catalog")
    with Catalog(tmp_path / "cat") as cat:  # any later open applies it (from the journal, not by a full sync)
        ids = {item.id for item in cat.list(limit=100)}
        if op == "add":
            assert len(ids) == len(ids_before) + 4  # the committed adds are kept ...
        elif op == "remove":
            assert ids == ids_before - {"p001.png"}
        else:
            assert ids == ids_before
        meta = {item.id: item.metadata for item in cat.list(limit=100)}
        assert all(meta[f"p{i:03d}.png"] == {"n": i} for i in range(10) if f"p{i:03d}.png" in meta)
        assert sorted(m.get("batch", "") for m in meta.values()).count("late") == (4 if op == "add" else 0)
        assert [h.id for h in cat.search(_images(1)[0], k=3, where={"n": 5})] == ["p005.png"]  # filters hold
        _consistent(cat)  # ... and Milvus agrees with SQLite, key for key and vector for vector
    assert "in full" not in caplog.text


def test_a_failing_backend_keeps_the_write_and_catches_up_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with Catalog(tmp_path / "cat", ENC, backend=milvus_uri()) as cat:
        cat.add(_images(1)[0], id="first")
        real = MilvusIndex.add

        def down(self: MilvusIndex, keys: object, vectors: object) -> None:
            raise IndexBackendError("Milvus (test) failed to upsert: connection refused")

        monkeypatch.setattr(MilvusIndex, "add", down)
        with caplog.at_level(logging.WARNING, logger="lookalike.catalog"):
            cat.add(_images(2)[1], id="second")  # committed in SQLite; Milvus refused it
        assert "journalled" in caplog.text and "second" in [i.id for i in cat.list()]
        assert len(IndexJournal(cat._db).pending()) >= 1
        with pytest.raises(IndexBackendError, match="connection refused"):
            cat.search(_images(1)[0], k=2)  # a search says the backend is failing; it does not answer stale
        monkeypatch.setattr(MilvusIndex, "add", real)
        cat.add(_images(3)[2], id="third")  # the next write applies what waited
        _consistent(cat)


def test_the_uri_can_name_the_collections(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", ENC, backend=f"{milvus_uri()}?collection=shop{tmp_path.name[-8:]}") as cat:
        cat.add(_images(1)[0], id="x")
        assert _milvus_of(cat).collection == f"shop{tmp_path.name[-8:]}_e{cat._set.default[0]}"
        _consistent(cat)


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", ENC) as cat:
        cat.add(_images(1)[0], id="x")
    with (pytest.raises(IndexBackendError, match=r"cannot connect to Milvus at http://127\.0\.0\.1:9"),
          Catalog(tmp_path / "cat", backend="milvus://127.0.0.1:9?token=t") as cat):
        cat.search(_images(1)[0], k=1)


@pytest.mark.parametrize("uri", ["http://host:19530", "milvus://", "milvus:///data/a.txt", "milvus://h:1/path",
                                 "milvus://h:1?user=x", "", "milvus:///.db"])
def test_a_bad_backend_uri_is_refused_and_nothing_is_written(tmp_path: Path, uri: str) -> None:
    with Catalog(tmp_path / "cat", ENC) as cat:
        cat.add(_images(1)[0], id="x")
    with pytest.raises(InvalidParameterError, match="Milvus"):
        Catalog(tmp_path / "cat", backend=uri)
    with Catalog(tmp_path / "cat") as cat:
        assert cat.info()["index"] == "Flat" and cat._db.meta(BACKEND) is None


def test_detaching_goes_back_to_the_local_index_and_a_reattach_syncs_in_full(tmp_path: Path) -> None:
    uri = milvus_uri()
    with Catalog(tmp_path / "cat", ENC, backend=uri) as cat:
        cat.add_many(_images(5))
        collection = _milvus_of(cat).collection
    with Catalog(tmp_path / "cat", backend="local") as cat:
        assert cat.info()["index"] == "Flat" and not IndexJournal(cat._db).attached()
        cat.add(_images(7)[6], id="while-detached")  # Milvus does not see this one
        cat.remove(cat.list()[0].id)
        assert len(cat.search(_images(1)[0], k=10)) == 5
    stale = MilvusIndex(DIM, uri=uri, collection=collection)
    assert len(stale) == 5 and not any(k == 6 for k in stale.keys().tolist())
    with Catalog(tmp_path / "cat", backend=uri) as cat:  # attached again: every vector uploaded, extras deleted
        cat.search(_images(1)[0], k=1)
        _consistent(cat)


def test_a_read_only_catalogue_never_writes_to_the_backend(tmp_path: Path) -> None:
    """A reader (a replica's copy, read-only media) searches Milvus as the writer left it: applying its own older
    journal, or reconciling keys, could rewind what a writer has done since."""
    uri = milvus_uri()
    with Catalog(tmp_path / "cat", ENC, backend=uri) as cat:
        cat.add_many(_images(4))
        collection = _milvus_of(cat).collection
    db = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")  # a change Milvus has not seen, as a crash leaves it
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM items WHERE key = (SELECT min(key) FROM items)")
    db.commit()
    db.close()
    with Catalog(tmp_path / "cat", read_only=True) as cat:
        assert len(cat.search(_images(1)[0], k=10)) == 3  # the removed item's key is dropped by SQLite
        assert len(IndexJournal(cat._db).pending()) == 1
    assert len(MilvusIndex(DIM, uri=uri, collection=collection)) == 4  # untouched by the reader
    with Catalog(tmp_path / "cat") as cat:  # a writer applies and clears it
        cat.search(_images(1)[0], k=1)
        _consistent(cat)


def test_the_cli_sets_the_backend_and_info_shows_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path / "photos", 6)
    cat = str(tmp_path / "cat")
    uri = milvus_uri()
    assert main(["index", str(folder), "--catalog", cat, "--encoder", ENC, "--backend", uri]) == 0
    capsys.readouterr()
    assert main(["info", "--catalog", cat, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"] == uri
    assert main(["search", str(folder / "p003.png"), "--catalog", cat, "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "p003.png"
    assert main(["info", "--catalog", cat, "--backend", "milvus://nowhere/x"]) != 0
    assert "Milvus" in capsys.readouterr().err


def test_journal_triggers_a_migration_dropped_come_back_on_open(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", ENC, backend=milvus_uri()) as cat:
        cat.add(_images(1)[0], id="x")
    db = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")  # as the v3 -> v4 rebuild of `vectors` leaves it
    for name in ("insert", "update", "delete"):
        db.execute(f"DROP TRIGGER index_journal_{name}")
    db.commit()
    db.close()
    with Catalog(tmp_path / "cat") as cat:
        assert IndexJournal(cat._db).attached()
        cat.add(_images(2)[1], id="y")
        _consistent(cat)
