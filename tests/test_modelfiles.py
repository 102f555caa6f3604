"""lookalike.modelfiles: the checks every trained model's file goes through, and the training device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import EncoderError, InvalidParameterError
from lookalike.modelfiles import load_checkpoint, read_archive, read_onnx, read_weights, resolve_device, save_checkpoint


def _archive(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_an_archive_of_the_right_format_and_version_reads_back(tmp_path: Path) -> None:
    path = _archive(tmp_path / "m.npz", format=np.array("fmt-x"), version=np.array(3),
                    onnx=np.arange(5, dtype=np.uint8), **{"w/a": np.ones(3, np.float32)})
    got, arrays = read_archive(path, "fmt-x", 3, "demo")
    assert got == path
    assert read_onnx(got, arrays, "demo") == bytes(range(5))
    np.testing.assert_array_equal(read_weights(got, arrays, "w/", "demo")["a"], np.ones(3, np.float32))


@pytest.mark.parametrize("arrays, message", [
    ({"format": np.array("other"), "version": np.array(3)}, "not a demo model file (its format is 'other')"),
    ({"version": np.array(3)}, "no 'fmt-x' format marker"),
    ({"format": np.array("fmt-x"), "version": np.array(2)}, "demo model file version"),
    ({"format": np.array("fmt-x"), "version": np.array(3.0)}, "demo model file version"),
])
def test_another_format_or_version_is_refused(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(EncoderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_archive(_archive(tmp_path / "m.npz", **arrays), "fmt-x", 3, "demo")


def test_missing_truncated_pickled_and_wrong_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="no such demo model file"):
        read_archive(tmp_path / "none.npz", "fmt-x", 3, "demo")
    with pytest.raises(EncoderError, match=r"no such demo model file \(a folder\)"):
        read_archive(tmp_path, "fmt-x", 3, "demo")
    good = _archive(tmp_path / "m.npz", format=np.array("fmt-x"), version=np.array(3))
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:40])
    with pytest.raises(EncoderError, match="truncated"):
        read_archive(tmp_path / "cut.npz", "fmt-x", 3, "demo")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EncoderError, match="not a demo model file"):
        read_archive(tmp_path / "obj.npy", "fmt-x", 3, "demo")  # pickled objects are never loaded
    path, arrays = read_archive(_archive(tmp_path / "w.npz", format=np.array("fmt-x"), version=np.array(3),
                                         **{"w/a": np.ones(3)}), "fmt-x", 3, "demo")
    with pytest.raises(EncoderError, match="float32"):
        read_weights(path, arrays, "w/", "demo")
    with pytest.raises(EncoderError, match="no ONNX graph"):
        read_onnx(path, arrays, "demo")


def test_checkpoints_round_trip_and_refuse_others(tmp_path: Path) -> None:
    import torch

    save_checkpoint(tmp_path / "c.ckpt", {"format": "fmt-x-checkpoint", "w": torch.ones(2)})
    assert torch.equal(load_checkpoint(tmp_path / "c.ckpt", "fmt-x", "demo")["w"], torch.ones(2))
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed
    with pytest.raises(InvalidParameterError, match="not a demo checkpoint"):
        load_checkpoint(tmp_path / "c.ckpt", "fmt-y", "demo")
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(InvalidParameterError, match="not a readable demo checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt", "fmt-x", "demo")
    with pytest.raises(InvalidParameterError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.ckpt", "fmt-x", "demo")


def test_the_training_device() -> None:
    import torch

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "cuda:x", ""):
        with pytest.raises(InvalidParameterError, match="--device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameterError, match="no CUDA device"):
            resolve_device("cuda")
