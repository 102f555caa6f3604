"""Image folders: files are recognised by content, classes by sorted subfolder names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.datasets import DatasetError, DatasetNotFoundError, load_image_folder


def _image_bytes(pil_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buffer, format=pil_format)
    return buffer.getvalue()


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    png, jpeg = _image_bytes("PNG"), _image_bytes("JPEG")
    _write(root / "dog" / "b.jpg", jpeg)
    _write(root / "dog" / "photo", png)  # no extension, but a PNG: included
    _write(root / "dog" / "notes.jpg", b"this is text, not a JPEG")  # skipped and reported in `skipped`
    _write(root / "cat" / "z.png", png)
    _write(root / "cat" / "more" / "a.gif", _image_bytes("GIF"))  # nested folders are searched
    _write(root / "cat" / ".hidden.png", png)  # hidden: ignored
    _write(root / ".cache" / "x.png", png)  # hidden folder: not a class
    _write(root / "loose.png", png)  # not in a class folder: ignored
    (root / "empty class").mkdir()
    return root


def test_layout_labels_and_order(tree: Path) -> None:
    data = load_image_folder(tree)
    assert data.class_names == ("cat", "dog", "empty class")
    assert [p.relative_to(tree).as_posix() for p in data.paths] == [
        "cat/more/a.gif",
        "cat/z.png",
        "dog/b.jpg",
        "dog/photo",
    ]
    np.testing.assert_array_equal(data.labels, [0, 0, 1, 1])
    assert data.labels.dtype == np.int64 and not data.labels.flags.writeable
    assert len(data) == 4 and data.root == tree


def test_text_named_jpg_is_skipped_and_reported(tree: Path) -> None:
    data = load_image_folder(str(tree))
    assert data.skipped == (tree / "dog" / "notes.jpg",)
    assert tree / "dog" / "notes.jpg" not in data.paths


def test_dangling_symlink_is_skipped(tree: Path) -> None:
    (tree / "cat" / "gone.png").symlink_to(tree / "nowhere.png")
    assert tree / "cat" / "gone.png" in load_image_folder(tree).skipped


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        load_image_folder(tmp_path / "absent")


def test_root_that_is_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "file.png", _image_bytes("PNG"))
    with pytest.raises(DatasetError, match="not a folder"):
        load_image_folder(path)


def test_no_images_at_all(tmp_path: Path) -> None:
    _write(tmp_path / "cls" / "readme.txt", b"hello")
    with pytest.raises(DatasetError, match=r"no images found \(1 class subfolder\(s\); 1 other file\(s\)"):
        load_image_folder(tmp_path)
    with pytest.raises(DatasetError, match="no class subfolders"):
        load_image_folder(tmp_path / "cls")
