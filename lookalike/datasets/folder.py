"""A folder of images with one subfolder per class, the layout torchvision's ``ImageFolder`` reads.

For example::

    root/
        cat/0001.jpg
        cat/more/0002.png
        dog/photo          <- a PNG without an extension: included, files are recognised by content
        dog/notes.jpg      <- text named .jpg: skipped, and listed in ``skipped``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.datasets._common import StrPath
from lookalike.errors import DatasetError, DatasetNotFoundError
from lookalike.images import is_image_file

__all__ = ["FolderDataset", "load_image_folder"]


@dataclass(frozen=True, eq=False)
class FolderDataset:
    """The images of a class-per-subfolder tree, listed but not read.

    Attributes:
        root: the folder given to :func:`load_image_folder`.
        paths: each image's path (``root / class / ...``), sorted by class, then by path within the class.
        labels: int64, shape (N,): ``labels[i]`` is the class id of ``paths[i]``; read-only.
        class_names: the subfolder names, sorted; class id ``i`` is ``class_names[i]``.
        skipped: files under the class folders that are not images (by content) or could not be read.
    """

    root: Path
    paths: list[Path]
    labels: np.ndarray
    class_names: tuple[str, ...]
    skipped: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)


def load_image_folder(root: StrPath) -> FolderDataset:
    """List the images under ``root``, one subfolder per class, searched recursively.

    A file counts as an image when its first bytes are those of JPEG, PNG, GIF, WebP, BMP or TIFF (see
    :func:`lookalike.images.is_image_file`), whatever its name; anything else is skipped and listed in
    ``FolderDataset.skipped``. Hidden entries (names starting with ``.``) and files directly in ``root`` are
    ignored. A class folder without images keeps its class id, so ids always follow the sorted folder names.

    Raises:
        DatasetNotFoundError: ``root`` does not exist.
        DatasetError: ``root`` is not a folder, or no class subfolder holds an image.

    Example:
        >>> data = load_image_folder("photos")
        >>> data.class_names[data.labels[0]], data.paths[0]
        ('cat', PosixPath('photos/cat/0001.jpg'))
    """
    root = Path(root)
    if not root.exists():
        raise DatasetNotFoundError(str(root), "no such folder")
    if not root.is_dir():
        raise DatasetError(str(root), "not a folder; expected one subfolder per class")
    class_names = tuple(sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")))
    paths: list[Path] = []
    labels: list[int] = []
    skipped: list[Path] = []
    for label, name in enumerate(class_names):
        for path in _files_under(root / name):
            if _is_image(path):
                paths.append(path)
                labels.append(label)
            else:
                skipped.append(path)
    if not paths:
        where = f"{len(class_names)} class subfolder(s)" if class_names else "no class subfolders"
        raise DatasetError(str(root), f"no images found ({where}; {len(skipped)} other file(s) skipped)")
    label_array = np.array(labels, dtype=np.int64)
    label_array.flags.writeable = False
    return FolderDataset(root, paths, label_array, class_names, tuple(skipped))


def _files_under(folder: Path) -> list[Path]:
    """Every non-hidden file below ``folder``, sorted by path parts, without following folder symlinks."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if not f.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _is_image(path: Path) -> bool:
    return is_image_file(path)
