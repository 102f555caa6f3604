"""The Brown / UBC Photo Tourism loader on a tiny folder written here in exactly the published format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import DatasetError, DatasetNotFoundError
from lookalike.patches import TEST_PAIRS, is_brown_folder, load_brown_pairs, load_brown_patches

N = 300  # two sheets: 256 patches and a partly filled second one


def patch_image(i: int) -> np.ndarray:
    """A 64x64 patch that names its index: a constant plus i's two bytes in the top-left pixels."""
    p = np.full((64, 64), (i * 7) % 251, dtype=np.uint8)
    p[0, 0], p[0, 1] = i // 256, i % 256
    return p


def write_brown(folder: Path, n: int = N, pairs: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    points = [i // 2 for i in range(n)]  # patches 2k and 2k+1 show 3D point k
    for s in range(-(-n // 256)):
        sheet = np.zeros((1024, 1024), dtype=np.uint8)
        for k in range(min(256, n - 256 * s)):
            r, c = divmod(k, 16)
            sheet[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] = patch_image(256 * s + k)
        Image.fromarray(sheet).save(folder / f"patch{s:04d}.bmp")
    (folder / "info.txt").write_text("".join(f"{p} 0\n" for p in points))
    if pairs is None:
        pairs = [(2 * k, 2 * k + 1) for k in range(0, n // 2, 3)] + [(k, n - 1 - k) for k in range(0, n // 2, 5)]
    (folder / TEST_PAIRS).write_text("".join(f"{a} {points[a]} 0 {b} {points[b]} 0 0\n" for a, b in pairs))
    return pairs


@pytest.fixture
def brown(tmp_path: Path) -> Path:
    write_brown(tmp_path / "liberty")
    return tmp_path / "liberty"


def test_reads_the_pairs_and_their_patches_row_major(brown: Path) -> None:
    pairs = write_brown(brown)
    got = load_brown_pairs(brown)
    assert got.name == "brown:liberty" and len(got) == len(pairs) and is_brown_folder(brown)
    for i, (a, b) in enumerate(pairs):
        np.testing.assert_array_equal(got.patches[got.first[i]], patch_image(a))
        np.testing.assert_array_equal(got.patches[got.second[i]], patch_image(b))
        assert got.is_match[i] == (a // 2 == b // 2)
    assert 0 < got.n_match < len(got) and len(got.patches) == len({x for p in pairs for x in p})
    assert got.small().shape == (len(got.patches), 32, 32)


def test_reads_every_patch_for_training(brown: Path) -> None:
    patches = load_brown_patches(brown)
    assert patches.shape == (N, 64, 64)
    np.testing.assert_array_equal(patches[299], patch_image(299))
    sub = load_brown_patches(brown, limit=10, seed=3)
    assert sub.shape == (10, 64, 64) and np.array_equal(sub, load_brown_patches(brown, limit=10, seed=3))


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / "patch0001.bmp").unlink(), "patch0001.bmp is missing"),
    (lambda f: Image.new("L", (1024, 512)).save(f / "patch0001.bmp"), "must be 1024x1024 pixels. Got 1024x512"),
    (lambda f: (f / "patch0000.bmp").write_bytes(b"BM not a bitmap"), "not a readable bitmap"),
    (lambda f: (f / TEST_PAIRS).write_text("0 0 0 300 150 0 0\n"), "patch 300 is past the last patch (299)"),
    (lambda f: (f / TEST_PAIRS).write_text("0 0 0 1 0 0\n"), "line 1: expected 7 integers"),
    (lambda f: (f / TEST_PAIRS).write_text("0 0 0 1 0 0 x\n"), "line 1: expected 7 integers"),
    (lambda f: (f / TEST_PAIRS).write_text("0 0 0 1 5 0 0\n"), "patch 1 shows 3D point 0 in info.txt, not 5"),
    (lambda f: (f / TEST_PAIRS).write_text("\n"), "no pairs"),
    (lambda f: (f / TEST_PAIRS).unlink(), "no such match file"),
    (lambda f: _rewrite(f / "info.txt", "0 0\n", "0 zero\n"), "info.txt: line 1: expected two integers"),
    (lambda f: (f / "info.txt").unlink(), "no info.txt"),
])
def test_damaged_folders_are_refused_with_a_reason(brown: Path, damage, message: str) -> None:  # noqa: ANN001
    damage(brown)
    with pytest.raises(DatasetError) as err:
        load_brown_pairs(brown)
    assert message in str(err.value)


def test_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        load_brown_pairs(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        load_brown_pairs(tmp_path / "file")
