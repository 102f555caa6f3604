"""Crash safety and concurrency, with real processes: SIGKILL mid-batch, and a reader beside a writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.catalog import Catalog

ENC = "pixels:size=8"

_WRITER = """
import sys, time
from lookalike.catalog import Catalog
cat = Catalog(sys.argv[1])
cat.index_folder(sys.argv[2])
"""

_ADDER = """
import sys
import numpy as np
from lookalike.catalog import Catalog
rng = np.random.default_rng(1)
cat = Catalog(sys.argv[1])
for i in range(int(sys.argv[2])):
    cat.add(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), id=f"w{i}")
"""


def _write_folder(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        p = root / f"d{i % 10}" / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(p)


def _count(db_path: Path) -> int:
    try:
        db = sqlite3.connect(db_path, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_indexing_loses_nothing_committed(tmp_path: Path) -> None:
    images, path = tmp_path / "images", tmp_path / "cat"
    _write_folder(images, 1000)
    Catalog(path, "efficientnet-lite0").close()  # the real default encoder: slow enough to be caught mid-run
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(images)])
    deadline = time.monotonic() + 120
    while _count(path / "catalog.sqlite") < 128 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer finished before it could be killed mid-batch"

    with Catalog(path) as cat:
        n = cat.count()
        assert 128 <= n < 1000
        db = sqlite3.connect(path / "catalog.sqlite")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = db.execute("SELECT count(*) FROM items WHERE key NOT IN (SELECT key FROM vectors)").fetchone()[0]
        db.close()
        assert orphans == 0 and n % 64 == 0  # whole chunks only
        kept = {i.id for i in cat.list(limit=n)}
        report = cat.index_folder(images)  # resuming finishes the job without re-encoding what was kept
        assert len(report.unchanged) == n and len(report.added) == 1000 - n
        assert cat.count() == 1000 and kept <= {i.id for i in cat.list(limit=1000)}


@pytest.mark.slow
def test_readers_keep_working_while_a_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "cat"
    with Catalog(path, ENC) as cat:
        cat.add(np.zeros((16, 16, 3), dtype=np.uint8), id="seed")
        writer = subprocess.Popen([sys.executable, "-c", _ADDER, str(path), "300"])
        seen, query = [], np.full((16, 16, 3), 7, dtype=np.uint8)
        while writer.poll() is None:
            seen.append(cat.count())
            assert cat.search(query, k=3)  # never "database is locked"
        assert writer.returncode == 0
        assert seen == sorted(seen) and len(set(seen)) > 2  # reads interleaved with commits
        assert cat.count() == 301 and len(cat.search(query, k=500)) == 301
    assert os.path.exists(path / "catalog.sqlite")
