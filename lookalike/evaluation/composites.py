"""Composite photographs with known product boxes: Fashion-MNIST products placed on real photographs.

The training and evaluation data of the localiser (``lookalike train localiser``, ``benchmarks/localise.py``),
after TiefVision's recipe of locating a product before encoding it. Each composite is a random crop of a real
photograph (skimage's sample photographs, and scikit-learn's two sample images when installed: nothing is
downloaded) resized to a random size, with one Fashion-MNIST product pasted at a random position and scale.

The blend: Fashion-MNIST products are light on a black background, so the product's mask is its pixels above a
small threshold (the black background and the holes of a sandal become transparent), softened by a Gaussian of
about half a source pixel; the product's own grey values (times a random brightness) are composited through it.
The true box is the tight box of the mask (alpha >= 0.5), in pixels of the composite.

Splits never share a product, a seed or a background pixel. Every split draws from the same 20 photographs, but
from its own vertical strip of each (so the scenes are alike, the pixels disjoint; with whole photographs held
out, 13 training photographs proved too few: see BENCHMARKS.md):

- ``train``: products from the first 50,000 Fashion-MNIST training images, the left 60% of each photograph;
- ``validation``: products from the last 10,000 training images, the next 15% (choose defaults here);
- ``test``: products from the Fashion-MNIST test split, the right 25% (report here, never tune).

Example::

    made = write_composites("composites/train", "train", n=2000)   # images/000000.png ..., boxes.csv
    made.boxes[0], made.labels[0]                                    # Box(x, y, w, h), the product's class
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ..errors import DatasetError, InvalidParameterError
from ..images import Box
from ..validation import check_int

SPLITS = ("train", "validation", "test")
# the photographs (skimage.data files; china/flower: sklearn.datasets.load_sample_images) and each split's strip
BACKGROUNDS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coins.png", "grass.png", "gravel.png",
               "hubble_deep_field.jpg", "ihc.png", "moon.png", "page.png", "retina.jpg", "flower.jpg", "cell.png",
               "text.png", "motorcycle_left.png", "coffee.png", "rocket.jpg", "microaneurysms.png", "china.jpg")
STRIPS = {"train": (0.0, 0.6), "validation": (0.6, 0.75), "test": (0.75, 1.0)}
SEEDS = {"train": 1401, "validation": 1402, "test": 1403}  # the default seed of each split
SIDE = (224, 320)  # each side of a composite, uniform in this range (pixels)
SCALE = (0.25, 0.7)  # the product's side as a share of the composite's shorter side
MASK_LEVEL = 12  # Fashion-MNIST pixels above this are the product (0 is its background)
BOXES_HEADER = ("path", "x", "y", "w", "h", "label", "product")

__all__ = ["BACKGROUNDS", "SPLITS", "STRIPS", "Composite", "CompositeSet", "background_photos", "make_composite",
           "products", "read_composites", "write_composites"]


@dataclass(frozen=True)
class Composite:
    image: Image.Image
    box: Box
    label: int
    product: int  # the product's index in its Fashion-MNIST split


@dataclass(frozen=True)
class CompositeSet:
    """A folder of composites: image paths, true boxes, the products' labels and indices (``boxes.csv``)."""

    root: Path
    paths: tuple[str, ...]
    boxes: tuple[Box, ...]
    labels: np.ndarray
    products: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def background_photos(split: str) -> list[Image.Image]:
    """The RGB photographs of a split: its strip of each (skimage's data folder, scikit-learn's sample images)."""
    _check_split(split)
    try:
        import skimage
    except ImportError as err:
        raise DatasetError("skimage", "composites need scikit-image's sample photographs (pip install "
                           "scikit-image)") from err
    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in BACKGROUNDS:
        if name in ("china.jpg", "flower.jpg"):
            try:
                from sklearn.datasets import load_sample_image
            except ImportError:
                continue  # scikit-learn is optional: the split has one photograph fewer
            photo = Image.fromarray(load_sample_image(name)).convert("RGB")
        else:
            with Image.open(folder / name) as img:
                photo = img.convert("RGB")
        lo, hi = STRIPS[split]
        photos.append(photo.crop((int(lo * photo.width), 0, int(hi * photo.width), photo.height)))
    return photos


def products(split: str, root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels, indices into their Fashion-MNIST split) of a composite split."""
    from ..datasets import load_fashion_mnist

    data = load_fashion_mnist("test" if _check_split(split) == "test" else "train", root)
    picks = {"train": np.arange(0, 50_000), "validation": np.arange(50_000, 60_000),
             "test": np.arange(len(data))}[split]
    return np.asarray(data.images)[picks], np.asarray(data.labels)[picks], picks


def make_composite(product: np.ndarray, background: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Box]:
    """One composite of a (28, 28) uint8 product on a random crop of ``background``, and its true box."""
    width, height = (int(rng.integers(SIDE[0], SIDE[1] + 1)) for _ in range(2))
    bg = _random_crop(background, width / height, rng).resize((width, height), Image.Resampling.BILINEAR)
    side = int(round(rng.uniform(*SCALE) * min(width, height)))
    x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    item = np.ascontiguousarray(product[:, ::-1]) if rng.random() < 0.5 else product
    grey = Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC)
    mask = Image.fromarray(((item > MASK_LEVEL) * 255).astype(np.uint8)).resize((side, side),
                                                                                Image.Resampling.BILINEAR)
    mask = mask.filter(ImageFilter.GaussianBlur(side / 56))
    alpha = np.asarray(mask, dtype=np.float32) / 255
    value = np.clip(np.asarray(grey, dtype=np.float32) * rng.uniform(0.8, 1.1), 0, 255)
    out = np.asarray(bg, dtype=np.float32).copy()
    patch = out[y:y + side, x:x + side]
    out[y:y + side, x:x + side] = patch * (1 - alpha[..., None]) + value[..., None] * alpha[..., None]
    rows, cols = np.nonzero(alpha >= 0.5)
    if len(rows) == 0:  # an all-black product: the placed square is the box
        box = Box(x, y, side, side)
    else:
        box = Box(x + int(cols.min()), y + int(rows.min()), int(cols.max() - cols.min()) + 1,
                  int(rows.max() - rows.min()) + 1)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), box


def _random_crop(photo: Image.Image, aspect: float, rng: np.random.Generator) -> Image.Image:
    """A random crop of ``photo`` with the given width/height ratio, 50-100% of the largest such crop."""
    full_w = min(photo.width, int(photo.height * aspect))
    frac = rng.uniform(0.5, 1.0)
    w = max(8, int(full_w * frac))
    h = max(8, min(photo.height, int(w / aspect)))
    x, y = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
    crop = photo.crop((x, y, x + w, y + h))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def generate(split: str, n: int, seed: int | None = None, root: str | os.PathLike[str] | None = None
             ) -> list[Composite]:
    """``n`` composites of a split (seeded: the same arguments give the same images and boxes)."""
    check_int("n", n, 1, 1_000_000)
    seed = SEEDS[_check_split(split)] if seed is None else check_int("seed", seed, 0)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    images, labels, index = products(split, root)
    photos = background_photos(split)
    picks = rng.choice(len(images), size=n, replace=n > len(images))
    out = []
    for i in picks:
        image, box = make_composite(images[i], photos[int(rng.integers(len(photos)))], rng)
        out.append(Composite(image, box, int(labels[i]), int(index[i])))
    return out


def write_composites(out_dir: str | os.PathLike[str], split: str, n: int, seed: int | None = None,
                     root: str | os.PathLike[str] | None = None) -> CompositeSet:
    """Write ``n`` composites of a split as ``OUT/images/NNNNNN.png`` and ``OUT/boxes.csv``
    (``path,x,y,w,h,label,product``; paths relative to the CSV's folder)."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, c in enumerate(generate(split, n, seed, root)):
        rel = f"images/{i:06d}.png"
        c.image.save(out / rel)
        rows.append((rel, c.box.x, c.box.y, c.box.w, c.box.h, c.label, c.product))
    tmp = out / f".boxes.csv.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(BOXES_HEADER)
        writer.writerows(rows)
    os.replace(tmp, out / "boxes.csv")
    return read_composites(out / "boxes.csv")


def read_composites(boxes_csv: str | os.PathLike[str]) -> CompositeSet:
    """A composites folder written by :func:`write_composites` (with its label and product columns)."""
    path = Path(boxes_csv)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        boxes = tuple(Box(int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])) for r in rows)
        labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
        index = np.array([int(r["product"]) for r in rows], dtype=np.int64)
        files = tuple(str(path.parent / r["path"]) for r in rows)
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as err:
        raise DatasetError(str(path), f"not a composites boxes.csv ({type(err).__name__}: {err})") from err
    return CompositeSet(path.parent, files, boxes, labels, index)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise InvalidParameterError(f"The 'split' parameter must be one of {', '.join(SPLITS)}. Got {split!r}.")
    return split
