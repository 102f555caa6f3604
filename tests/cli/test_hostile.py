"""Hostile arguments: one line ``lookalike: error: …`` and status 1 (2 for usage errors), nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike import Catalog

from .conftest import Run, count

GOOD = "{photos}/coffee.png"


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path) -> Path:
    """The photographs with ITQ codes as the default search (so --rerank applies)."""
    path = tmp_path_factory.mktemp("cli-hashed") / "cat"
    with Catalog(path, "pixels", create=True) as cat:
        cat.index_folder(photo_dir)
        cat.fit_hasher("itq", 16)
    return path


@pytest.mark.parametrize(("argv", "message"), [
    (["search", GOOD, "-k", str(10**12)], "The 'k' parameter must be an integer in [1, "),
    (["search", GOOD, "-k", "-3"], "'k' parameter"),
    (["similar", "coffee.png", "-k", "0"], "'k' parameter"),
    (["search", GOOD, "--rerank", "5"], "rerank"),  # no codes to re-rank (0, "none", is allowed)
    (["search", GOOD, "--rerank", "-1", "--catalog", "{hashed}"], "The 'rerank' parameter must be an integer"),
    (["similar", "coffee.png", "--rerank", str(10**9), "--catalog", "{hashed}"], "'rerank' parameter"),
    (["search", GOOD, "--encoder", "nonsense"], "nonsense"),
    (["search", GOOD, "--box", "0,0,0,0"], "box"),
    (["search", GOOD, "--box", "0,0,1,1"], "is 1x1 pixels; a region must be at least 16x16 pixels"),
    (["search", GOOD, "--box", "100,0,60,100"], "extends past the 128x"),
    (["search", GOOD, "--max-pixels", "0"], "'max_pixels' parameter"),
    (["search", GOOD, "--where", "{{nope"], "--where: invalid JSON"),
    (["search", GOOD, "--where", "a=99999999999999999999999"], "64-bit range"),
    (["list", "--where", '{{"a": 99999999999999999999999}}'], "64-bit range"),
    (["add", GOOD, "--meta", "{{bad json"], "--meta: invalid JSON"),
    (["add", GOOD, "--meta", "{{" + "x" * 100_000], "..."),
    (["add", GOOD, "--meta", "[1, 2]"], "KEY=VALUE"),
    (["add", GOOD, GOOD, "--id", "x"], "--id needs exactly one FILE"),
    (["update", "coffee.png"], "nothing to update"),
    (["list", "--limit", "-1"], "The 'limit' parameter"),
    (["list", "--offset", str(-(10**30))], "The 'offset' parameter"),
    (["dedup", "-k", "0"], "The 'k' parameter must be an integer in [1, 1000]"),
    (["dedup", "--calibrate", "-k", "5000"], "'k' parameter"),
    (["dedup", "--calibrate", "--seed", "-1"], "The '--seed' parameter"),
    (["dedup", "--calibrate", "--sample", "1"], "'sample' parameter"),
    (["dedup", "--calibrate", "--target-precision", "nan"], "'target_precision' parameter"),
    (["index", "{photos}", "--hash", "nonsense"], "Unknown hasher"),
    (["index", "{photos}", "--hash", "itq", "--bits", "12"], "multiple of 8"),
    (["index", "{photos}", "--hash", "adapt:k=0"], "The 'k' parameter of AdaptedITQ must be an integer in [1, 1000]"),
    (["index", "{photos}", "--hash", "adapt:bogus=1"], "Hasher option 'bogus=1' of 'adapt' is unknown"),
    (["index", "{photos}", "--hash", "adapt:k=" + "9" * 10_000], "at most 200 characters"),
    (["serve", "--read-only", "--max-upload-mb", "0"], "The '--max-upload-mb' parameter must be a real number in (0"),
    (["serve", "--read-only", "--max-upload-mb", "inf"], "'--max-upload-mb'"),
    (["serve", "--read-only", "--port", "70000"], "The '--port' parameter"),
    (["eval", "--bits", "16,x"], "The '--bits' parameter must be comma-separated integers"),
    (["eval", "--queries", "0"], "The '--queries' parameter"),
    (["demo", "--n", "0", "--dir", "{tmp}/demo"], "The '--n' parameter"),
    (["export", "fashion-mnist", "{tmp}/out", "--seed", "-1"], "The '--seed' parameter"),
])
def test_one_line_status_1_nothing_written(argv: list[str], message: str | None, plain: Path, hashed: Path,
                                           photo_dir: Path, tmp_path: Path, cli: Run) -> None:
    names = {"photos": photo_dir, "hashed": hashed, "tmp": tmp_path}
    args = [a.format(**names) for a in argv]
    if "--catalog" not in args:
        args += ["--catalog", str(plain)]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(*args)
    if message is None:
        assert code == 0
        return
    assert code == 1 and out == "", (out, err)
    assert err.startswith("lookalike: error: ") and err.count("\n") == 1 and len(err) < 400, err
    assert message in err and "Traceback" not in err
    assert count(plain) == 24 and sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_bad_option_creates_no_catalogue(photo_dir: Path, tmp_path: Path, cli: Run) -> None:
    new = tmp_path / "new"
    for argv in (["index", photo_dir, "--hash", "itq", "--bits", "12"], ["index", photo_dir, "--hash", "nope"],
                 ["index", photo_dir, "--hash", "adapt:ridge=nan"],
                 ["index", photo_dir, "--max-pixels", "-1"], ["add", photo_dir / "moon.png", "--meta", "{"],
                 ["add", photo_dir / "moon.png", photo_dir / "coffee.png", "--id", "x"],
                 ["index", photo_dir, "--encoder", "pixels++phash"], ["index", photo_dir, "--encoder", "pixels++"],
                 ["index", photo_dir, "--encoder", "pixels++pixels:weight=-1"]):
        code, _, err = cli(*argv, "--catalog", new)
        assert code == 1 and err.startswith("lookalike: error: ") and not new.exists(), (argv, err)


@pytest.mark.parametrize("argv", [
    ["search", GOOD, "-k", "ten"],
    ["search", GOOD, "-k", "1e3"],
    ["add", GOOD, "--refuse", "maybe"],
    ["add", GOOD, "--check-duplicates=yes"],
    ["list", "--limit"],
    ["dedup", "--format", "xml"],
    ["serve", "--port", "http"],
    ["train", "bingan", "--data", "x"],
])
def test_usage_errors_exit_2(argv: list[str], plain: Path, photo_dir: Path, cli: Run,
                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(*[a.format(photos=photo_dir) for a in argv], "--catalog", plain)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: lookalike" in err and "error:" in err and count(plain) == 24
