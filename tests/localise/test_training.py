"""Training a localiser for a few steps on CPU, the model file (ONNX = torch), resume = an uninterrupted run, and
hostile input: bad boxes.csv rows, boxes outside images, files that are not models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import EncoderError, InvalidParameterError
from lookalike.evaluation.composites import CompositeSet
from lookalike.images import load_image
from lookalike.localise import Localiser
from lookalike.localise.data import load_box_data, read_boxes
from lookalike.localise.modelfile import load_net, read_model
from lookalike.localise.trainer import Trainer, train

from .conftest import TINY


def test_a_few_epochs_train_in_seconds_and_write_a_model(tiny_model: Path) -> None:
    model = read_model(tiny_model)
    assert model.config == TINY and model.meta["epochs"] == 2 and len(model.meta["history"]) == 2
    assert all(np.isfinite(h["loss"]) for h in model.meta["history"])
    assert Path(str(tiny_model) + ".ckpt").is_file()


def test_onnx_graph_equals_the_torch_network(tiny_model: Path, tiny_set: CompositeSet) -> None:
    data = load_box_data(tiny_set.root / "boxes.csv", TINY)
    trainer = Trainer(TINY, "cpu")
    trainer.net = load_net(read_model(tiny_model))
    p_torch, boxes_torch = trainer.predict(data)
    loc = Localiser(tiny_model)
    images = [load_image(p, draft=(TINY.size, TINY.size)).image for p in tiny_set.paths]
    p_onnx, boxes_onnx = loc.crops(images)
    assert p_onnx.shape == p_torch.shape == (16, len(loc.cells))
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-5)
    np.testing.assert_allclose(boxes_onnx, boxes_torch, atol=1e-5)
    found = loc.locate(tiny_set.paths[0])
    assert found.box is None or found.box.x + found.box.w <= load_image(tiny_set.paths[0]).width


def test_resume_equals_the_uninterrupted_run(tiny_set: CompositeSet, tmp_path: Path) -> None:
    data = load_box_data(tiny_set.root / "boxes.csv", TINY)
    quiet = {"device": "cpu", "log": lambda _: None}
    train(TINY, data, 2, tmp_path / "whole.localiser", **quiet)
    train(TINY, data, 1, tmp_path / "half.localiser", **quiet)
    train(TINY, data, 2, tmp_path / "half.localiser", resume=True, **quiet)
    whole, half = read_model(tmp_path / "whole.localiser"), read_model(tmp_path / "half.localiser")
    assert whole.weights.keys() == half.weights.keys()
    for name, value in whole.weights.items():
        np.testing.assert_array_equal(value, half.weights[name], err_msg=name)
    assert [h["loss"] for h in whole.meta["history"]] == [h["loss"] for h in half.meta["history"]]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "words"), [
    ("", "header"),
    ("path,x,y,w\na.png,1,2,3\n", "missing: h"),
    ("path,x,y,w,h\n", "no rows"),
    ("path,x,y,w,h\na.png,1,2,three,4\n", "line 2: x, y, w, h must be integers"),
    ("path,x,y,w,h\na.png,1,2,3,4\nb.png,-1,2,3,4\n", "line 3: a box needs"),
    ("path,x,y,w,h\na.png,1,2,0,4\n", "line 2: a box needs"),
    ("path,x,y,w,h\n,1,2,3,4\n", "line 2: an empty path"),
    ("path,x,y,w,h\na.png,1,2\n", "line 2: expected the columns"),
])
def test_bad_boxes_csv_rows_are_refused_with_their_line(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InvalidParameterError, match=words):
        read_boxes(_csv(tmp_path, text))


def test_boxes_outside_their_images_and_missing_images_are_refused(tiny_set: CompositeSet, tmp_path: Path) -> None:
    first = tiny_set.paths[0]
    with pytest.raises(InvalidParameterError, match="line 2: box 300,0,30,30 .* is not inside"):
        load_box_data(_csv(tmp_path, f"path,x,y,w,h\n{first},300,0,30,30\n"), TINY)
    with pytest.raises(InvalidParameterError, match="line 3: .*gone.png"):
        load_box_data(_csv(tmp_path, f"path,x,y,w,h\n{first},0,0,30,30\ngone.png,0,0,9,9\n"), TINY)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InvalidParameterError, match="line 2: .*text.png"):
        load_box_data(_csv(tmp_path, "path,x,y,w,h\ntext.png,0,0,9,9\n"), TINY)


def test_files_that_are_not_localiser_models_are_refused(tmp_path: Path, tiny_model: Path) -> None:
    junk = tmp_path / "junk.localiser"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array("lookalike-triplet"), version=np.array(1))
    newer = tmp_path / "newer.npz"
    np.savez(newer, format=np.array("lookalike-localiser"), version=np.array(99))
    for path, words in ((junk, "not a localiser model file"), (single, "not a localiser model file"),
                        (other, "lookalike-triplet"), (newer, "version"), (tmp_path / "nope", "no such"),
                        (tmp_path, "a folder")):
        with pytest.raises(EncoderError, match=words):
            Localiser(path)
    truncated = tmp_path / "truncated.localiser"
    truncated.write_bytes(tiny_model.read_bytes()[:2000])
    with pytest.raises(EncoderError):
        Localiser(truncated)


def test_bad_training_options_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'--size'"):
        TINY.replace(size=100)
    with pytest.raises(InvalidParameterError, match="'--neg-iou'"):
        TINY.replace(neg_iou=0.9)
    with pytest.raises(InvalidParameterError, match="'--threshold'"):
        TINY.replace(threshold=1.5)
