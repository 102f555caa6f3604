"""Pieces shared by the dataset loaders: the errors, the in-memory :class:`Dataset`, and small helpers."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.errors import InvalidParameterError

StrPath = str | os.PathLike[str]

SPLITS = ("test", "train")

# The DIB header sizes a real BMP can carry (BITMAPCOREHEADER ... BITMAPV5HEADER); checking one keeps a text
# file that happens to start with "BM" from passing for a bitmap.


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image dataset held in memory.

    Attributes:
        images: uint8, shape (N, H, W) for grey or (N, H, W, 3) for RGB; read-only.
        labels: int64, shape (N,), each in ``range(len(class_names))``; read-only.
        class_names: the human-readable name of each class id.
        name: the dataset's name, e.g. ``"fashion-mnist"``.
        split: which part it is, e.g. ``"train"``; export names its files after it.

    Raises:
        InvalidParameterError: the arrays have the wrong dtype, shape or label range.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    split: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)):
            raise InvalidParameterError(
                f"Dataset images must be uint8 of shape (N, H, W) or (N, H, W, 3). "
                f"Got {images.dtype} of shape {images.shape} instead."
            )
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            raise InvalidParameterError(
                f"Dataset labels must be int64 of shape ({len(images)},). "
                f"Got {labels.dtype} of shape {labels.shape} instead."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise InvalidParameterError(
                f"Dataset labels must lie in [0, {len(self.class_names)}) for {len(self.class_names)} "
                f"class names. Got labels in [{labels.min()}, {labels.max()}] instead."
            )
        # Read-only views: the dataclass is frozen, its arrays should be too (the caller's stay writable).
        object.__setattr__(self, "images", _read_only(images))
        object.__setattr__(self, "labels", _read_only(labels))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_slugs(self) -> tuple[str, ...]:
        """Folder-safe names of the classes, as :func:`slugify` makes them (``class-<id>`` when empty)."""
        return tuple(slugify(name) or f"class-{i}" for i, name in enumerate(self.class_names))


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def slugify(name: str) -> str:
    """A lowercase ASCII name safe for a folder: ``"T-shirt/top"`` -> ``"tshirt-top"``.

    Accents are dropped, hyphens and apostrophes inside words are removed (they join, not separate), and every
    other run of characters outside ``[a-z0-9]`` becomes one ``-``. May return ``""`` (e.g. for ``"???"``).
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"['-]", "", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def check_split(split: str, caller: str) -> str:
    """Return ``split`` if it is ``"train"`` or ``"test"``, else raise :class:`InvalidParameterError`."""
    if split not in SPLITS:
        raise InvalidParameterError(
            f"The 'split' parameter of {caller} must be one of {', '.join(map(repr, SPLITS))}. "
            f"Got {split!r} instead."
        )
    return split


def resolve_root(root: StrPath | None, env_var: str) -> Path | None:
    """The dataset folder: ``root`` if given, else the environment variable ``env_var`` if set, else None."""
    if root is not None:
        return Path(root)
    from_env = os.environ.get(env_var)
    if from_env:
        return Path(from_env)
    return None
