"""``lookalike train triplet`` → ``lookalike index DIR --encoder triplet:PATH`` → ``lookalike search``, and bad input
(one ``lookalike: error:`` line and exit status 1, as every command; argparse's usage errors exit with 2)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.cli import main
from lookalike.encoders import get_encoder
from lookalike.errors import EncoderError

TINY = ["--dim", "32", "--hidden", "64", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(fm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("triplet-model") / "fm.triplet"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train", "triplet", "--data", str(fm_folder), "--epochs", "3", "--out", str(out), *TINY]) == 0
    return out, log.getvalue()


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("lookalike: error: ") and err.count("\n") == 1, (out, err)
    return err


@pytest.mark.slow
def test_train_index_search(trained: tuple[Path, str], fm_folder: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    model, log = trained
    lines = log.strip().splitlines()
    assert "validation triplet accuracy before training: efficientnet-lite0 features 0." in log
    assert "epoch 3/3: loss" in log and "val_accuracy 0." in log and (model.parent / "fm.triplet.ckpt").is_file()
    assert lines[-1].startswith(f"wrote {model} (32-d, 3 epochs); validation triplet accuracy 0.")
    assert "untrained -> 0." in lines[-1] and f"--encoder triplet:{model}" in lines[-1]
    folder = tmp_path / "shop"
    for cls in sorted(fm_folder.iterdir())[:3]:
        shutil.copytree(cls, folder / cls.name)
    catalog = str(tmp_path / "cat")
    assert main(["--catalog", catalog, "index", str(folder), "--encoder", f"triplet:{model}", "--no-progress"]) == 0
    capsys.readouterr()
    query = sorted(folder.rglob("*.png"))[0]
    assert main(["--catalog", catalog, "search", str(query), "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert len(hits) == 5 and hits[0]["path"].endswith(query.name) and hits[0]["score"] == pytest.approx(1, abs=1e-5)
    assert main(["--catalog", catalog, "info"]) == 0
    assert f"triplet:{model.resolve()} (float, 32 dims" in capsys.readouterr().out
    enc = get_encoder(f"triplet:{model}")
    np.testing.assert_allclose(np.linalg.norm(enc.encode([query]), axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_resume_continues(trained: tuple[Path, str], fm_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = trained
    assert main(["train", "triplet", "--data", str(fm_folder), "--epochs", "4", "--resume", "--out", str(model),
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "resumed" in out and "epoch 4/4" in out and "epoch 3/4" not in out and "(32-d, 4 epochs)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "0"], "The '--epochs' parameter must be an integer >= 1. Got 0 instead."),
    (["--dim", "1"], "The '--dim' parameter of triplet training must be an integer in [2, 4096]. Got 1 instead."),
    (["--margin", "0"], "'--margin'"),
    (["--margin", "nan"], "'--margin'"),
    (["--fine-tune", "17"], "'--fine-tune'"),
    (["--batch-size", "2"], "'--batch-size'"),
    (["--val-fraction", "0.9"], "'--val-fraction'"),
    (["--threads", "-1"], "The '--threads' parameter must be an integer >= 0. Got -1 instead."),
    (["--checkpoint-every", "0"], "'--checkpoint-every'"),
    (["--device", "tpu"], "--device: expected auto, cpu or cuda[:N]"),
    (["--resume"], "no checkpoint to resume from"),
])
def test_bad_training_options(fm_folder: Path, tmp_path: Path, args: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "triplet", "--data", str(fm_folder), "--out", str(tmp_path / "m.triplet"), "--epochs", "1",
            *TINY, *args]
    assert main(argv) == 1
    assert message in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--distance", "l1"], ["--mining", "easy"], ["--dim", "x"]])
def test_usage_errors_exit_with_2(fm_folder: Path, tmp_path: Path, args: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "triplet", "--data", str(fm_folder), "--out", str(tmp_path / "m"), *args])
    assert exc.value.code == 2
    assert "usage: lookalike train triplet" in capsys.readouterr().err


def test_bad_data(fm_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "m.triplet")
    assert main(["train", "triplet", "--data", str(tmp_path / "nope"), "--out", out]) == 1
    assert "no such file or folder" in _one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["train", "triplet", "--data", str(tmp_path / "empty"), "--out", out]) == 1
    assert "no images found" in _one_error_line(capsys)
    shutil.copytree(sorted(fm_folder.iterdir())[0], tmp_path / "one" / "shirts")
    assert main(["train", "triplet", "--data", str(tmp_path / "one"), "--out", out]) == 1
    assert "one class only ('shirts')" in _one_error_line(capsys)
    images = sorted(fm_folder.rglob("*.png"))
    (tmp_path / "t.csv").write_text(f"{images[0]},{images[1]},{images[2]}\n{images[0]},{images[1]}\n")
    assert main(["train", "triplet", "--data", str(tmp_path / "t.csv"), "--out", out]) == 1
    assert "t.csv: row 2 has 2 field(s)" in _one_error_line(capsys)
    (tmp_path / "t.csv").write_text(f"{images[0]},{images[1]},gone.png\n")
    assert main(["train", "triplet", "--data", str(tmp_path / "t.csv"), "--out", out]) == 1
    assert "row 1: gone.png: no such file" in _one_error_line(capsys)
    assert main(["train", "triplet", "--pairs", "--data", str(tmp_path / "t.csv"), "--out", out]) == 1
    assert "row 1 has 3 field(s); expected 2" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "one", "t.csv"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 8-d model file, written in a fraction of a second."""
    from lookalike.triplet.config import TripletConfig
    from lookalike.triplet.modelfile import write_model
    from lookalike.triplet.nets import ProjectionHead

    cfg = TripletConfig(dim=8, hidden=0)
    return write_model(tmp_path_factory.mktemp("tiny") / "tiny.triplet", ProjectionHead(cfg), cfg, {})


def test_bad_model_files(tiny_model: Path, fm_folder: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model
    assert get_encoder(f"triplet:{model}").dim == 8
    images = sorted(fm_folder.rglob("*.png"))
    with pytest.raises(EncoderError, match="no such triplet model file"):
        get_encoder(f"triplet:{tmp_path / 'missing.triplet'}")
    truncated = tmp_path / "truncated.triplet"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    not_a_model = tmp_path / "photo.triplet"
    not_a_model.write_bytes(images[0].read_bytes())
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array("lookalike-bingan"), version=np.array(1))
    for path, message in ((truncated, "not a triplet model file, or a truncated one"),
                          (not_a_model, "not a triplet model file, or a truncated one"),
                          (other, "not a triplet model file (its format is 'lookalike-bingan')"),
                          (tmp_path / "missing.triplet", "no such triplet model file")):
        with pytest.raises(EncoderError, match=message.replace("(", r"\(").replace(")", r"\)")):
            get_encoder(f"triplet:{path}")
        catalog = str(tmp_path / f"cat-{path.name}")
        assert main(["--catalog", catalog, "index", str(images[0].parent), "--encoder", f"triplet:{path}"]) == 1
        assert message in _one_error_line(capsys)
    # a valid archive whose ONNX graph is garbage fails when first used, with the same kind of error
    with np.load(model) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["onnx"] = np.frombuffer(b"not an onnx graph", dtype=np.uint8)
    broken = tmp_path / "broken.triplet"
    with open(broken, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(EncoderError, match="ONNX graph does not load"):
        get_encoder(f"triplet:{broken}").encode([images[0]])
    assert main(["--catalog", str(tmp_path / "cat-broken"), "index", str(images[0].parent), "--encoder",
                 f"triplet:{broken}", "--no-progress"]) == 1
    assert "the triplet model's ONNX graph does not load" in _one_error_line(capsys)
