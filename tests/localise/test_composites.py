"""The composites generator: true boxes inside the image, seeded, splits that share no product or photograph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.evaluation.composites import (
    BACKGROUNDS,
    SPLITS,
    STRIPS,
    background_photos,
    generate,
    products,
    read_composites,
    write_composites,
)


def test_boxes_lie_inside_the_images_and_cover_the_product(tmp_path: Path) -> None:
    made = write_composites(tmp_path / "c", "train", 12, seed=5)
    assert len(made) == 12 and (tmp_path / "c" / "boxes.csv").is_file()
    from PIL import Image

    for path, box in zip(made.paths, made.boxes, strict=True):
        with Image.open(path) as img:
            width, height = img.size
        assert 224 <= width <= 320 and 224 <= height <= 320
        assert box.x + box.w <= width and box.y + box.h <= height and min(box.w, box.h) >= 8
    assert set(made.labels.tolist()) <= set(range(10))
    again = read_composites(tmp_path / "c" / "boxes.csv")
    assert again.boxes == made.boxes and again.paths == made.paths


def test_seeded_the_same_arguments_give_the_same_composites() -> None:
    a, b, c = generate("validation", 3, seed=7), generate("validation", 3, seed=7), generate("validation", 3, seed=8)
    assert [x.box for x in a] == [x.box for x in b] and [x.product for x in a] == [x.product for x in b]
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b, strict=True))
    assert [x.box for x in a] != [x.box for x in c]


def test_the_splits_share_no_product_and_no_background_pixel() -> None:
    _, _, train = products("train")
    _, _, val = products("validation")
    test_images, _, test = products("test")
    assert train.max() < 50_000 <= val.min() and len(test) == len(test_images) == 10_000  # test: the test split
    picked = {s: {c.product for c in generate(s, 20)} for s in ("train", "validation")}
    assert all(p < 50_000 for p in picked["train"]) and all(p >= 50_000 for p in picked["validation"])
    strips = [STRIPS[s] for s in SPLITS]  # each split its own strip of every photograph
    assert all(a[1] <= b[0] for a, b in zip(strips, strips[1:], strict=False)) and len(BACKGROUNDS) == 20
    widths = [background_photos(s)[0].width for s in SPLITS]
    assert sum(widths) <= 512 and widths[0] > widths[2] > widths[1]  # astronaut.png is 512 wide


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="split"):
        generate("holdout", 3)
    with pytest.raises(InvalidParameterError, match="'n'"):
        generate("train", 0)


def test_a_broken_composites_csv_is_a_dataset_error(tmp_path: Path) -> None:
    from lookalike.errors import DatasetError

    no_path = tmp_path / "boxes.csv"
    no_path.write_text("x,y,w,h,label,product\n1,2,3,4,5,6\n")
    for csv_file in (no_path, tmp_path / "missing.csv"):
        with pytest.raises(DatasetError, match="not a composites boxes.csv"):
            read_composites(csv_file)
