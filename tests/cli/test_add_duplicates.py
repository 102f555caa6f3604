"""``lookalike add`` and the duplicate check: automatic (copies only), ``--check-duplicates`` (every verdict),
``--no-check-duplicates`` (none), ``--refuse``; one output for one file and for many."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage_photos import data_photo

from .conftest import Run, count


@pytest.fixture
def relisted(tmp_path: Path) -> Path:
    """coffee.png again, smaller and re-encoded as JPEG: a near-duplicate."""
    path = tmp_path / "coffee-small.jpg"
    data_photo("coffee.png", 100).save(path, quality=85)
    return path


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    path = tmp_path / "fresh.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((64, 64)).save(path)
    return path


def _verdicts(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.startswith("  ")]


def test_automatic_check_shows_copies_only(calibrated: Path, relisted: Path, cli: Run) -> None:
    code, out, err = cli("add", relisted, "--catalog", calibrated)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "added coffee-small.jpg"
    assert _verdicts(out) == ["near-duplicate"] and "coffee.png" in out


def test_explicit_check_shows_similar_items_too(calibrated: Path, relisted: Path, cli: Run) -> None:
    code, out, _ = cli("add", relisted, "--catalog", calibrated, "--check-duplicates")
    verdicts = _verdicts(out)
    assert code == 0 and verdicts[0] == "near-duplicate" and "similar" in verdicts


def test_no_check(calibrated: Path, relisted: Path, cli: Run) -> None:
    code, out, _ = cli("add", relisted, "--catalog", calibrated, "--no-check-duplicates", "--json")
    added = json.loads(out)["added"]
    assert code == 0 and [a["id"] for a in added] == ["coffee-small.jpg"] and added[0]["duplicates"] == []


def test_many_files_one_output(calibrated: Path, relisted: Path, fresh: Path, cli: Run) -> None:
    code, out, _ = cli("add", relisted, fresh, "--catalog", calibrated, "--json")
    added = {a["id"]: [m["verdict"] for m in a["duplicates"]] for a in json.loads(out)["added"]}
    assert code == 0 and added == {"coffee-small.jpg": ["near-duplicate"], "fresh.png": []}

    code, out, _ = cli("add", relisted, fresh, "--catalog", calibrated, "--check-duplicates")
    assert code == 0 and out.count("added ") == 2 and "similar" in _verdicts(out)


def test_uncalibrated_reports_exact_copies(plain: Path, photo_dir: Path, tmp_path: Path, fresh: Path,
                                           cli: Run) -> None:
    copy = tmp_path / "again.png"
    copy.write_bytes((photo_dir / "coffee.png").read_bytes())
    code, out, _ = cli("add", copy, "--catalog", plain, "--id", "again")
    assert code == 0 and _verdicts(out) == ["exact"] and "coffee.png" in out
    code, out, _ = cli("add", copy, fresh, "--catalog", plain, "--json")
    added = {a["id"]: [m["id"] for m in a["duplicates"]] for a in json.loads(out)["added"]}
    assert code == 0 and added["again.png"][0] in {"coffee.png", "again"} and added["fresh.png"] == []


def test_explicit_check_needs_a_calibration_and_writes_nothing(plain: Path, relisted: Path, fresh: Path,
                                                               cli: Run) -> None:
    for files in ([relisted], [relisted, fresh]):
        code, out, err = cli("add", *files, "--catalog", plain, "--check-duplicates")
        assert code == 1 and out == "" and err.startswith("lookalike: error: ") and err.count("\n") == 1
        assert "calibrat" in err and count(plain) == 24


def test_refuse_exact(plain: Path, photo_dir: Path, fresh: Path, cli: Run) -> None:
    code, out, _ = cli("add", photo_dir / "moon.png", fresh, "--catalog", plain, "--refuse", "exact")
    assert code == 1 and "added fresh.png" in out
    assert "refused " in out and "an exact duplicate of item 'moon.png'" in out and count(plain) == 25
    code, out, _ = cli("add", photo_dir / "moon.png", "--catalog", plain, "--refuse", "exact", "--json")
    data = json.loads(out)
    assert code == 1 and data["added"] == [] and data["refused"][0]["duplicates"][0]["id"] == "moon.png"


@pytest.mark.parametrize("check", [[], ["--check-duplicates"], ["--no-check-duplicates"]])
def test_a_refused_image_reads_the_same_whatever_the_check(calibrated: Path, fresh: Path, tmp_path: Path,
                                                           check: list[str], cli: Run) -> None:
    """Issue 11.8: an oversized image printed 'skipped' on stdout with --check-duplicates and 'lookalike: error:'
    without; --refuse near doubled 'refused'. One file: one error line; several: the report lists it skipped."""
    big = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(big)
    code, out, err = cli("add", big, *check, "--catalog", calibrated, "--max-pixels", "100000")
    assert code == 1 and out == ""
    assert err == f"lookalike: error: {big}: 400x300 is 120,000 pixels, over the limit of 100,000 " \
                  "(ImageLimits.max_pixels)\n"
    code, out, err = cli("add", big, fresh, *check, "--catalog", calibrated, "--max-pixels", "100000")
    assert code == 1 and err == "" and "added fresh.png" in out
    assert f"skipped {big}: 400x300 is 120,000 pixels, over the limit of 100,000" in out
    assert count(calibrated) == 25


def test_refuse_near_says_refused_once(calibrated: Path, relisted: Path, cli: Run) -> None:
    code, out, err = cli("add", relisted, "--catalog", calibrated, "--refuse", "near")
    assert code == 1 and out + err == f"refused {relisted}: a near-duplicate of item 'coffee.png'\n"
    assert count(calibrated) == 24
