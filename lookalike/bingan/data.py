"""Images → BinGAN inputs (uint8, C×32×32) and the training folders ``lookalike train bingan --data DIR`` reads.

Torch-free: the ``bingan:PATH`` encoder uses :func:`prepare_image` at search time, the trainer at training time,
so both see the same pixels. The network itself scales them as (x − 127.5) / 128, as the reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError, DatasetNotFoundError
from .config import SIZE, BinGANConfig

__all__ = ["TrainData", "load_training_data", "prepare_array", "prepare_image"]


def prepare_image(image: Image.Image, cfg: BinGANConfig) -> np.ndarray:
    """One PIL image → (channels, 32, 32) uint8: grey or RGB, then padded (``fit="pad"``) or resized."""
    img = image.convert("L" if cfg.channels == 1 else "RGB")
    if cfg.fit == "resize":
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    else:
        if img.size != (cfg.inner, cfg.inner):
            img = img.resize((cfg.inner, cfg.inner), Image.Resampling.BILINEAR)
        lo = (SIZE - cfg.inner) // 2
        arr = np.zeros((SIZE, SIZE) + (() if cfg.channels == 1 else (3,)), dtype=np.uint8)
        arr[lo:lo + cfg.inner, lo:lo + cfg.inner] = np.asarray(img, dtype=np.uint8)
    return arr[None] if cfg.channels == 1 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def prepare_array(images: np.ndarray, cfg: BinGANConfig) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, 3) uint8 images → (N, channels, 32, 32) uint8, as :func:`prepare_image`."""
    out = np.empty((len(images), cfg.channels, SIZE, SIZE), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = prepare_image(Image.fromarray(np.asarray(img, dtype=np.uint8)), cfg)
    return out


@dataclass(frozen=True)
class TrainData:
    """Training images and, when labels exist, a held-out query set scored by mAP against the training images.

    Attributes:
        train: (N, C, 32, 32) uint8, the unlabelled training set (also the retrieval database).
        train_labels: (N,) int64 or None.
        queries, query_labels: held-out (Q, C, 32, 32) uint8 and (Q,) labels, or None.
        source: what was read, for logs.
    """

    train: np.ndarray
    train_labels: np.ndarray | None
    queries: np.ndarray | None
    query_labels: np.ndarray | None
    source: str


def _is_fashion_mnist(folder: Path) -> bool:
    return any((folder / f"train-images-idx3-ubyte{s}").is_file() for s in (".gz", ""))


def load_training_data(data_dir: str | Path, cfg: BinGANConfig, *, queries: int = 1000,
                       query_seed: int = 0) -> TrainData:
    """Read ``data_dir``: a folder of Fashion-MNIST IDX files, a folder of images, a Brown / UBC Photo Tourism
    folder (every patch of its sheets, unlabelled) or a ``.npy`` file of (N, H, W) uint8 grey patches (unlabelled;
    ``lookalike.patches.training_patches`` makes one from scikit-image's photographs).

    - Fashion-MNIST folder: the 60,000 training images train; the queries are the retrieval protocol's
      (``lookalike.evaluation.protocol``): ``queries`` test images drawn with ``query_seed``.
    - Image folder with class subfolders: a seeded ``min(queries, N // 10)`` images are held out as labelled
      queries; the rest train. Without class subfolders every image under the folder trains, no evaluation.

    Raises:
        DatasetNotFoundError: ``data_dir`` does not exist. DatasetError: not a folder, or no images in it.
    """
    folder = Path(data_dir)
    if folder.suffix == ".npy" and folder.is_file():
        return _patch_array(folder, cfg)
    if folder.is_dir():
        from ..patches.brown import is_brown_folder, load_brown_patches

        if is_brown_folder(folder):
            return TrainData(prepare_array(load_brown_patches(folder), cfg), None, None, None,
                             f"the Brown / UBC patches of {folder}")
    if not folder.exists():
        raise DatasetNotFoundError(str(folder), "no such folder (--data expects Fashion-MNIST IDX files or images)")
    if not folder.is_dir():
        raise DatasetError(str(folder), "not a folder (--data expects Fashion-MNIST IDX files or images)")
    if _is_fashion_mnist(folder):
        from ..datasets import load_fashion_mnist

        train, test = load_fashion_mnist("train", folder), load_fashion_mnist("test", folder)
        picks = np.sort(np.random.default_rng(query_seed).choice(len(test), min(queries, len(test)), replace=False))
        x, y = prepare_array(train.images, cfg), np.asarray(train.labels)
        q, ql = prepare_array(test.images[picks], cfg), np.asarray(test.labels[picks])
        return TrainData(x, y, q, ql, f"Fashion-MNIST at {folder}")
    paths, labels = _list_images(folder)
    from ..images import load_image

    arrays = np.stack([prepare_image(load_image(p).image, cfg) for p in paths])
    if labels is None:
        return TrainData(arrays, None, None, None, f"{len(paths)} images under {folder}")
    n_q = min(queries, len(paths) // 10)
    held = np.zeros(len(paths), dtype=bool)
    if n_q >= 1:
        held[np.random.default_rng(query_seed).choice(len(paths), n_q, replace=False)] = True
    return TrainData(arrays[~held], labels[~held], arrays[held] if n_q else None, labels[held] if n_q else None,
                     f"{len(paths)} images in {labels.max() + 1} classes under {folder}")


def _patch_array(path: Path, cfg: BinGANConfig) -> TrainData:
    """A ``.npy`` array of grey uint8 patches, (N, H, W) or (N, 1, H, W), as unlabelled training images."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(str(path), f"not a NumPy array file: {err}") from err
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.dtype != np.uint8 or len(arr) < 2 or min(arr.shape[1:]) < 4:
        raise DatasetError(str(path), f"expected (N, H, W) uint8 grey patches, N >= 2. Got {arr.shape} {arr.dtype}")
    return TrainData(prepare_array(arr, cfg), None, None, None, f"{len(arr):,} patches of {path}")


def _list_images(folder: Path) -> tuple[list[Path], np.ndarray | None]:
    from ..datasets import load_image_folder
    from ..images import find_images

    try:
        data = load_image_folder(folder)
        if len(data.class_names) >= 2:
            return data.paths, np.asarray(data.labels)
    except DatasetError:
        pass
    paths, _skipped = find_images(folder)
    if len(paths) < 2:
        raise DatasetError(str(folder), f"found {len(paths)} image(s); training needs at least 2")
    return sorted(paths), None
