"""Catalogues for the command-line tests: real photographs (skimage's data folder) under the pixels encoder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from skimage_photos import DATA_PHOTOS, data_photo

from lookalike import Catalog
from lookalike.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """``cli("search", path, "-k", 3)`` → (exit status, stdout, stderr) of ``lookalike`` run in-process."""

    def run(*argv: object) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 24 photographs as 128-pixel PNGs."""
    root = tmp_path_factory.mktemp("cli-photos") / "photos"
    root.mkdir()
    for name in DATA_PHOTOS:
        data_photo(name, 128).save(root / f"{name.split('.')[0]}.png")
    return root


@pytest.fixture(scope="session")
def _calibrated(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-calibrated") / "cat"
    with Catalog(path, "pixels", create=True) as cat:
        cat.index_folder(photo_dir)
        cat.calibrate_duplicates(sample=10, seed=0)
    return path


@pytest.fixture(scope="session")
def _plain(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-plain") / "cat"
    with Catalog(path, "pixels", create=True) as cat:
        cat.index_folder(photo_dir)
    return path


@pytest.fixture
def calibrated(_calibrated: Path, tmp_path: Path) -> Path:
    """A private copy of the 24-photo catalogue with a duplicate calibration."""
    return Path(shutil.copytree(_calibrated, tmp_path / "calibrated"))


@pytest.fixture
def plain(_plain: Path, tmp_path: Path) -> Path:
    """A private copy of the 24-photo catalogue, not calibrated."""
    return Path(shutil.copytree(_plain, tmp_path / "plain"))


def count(path: Path) -> int:
    with Catalog(path) as cat:
        return cat.count()
