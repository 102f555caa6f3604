"""A catalogue on read-only media (issue 11.2): readable by the library, the CLI and the service; writes refused
with a clear error; never a silently stale read of an unreadable write-ahead log.

The media are really read-only: the catalogue's folder is bind-mounted read-only in a private mount namespace
(``unshare -m``, where the tests run as root) or its files lose their write bits (as any other user).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Catalog
from lookalike.errors import CatalogError, ReadOnlyCatalogError

CLI = "import sys; from lookalike.cli import main; sys.exit(main())"


def _can_bind_read_only(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    script = 'mount --bind -o ro "$1" "$1" && ! touch "$1/x" 2>/dev/null'
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(probe)], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``read_only(folder, argv) -> CompletedProcess``: run argv with ``folder`` on read-only media."""
    root = os.geteuid() == 0
    if root and not _can_bind_read_only(tmp_path_factory.mktemp("probe")):
        pytest.fail("running as root without the right to mount: cannot make read-only media for this test")

    def run(folder: Path, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if root:
            script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
            return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), *argv],
                                  capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        try:
            for p, mode in modes.items():
                p.chmod(mode & ~0o222)
            return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)  # type: ignore
        finally:
            for p, mode in modes.items():
                p.chmod(mode)

    return run


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))


@pytest.fixture
def closed(tmp_path: Path) -> Path:
    """A cleanly closed catalogue (no -wal, no -shm left) of six images, their files inside the same folder."""
    folder = tmp_path / "media"
    (folder / "photos").mkdir(parents=True)
    for i in range(6):
        _image(i).save(folder / "photos" / f"p{i}.png")
    with Catalog(folder / "cat", "pixels") as cat:
        cat.index_folder(folder / "photos")
    assert not list((folder / "cat").glob("*-wal")) and not list((folder / "cat").glob("*-shm"))
    return folder


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_the_library_reads_a_catalogue_on_read_only_media_and_refuses_writes(closed: Path, read_only) -> None:  # type: ignore[no-untyped-def]
    proc = read_only(closed, _python(f"""
        import json
        from lookalike import Catalog
        from lookalike.errors import CatalogError, ReadOnlyCatalogError
        out = {{}}
        with Catalog({str(closed / "cat")!r}) as cat:
            out["read_only"] = cat.read_only
            out["count"] = len(cat)
            out["hit"] = cat.search({str(closed / "photos" / "p3.png")!r}, k=1)[0].id
            out["similar"] = len(cat.similar("p0.png", k=3))
            for name, write in [("add", lambda: cat.add({str(closed / "photos" / "p1.png")!r}, id="new")),
                                ("remove", lambda: cat.remove("p0.png")),
                                ("update", lambda: cat.update("p0.png", metadata={{"a": 1}})),
                                ("index", lambda: cat.index_folder({str(closed / "photos")!r})),
                                ("hash", lambda: cat.fit_hasher("itq", 8))]:
                try:
                    write()
                    out[name] = "written"
                except ReadOnlyCatalogError as err:
                    out[name] = str(err)
            out["after"] = len(cat)
        try:
            Catalog({str(closed / "cat")!r}, read_only=False)
        except CatalogError as err:
            out["writable"] = type(err).__name__
        print(json.dumps(out))
    """))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["read_only"] is True and out["count"] == 6 and out["after"] == 6
    assert out["hit"] == "p3.png" and out["similar"] == 3
    for name in ("add", "remove", "update", "index", "hash"):
        assert "is read-only (its files cannot be written): nothing was written" in out[name], (name, out)
    assert out["writable"] == "CatalogError"


def test_the_cli_reads_and_serves_a_catalogue_on_read_only_media(closed: Path, read_only) -> None:  # type: ignore[no-untyped-def]
    cat, photo = str(closed / "cat"), str(closed / "photos" / "p2.png")
    info = read_only(closed, [sys.executable, "-c", CLI, "--catalog", cat, "info", "--json"])
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["read_only"] is True and json.loads(info.stdout)["items"] == 6
    search = read_only(closed, [sys.executable, "-c", CLI, "--catalog", cat, "search", photo, "-k", "1"])
    assert search.returncode == 0 and "p2.png" in search.stdout, search.stderr
    listed = read_only(closed, [sys.executable, "-c", CLI, "--catalog", cat, "list"])
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 6
    add = read_only(closed, [sys.executable, "-c", CLI, "--catalog", cat, "add", photo, "--id", "x"])
    assert add.returncode == 1 and add.stderr.count("\n") == 1 and "read-only" in add.stderr, add.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"""
        import subprocess, sys, time, httpx
        proc = subprocess.Popen([sys.executable, "-c", {CLI!r}, "--catalog", {cat!r}, "serve", "--read-only",
                                 "--port", "{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    print(httpx.get("http://127.0.0.1:{port}/health", timeout=2).text)
                    print(httpx.get("http://127.0.0.1:{port}/items").json()["total"])
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(30)
    """
    served = read_only(closed, _python(server))
    assert served.returncode == 0, served.stderr
    health, total = served.stdout.splitlines()
    assert json.loads(health) == {"status": "ok", "items": 6, "writable": False} and total == "6"


def test_a_live_write_ahead_log_is_read_or_refused_never_skipped(tmp_path: Path, read_only) -> None:  # type: ignore[no-untyped-def]
    """A copy taken while a writer was open holds commits only in its -wal: with the -shm they are read; without
    it the open fails with a clear message instead of the stale file (what ``immutable=1`` alone would give)."""
    live = tmp_path / "live"
    with Catalog(live, "pixels") as cat:
        for i in range(5):
            cat.add(_image(i), id=f"i{i}")
        with_shm, without = tmp_path / "a" / "cat", tmp_path / "b" / "cat"
        shutil.copytree(live, with_shm)
        shutil.copytree(live, without)
    (without / "catalog.sqlite-shm").unlink()
    assert (with_shm / "catalog.sqlite-wal").stat().st_size > 0
    count = "from lookalike import Catalog; c = Catalog({!r}); print(c.read_only, len(c))"
    ok = read_only(with_shm.parent, [sys.executable, "-c", count.format(str(with_shm))])
    assert ok.returncode == 0 and ok.stdout.split() == ["True", "5"], ok.stderr
    refused = read_only(without.parent, [sys.executable, "-c", count.format(str(without))])
    assert refused.returncode != 0 and "write-ahead log" in refused.stderr and "holds commits" in refused.stderr


def test_read_only_true_writes_nothing(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat", "pixels") as cat:
        cat.add(_image(0), id="a")
    db = tmp_path / "cat" / "catalog.sqlite"
    before = db.read_bytes()
    with Catalog(tmp_path / "cat", read_only=True) as cat:
        assert cat.read_only and len(cat) == 1 and cat.info()["read_only"]
        with pytest.raises(ReadOnlyCatalogError, match="opened read-only"):
            cat.add(_image(1), id="b")
        with pytest.raises(ReadOnlyCatalogError):
            cat.put_setting("x", "1")
        assert len(cat) == 1
    assert db.read_bytes() == before and not (tmp_path / "cat" / "images").exists()
    wal = tmp_path / "cat" / "catalog.sqlite-wal"  # a reader of a WAL database may leave SQLite's empty log
    assert not wal.exists() or wal.stat().st_size == 0
    with pytest.raises(CatalogError, match="no catalogue"):
        Catalog(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
