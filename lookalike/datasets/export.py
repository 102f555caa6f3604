"""Write a :class:`Dataset` out as an image folder (``out_dir/<class-slug>/<split>-<index>.png``).

The folder is what :func:`~lookalike.datasets.folder.load_image_folder` and the rest of lookalike read, so the
benchmark datasets can be indexed like any user's photos. The index in each file name is the item's index in
the original split, so every exported file can be traced back to its row.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.datasets._common import Dataset, StrPath
from lookalike.datasets.cifar10 import load_cifar10
from lookalike.datasets.fashion_mnist import load_fashion_mnist
from lookalike.errors import InvalidParameterError

__all__ = ["DATASET_NAMES", "EXPORT_FORMATS", "export_dataset", "export_image_folder", "stratified_subset"]

# format -> (Pillow format, file extension, save options). Lossless formats, plus JPEG for realism; each is
# byte-for-byte reproducible with a given Pillow build.
EXPORT_FORMATS: dict[str, tuple[str, str, dict[str, object]]] = {
    "bmp": ("BMP", ".bmp", {}),
    "jpeg": ("JPEG", ".jpg", {"quality": 95}),
    "png": ("PNG", ".png", {}),
    "tiff": ("TIFF", ".tiff", {}),
}

_LOADERS: dict[str, Callable[[str, StrPath | None], Dataset]] = {
    "cifar10": lambda split, root: load_cifar10(root, split),
    "fashion-mnist": lambda split, root: load_fashion_mnist(split, root),
}
DATASET_NAMES = tuple(sorted(_LOADERS))

_SAFE_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def export_image_folder(
    dataset: Dataset,
    out_dir: StrPath,
    *,
    limit: int | None = None,
    seed: int = 0,
    format: str = "png",
    prefix: str | None = None,
) -> list[Path]:
    """Write the dataset's images to ``out_dir/<class-slug>/<prefix>-<index:05d>.<ext>``.

    Grey images are written as mode L, colour ones as RGB. Running it again writes identical bytes, and a file
    whose bytes already match is left untouched (other files in ``out_dir`` are never removed).

    Args:
        dataset: the images to write.
        out_dir: the folder to write into (created if needed).
        limit: write at most this many images, a class-stratified random subset (see
            :func:`stratified_subset`); ``None`` writes all.
        seed: the seed of that subset.
        format: one of :data:`EXPORT_FORMATS` (``"bmp"``, ``"jpeg"``, ``"png"``, ``"tiff"``).
        prefix: the start of each file name; defaults to ``dataset.split``.

    Returns:
        The paths of the selected items, in dataset order, whether written now or already up to date.

    Raises:
        InvalidParameterError: an unknown format, a bad limit, seed or prefix, or two classes with one slug.

    Example:
        >>> paths = export_image_folder(load_fashion_mnist("test"), "fmnist", limit=100)
        >>> len(paths), paths[0]
        (100, PosixPath('fmnist/pullover/test-00148.png'))
    """
    if format not in EXPORT_FORMATS:
        valid = ", ".join(map(repr, EXPORT_FORMATS))
        raise InvalidParameterError(
            f"The 'format' parameter of export_image_folder must be one of {valid}. Got {format!r} instead."
        )
    prefix = dataset.split if prefix is None else prefix
    if not _SAFE_PREFIX.fullmatch(prefix):
        raise InvalidParameterError(
            "The 'prefix' parameter of export_image_folder must be letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit. Got {prefix!r} instead."
        )
    slugs = _unique_slugs(dataset)
    pil_format, extension, options = EXPORT_FORMATS[format]
    out = Path(out_dir)
    paths = []
    for index in stratified_subset(dataset.labels, limit, seed):
        path = out / slugs[dataset.labels[index]] / f"{prefix}-{index:05d}{extension}"
        buffer = io.BytesIO()
        Image.fromarray(dataset.images[index]).save(buffer, format=pil_format, **options)
        _write_if_changed(path, buffer.getvalue())
        paths.append(path)
    return paths


def export_dataset(
    name: str,
    out_dir: StrPath,
    *,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    root: StrPath | None = None,
    format: str = "png",
) -> list[Path]:
    """Load a named dataset (``"cifar10"`` or ``"fashion-mnist"``) and export it with
    :func:`export_image_folder`; ``root`` goes to the loader. Returns the paths it selected.

    Raises:
        InvalidParameterError: an unknown name, or any argument :func:`export_image_folder` refuses.
        DatasetNotFoundError, DatasetError: from the loader.
    """
    if name not in _LOADERS:
        raise InvalidParameterError(
            f"The 'name' parameter of export_dataset must be one of {', '.join(map(repr, DATASET_NAMES))}. "
            f"Got {name!r} instead."
        )
    dataset = _LOADERS[name](split, root)
    return export_image_folder(dataset, out_dir, limit=limit, seed=seed, format=format)


def stratified_subset(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``limit`` items that keeps the class proportions.

    Each class gets its proportional share of ``limit``, rounded by largest remainder (ties to the lower
    class id), drawn without replacement by a generator seeded with ``(seed, class id)``, so raising one
    class's share only adds items. ``limit=None`` or ``limit >= len(labels)`` selects everything.

    Raises:
        InvalidParameterError: ``limit`` is not a positive int or None, or ``seed`` is not a non-negative int.
    """
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise InvalidParameterError(
            f"The 'limit' parameter must be an int >= 1 or None. Got {limit!r} instead."
        )
    if not _is_int(seed) or seed < 0:
        raise InvalidParameterError(f"The 'seed' parameter must be a non-negative int. Got {seed!r} instead.")
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    shares, remainders = np.divmod(counts * limit, len(labels))
    shares[np.argsort(-remainders, kind="stable")[: limit - shares.sum()]] += 1
    chosen = [
        np.random.default_rng([seed, int(c)]).permutation(np.flatnonzero(labels == c))[:share]
        for c, share in zip(classes, shares, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _unique_slugs(dataset: Dataset) -> tuple[str, ...]:
    slugs = dataset.class_slugs
    seen: dict[str, str] = {}
    for slug, name in zip(slugs, dataset.class_names, strict=True):
        if slug in seen:
            raise InvalidParameterError(
                f"Classes {seen[slug]!r} and {name!r} of {dataset.name} share the folder name {slug!r}; "
                "rename one before exporting."
            )
        seen[slug] = name
    return slugs


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it holds exactly that; atomically, so a crash leaves no half file."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
