"""``lookalike train bingan`` → ``lookalike index DIR --encoder bingan:PATH`` → ``lookalike search``, and bad input."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.cli import main  # noqa: E402
from lookalike.encoders import get_encoder  # noqa: E402
from lookalike.errors import EncoderError  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 Fashion-MNIST test images as PNG in 10 class subfolders."""
    from lookalike.datasets import export_image_folder, load_fashion_mnist

    out = tmp_path_factory.mktemp("bingan-cli") / "images"
    export_image_folder(load_fashion_mnist("test"), out, limit=60, seed=0)
    return out


TINY = ["--bits", "16", "--width", "0.1", "--batch-size", "16", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bingan-model") / "tiny.bingan"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train", "bingan", "--data", str(folder), "--epochs", "2", "--eval-every", "1", "--out",
                     str(out), *TINY]) == 0
    return out, log.getvalue()


@pytest.fixture
def model(trained: tuple[Path, str]) -> Path:
    return trained[0]


@pytest.mark.slow
def test_train_index_search(trained: tuple[Path, str], folder: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    model, out = trained
    assert "epoch 2/2" in out and "map@1000" in out and (model.parent / "tiny.bingan.ckpt").is_file()
    catalog = str(tmp_path / "cat")
    assert main(["--catalog", catalog, "index", str(folder), "--encoder", f"bingan:{model}", "--no-progress"]) == 0
    query = sorted(folder.rglob("*.png"))[0]
    assert main(["--catalog", catalog, "search", str(query), "-k", "3", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    hits = json.loads(lines[-1]) if len(lines) == 1 else json.loads("\n".join(lines[1:]))
    assert len(hits["results"] if isinstance(hits, dict) else hits) == 3
    # the encoder gives the same bits as the torch discriminator of the file
    enc = get_encoder(f"bingan:{model}")
    assert enc.kind == "binary" and enc.dim == 16 and enc.spec == f"bingan:{model.resolve()}"
    codes = enc.encode([query])
    import torch
    from PIL import Image

    from lookalike.bingan.modelfile import load_discriminator, read_model
    disc = load_discriminator(read_model(model))
    x = torch.as_tensor(enc.prepare(Image.open(query).convert("RGB"))[None]).float()
    with torch.no_grad():
        expected = np.packbits(disc((x - 127.5) / 128).code.numpy() >= 0, axis=1)
    np.testing.assert_array_equal(codes, expected)


@pytest.mark.slow
def test_resume_continues(model: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "bingan", "--data", str(folder), "--epochs", "3", "--resume", "--out", str(model),
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "resumed" in out and "epoch 3/3" in out and "epoch 1/3" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--bits", "12"], "multiple of 8"),
    (["--epochs", "0"], "The '--epochs' parameter must be an integer >= 1. Got 0 instead."),
    (["--width", "0"], "width"),
    (["--threads", "-1"], "The '--threads' parameter must be an integer >= 0. Got -1 instead."),
    (["--limit", "1"], "The '--limit' parameter must be an integer >= 2. Got 1 instead."),
    (["--checkpoint-every", "0"], "The '--checkpoint-every' parameter"),
    (["--eval-every", "-1"], "The '--eval-every' parameter"),
    (["--gamma", "0"], "gamma"),
    (["--d-lr-ratio", "0"], "d_lr_ratio"),
    (["--d-lr-ratio", "nan"], "d_lr_ratio"),
    (["--g-steps", "0"], "g_steps"),
    (["--g-steps", "1000"], "g_steps"),
    (["--select-every", "-1"], "The '--select-every' parameter"),
    (["--validation", "0"], "The '--validation' parameter"),
    (["--select-every", "1"], "labelled training images"),  # a folder of images has no labels to select on
])
def test_bad_training_options(folder: Path, tmp_path: Path, args: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "bingan", "--data", str(folder), "--out", str(tmp_path / "m.bingan"), "--epochs", "1", *args]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("lookalike: error: ") and err.count("\n") == 1 and message in err
    assert not list(tmp_path.iterdir())


def test_bad_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "bingan", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", "bingan", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m")]) == 1
    assert "image" in capsys.readouterr().err


def test_resume_without_checkpoint(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "bingan", "--data", str(folder), "--out", str(tmp_path / "m.bingan"), "--resume",
                 *TINY]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_missing_or_bad_model_file(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EncoderError, match="no such BinGAN model file"):
        get_encoder(f"bingan:{tmp_path / 'missing.bingan'}")
    bad = tmp_path / "bad.bingan"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    catalog = str(tmp_path / "cat")
    assert main(["--catalog", catalog, "index", str(folder), "--encoder", f"bingan:{bad}"]) == 1
    assert "not a BinGAN model file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_path_with_a_plus_sign_is_not_mistaken_for_a_hashed_encoder(model: Path, folder: Path,
                                                                             tmp_path: Path) -> None:
    odd = tmp_path / "fm+v2.bingan"
    odd.write_bytes(model.read_bytes())
    catalog = str(tmp_path / "cat")
    images = sorted(folder.rglob("*.png"))
    assert main(["--catalog", catalog, "index", str(images[0].parent), "--encoder", f"bingan:{odd}",
                 "--no-progress"]) == 0
    assert main(["--catalog", catalog, "search", str(images[0]), "-k", "2", "--encoder", f"bingan:{odd}"]) == 0
