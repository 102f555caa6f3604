"""Finding images in folders by content: :func:`find_images`, :func:`is_image_file` and :class:`Skipped`."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import ImageError, InvalidParameterError
from lookalike.images._decode import _os_error, describe_source
from lookalike.images._formats import (
    IMAGE_EXTENSIONS,
    SUPPORTED_FORMATS,
    _read_header,
    _supported_format,
    sniff_format,
)


@dataclass(frozen=True)
class Skipped:
    """A file :func:`find_images` left out, and why."""

    source: str
    reason: str


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a regular file whose first bytes announce a supported format (by content)."""
    path = Path(path)
    try:
        return path.is_file() and sniff_format(_read_header(path)) in SUPPORTED_FORMATS
    except (OSError, ValueError):
        return False


def _classify(path: Path, found: list[Path], skipped: list[Skipped]) -> None:
    """Add ``path`` to ``found`` if supported by content, to ``skipped`` if only its extension says image."""
    claims_image = path.suffix.lower() in IMAGE_EXTENSIONS
    try:
        if not path.is_file():  # FIFOs, devices, broken links: opening some of them would block
            if claims_image:
                broken = path.is_symlink() and not path.exists()
                skipped.append(Skipped(str(path), "broken symbolic link" if broken else "not a regular file"))
            return
        header = _read_header(path)
    except OSError as err:
        if claims_image:
            skipped.append(Skipped(str(path), _os_error(str(path), err).reason))
        return
    try:
        _supported_format(str(path), header)
    except ImageError as err:
        if claims_image:
            skipped.append(Skipped(str(path), err.reason))
        return
    found.append(path)


def _list_dir(folder: Path, visited: dict[tuple[int, int], Path]) -> list[os.DirEntry[str]] | Path:
    """The folder's entries, or the path it was listed under already (reached again through a symlink: a loop or
    a second route)."""
    info = folder.stat()
    first = visited.setdefault((info.st_dev, info.st_ino), folder)
    if first is not folder:
        return first
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def find_images(root: str | os.PathLike[str]) -> tuple[list[Path], list[Skipped]]:
    """Supported image files under ``root`` (recursive, sorted, by content) and the files that were skipped.

    Files and folders whose name starts with "." (``.git``, ``.lookalike``, macOS ``._x.jpg``) are ignored.
    Directory symlinks are followed once per directory (loops end); a symlink to a folder listed already is
    reported in the second list, as are a file with an image extension that is not a supported image and an
    unreadable folder; other files are ignored silently. Only the header is checked: a truncated image is
    listed and fails later in :func:`load_image`.

    Raises:
        ImageNotFoundError: ``root`` does not exist.
        ImageUnreadableError: ``root`` cannot be listed.
        InvalidParameterError: ``root`` is not a directory.
    """
    top, name = Path(root), describe_source(root)
    try:
        is_dir = stat.S_ISDIR(top.stat().st_mode)
    except OSError as err:
        raise _os_error(name, err) from err
    if not is_dir:
        raise InvalidParameterError(f"find_images needs a directory; {name!r} is a file.")
    found: list[Path] = []
    skipped: list[Skipped] = []
    visited: dict[tuple[int, int], Path] = {}
    real: list[Path] = [top]
    linked: list[Path] = []  # symlinked folders go last: a folder reached both ways keeps its real path
    while real or linked:
        folder = real.pop() if real else linked.pop(0)
        try:
            entries = _list_dir(folder, visited)
        except OSError as err:
            if folder is top:
                raise _os_error(name, err) from err
            skipped.append(Skipped(str(folder), _os_error(str(folder), err).reason))
            continue
        if isinstance(entries, Path):  # each folder is indexed once, under its first path
            skipped.append(Skipped(str(folder), f"symbolic link to a folder indexed as {entries} already"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if not _is_dir(entry):
                _classify(path, found, skipped)
            else:
                (linked if entry.is_symlink() else real).append(path)
    return sorted(found), sorted(skipped, key=lambda item: item.source)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
