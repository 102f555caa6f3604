"""The installed ``lookalike`` console script: a closed stdout pipe, and a photo searched by itself."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage_photos import data_photo

from lookalike import Catalog

from .conftest import Run


def _exe() -> str:
    return shutil.which("lookalike") or str(Path(sys.executable).parent / "lookalike")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``lookalike list | head -1``: head exits after one line while lookalike still has ~400 kB to print."""
    path = tmp_path / "cat"
    rng = np.random.default_rng(0)
    with Catalog(path, "pixels:size=8", create=True) as cat:
        for i in range(20):
            cat.add(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), id=f"item{i:02d}",
                    metadata={"note": "x" * 20_000})
    for argv in (["list"], ["list", "--json"], ["search", str(tmp_path / "q.png"), "-k", "20", "--json"]):
        if argv[0] == "search":
            data_photo("coffee.png", 64).save(tmp_path / "q.png")
        with subprocess.Popen([_exe(), "--catalog", str(path), *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as lookalike:
            assert lookalike.stdout is not None and lookalike.stderr is not None
            head = subprocess.run(["head", "-1"], stdin=lookalike.stdout, capture_output=True, timeout=120)
            lookalike.stdout.close()
            err = lookalike.stderr.read().decode()
            assert lookalike.wait(timeout=120) == 0, err
        assert err == "" and "Broken pipe" not in err and "Traceback" not in err
        assert head.returncode == 0 and head.stdout.count(b"\n") == 1


@pytest.mark.parametrize("encoder", ["pixels", "efficientnet-lite0"])  # the default: about 8 s with the export
def test_a_large_jpeg_searched_by_itself_scores_one_with_an_extra_encoder(encoder: str, tmp_path: Path,
                                                                          cli: Run) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    big = data_photo("astronaut.png", 1024).resize((800, 800))
    big.save(folder / "astronaut.jpg", quality=90)
    for name in ("coffee.png", "chelsea.png", "rocket.jpg", "brick.png"):
        data_photo(name).save(folder / f"{name.split('.')[0]}.png")
    catalog = tmp_path / "cat"
    code, out, err = cli("index", folder, "--catalog", catalog, "--encoder", encoder, "--extra-encoder", "phash",
                         "--no-progress")
    assert code == 0 and "5 added" in out, err
    code, out, _ = cli("search", folder / "astronaut.jpg", "--catalog", catalog, "--json")
    results = json.loads(out)["results"]
    assert code == 0 and results[0]["id"] == "astronaut.jpg" and results[0]["score"] >= 1 - 1e-6, results[:2]


def test_the_package_keeps_its_entry_points() -> None:
    from lookalike.cli import EXIT_ERROR, build_parser, main, parse_pairs

    assert callable(main) and EXIT_ERROR == 1
    assert parse_pairs(["a=1", "b=x", '{"c": [2]}'], "--meta") == {"a": 1, "b": "x", "c": [2]}
    listed = re.findall(r"^    ([a-z]+) ", build_parser().format_help(), flags=re.MULTILINE)
    assert set(listed) == {"index", "add", "update", "remove", "get", "list", "info", "search", "similar", "judge",
                           "triplets", "dedup", "serve", "export", "eval", "demo", "train"}
