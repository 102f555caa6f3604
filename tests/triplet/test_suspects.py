"""Training on feature rows (the same model as from the class folders), and suspected label errors: against a
brute-force reference, and planted mislabelled images found at the top, through the library and the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lookalike.cli import main
from lookalike.errors import InvalidParameterError
from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import class_data, load_triplet_data
from lookalike.triplet.suspects import label_suspects, write_suspects
from lookalike.triplet.trainer import train, train_features

Inputs = Callable[[Any], np.ndarray]
QUIET = {"log": lambda line: None}
PLANTED = 3  # images of the "bag" class copied into the "trouser" folder


def test_feature_rows_train_the_model_the_folders_train(fm_folder: Path, inputs_of: Inputs, tmp_path: Path) -> None:
    cfg = TripletConfig(dim=32, hidden=64, batch_size=64, seed=4)
    data = load_triplet_data(fm_folder, cfg)
    rows = class_data(data.labels, cfg)
    np.testing.assert_array_equal(rows.train, data.train)
    np.testing.assert_array_equal(rows.val, data.val)
    inputs = inputs_of(data)
    folder = train(cfg, data, 2, tmp_path / "folder.triplet", inputs=inputs, **QUIET)
    lines: list[str] = []
    arrays = train_features(inputs, data.labels, cfg, 2, tmp_path / "rows.triplet", classes=data.classes,
                            log=lines.append)
    torch.testing.assert_close(arrays.head.state_dict(), folder.head.state_dict(), rtol=0, atol=0)
    assert [r["loss"] for r in arrays.history] == [r["loss"] for r in folder.history]
    assert arrays.baseline == folder.baseline and (tmp_path / "rows.triplet.ckpt").is_file()
    assert any("300 feature rows" in line for line in lines)
    assert [s.item for s in arrays.suspects] == [s.item for s in folder.suspects]
    before = sorted(tmp_path.iterdir())
    unsaved = train_features(inputs, data.labels, cfg, 2, **QUIET)  # no out: nothing written
    assert sorted(tmp_path.iterdir()) == before
    torch.testing.assert_close(unsaved.head.state_dict(), folder.head.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize(("labels", "message"), [
    (np.zeros((4, 2), dtype=int), "1-d array of non-negative integers"),
    (np.array([0.0, 1.0, 0.0, 1.0]), "1-d array of non-negative integers"),
    (np.array([0, 1, -1, 1]), "1-d array of non-negative integers"),
    (np.array([3, 3, 3]), "at least 2 classes"),
    (np.array([0, 0, 1]), "at least 2 classes of at least 2 items"),
])
def test_bad_feature_labels(labels: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        class_data(labels, TripletConfig())
    with pytest.raises(InvalidParameterError, match=message):
        train_features(np.zeros((len(labels), 8), dtype=np.float32), labels, TripletConfig(), 1, **QUIET)


def test_feature_rows_refuse_mismatches_and_fine_tuning() -> None:
    with pytest.raises(InvalidParameterError, match="must match"):
        train_features(np.zeros((5, 1280), dtype=np.float32), np.array([0, 0, 1, 1]), TripletConfig(), 1)
    with pytest.raises(InvalidParameterError, match="frozen backbone"):
        train_features(np.zeros((4, 1280), dtype=np.float32), np.array([0, 0, 1, 1]),
                       TripletConfig(fine_tune=1), 1)
    with pytest.raises(InvalidParameterError, match="resume needs"):
        train_features(np.zeros((4, 1280), dtype=np.float32), np.array([0, 0, 1, 1]), TripletConfig(), 1,
                       resume=True)


def _brute_force(x: np.ndarray, labels: np.ndarray, k: int, share: float) -> list[tuple[int, float, int]]:
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    out = []
    for i in range(len(x)):
        nn = np.argsort(-sim[i], kind="stable")[:k]
        other = labels[nn] != labels[i]
        if other.mean() >= share:
            out.append((i, float(other.mean()), int(np.bincount(labels[nn]).argmax())))
    return out


def test_suspects_against_a_brute_force_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    labels = np.repeat(np.arange(4), 50)
    x = centres[labels] + 0.6 * rng.normal(size=(200, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    flipped = rng.choice(200, 6, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1) % 4
    for k, share in ((10, 0.8), (5, 0.6), (1, 1.0)):
        got = label_suspects(x, noisy, k=k, share=share)
        ref = _brute_force(x, noisy, k, share)
        assert sorted((s.item, s.disagreement, s.looks_like) for s in got) == sorted(ref)
        keys = [(-s.disagreement, -s.similarity) for s in got]
        assert keys == sorted(keys)  # most disagreeing first, then the most similar to the other class
    got = label_suspects(x, noisy, k=10, share=0.8)
    assert set(flipped) <= {s.item for s in got}
    assert all(s.looks_like == labels[s.item] for s in got if s.item in flipped)
    assert all(len(s.neighbours) == 10 and s.item not in s.neighbours for s in got)
    out = write_suspects(tmp_path / "s.csv", got, paths=[Path(f"img{i}.png") for i in range(200)],
                         classes=("a", "b", "c", "d"))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["item"]) for r in rows] == [s.item for s in got] and rows[0]["rank"] == "1"
    assert rows[0]["path"] == f"img{got[0].item}.png" and rows[0]["label"] in "abcd"
    for bad in ({"k": 0}, {"k": 200}, {"share": 0}, {"share": 1.5}):
        with pytest.raises(InvalidParameterError):
            label_suspects(x, noisy, **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="must match"):
        label_suspects(x, noisy[:-1])


def _planted_tree(fm_folder: Path, root: Path, classes: tuple[str, ...], per: int) -> tuple[dict[Path, Path],
                                                                                           list[Path]]:
    """``per`` images of each class, and PLANTED bag images copied (renamed) into the trouser folder; returns
    (new path -> original path, the planted copies)."""
    origin, planted = {}, []
    for name in classes:
        (root / name).mkdir(parents=True)
        for img in sorted((fm_folder / name).glob("*.png"))[:per]:
            shutil.copy(img, root / name / img.name)
            origin[root / name / img.name] = img
    for img in sorted((fm_folder / "bag").glob("*.png"))[-PLANTED:]:
        copy = root / "trouser" / f"planted-{img.name}"
        shutil.copy(img, copy)
        origin[copy] = img
        planted.append(copy)
    return origin, planted


def test_planted_label_errors_come_out_on_top(fm_folder: Path, fm_features: dict[Path, np.ndarray],
                                              tmp_path: Path) -> None:
    origin, planted = _planted_tree(fm_folder, tmp_path / "tree", ("trouser", "bag", "sneaker"), 20)
    cfg = TripletConfig(dim=32, hidden=64, seed=0)
    data = load_triplet_data(tmp_path / "tree", cfg)
    inputs = np.stack([fm_features[origin[Path(p)]] for p in data.paths])
    lines: list[str] = []
    trainer = train(cfg, data, 3, None, inputs=inputs, log=lines.append)
    top = [data.paths[s.item] for s in trainer.suspects[:PLANTED]]
    assert sorted(top) == sorted(planted), [(data.paths[s.item].name, s.disagreement) for s in trainer.suspects]
    assert all(data.classes[s.looks_like] == "bag" and data.classes[s.label] == "trouser"
               for s in trainer.suspects[:PLANTED])
    log = "\n".join(lines)
    assert f"suspected label errors: {len(trainer.suspects)} of {len(data.paths)} items" in log
    assert f"{planted[0]}: labelled trouser, looks like bag (" in log
    quiet = train(cfg, data, 1, None, inputs=inputs, suspect_k=0, **QUIET)
    assert quiet.suspects == []


@pytest.mark.slow
def test_cli_writes_the_suspects_csv(fm_folder: Path, tmp_path: Path) -> None:
    _, planted = _planted_tree(fm_folder, tmp_path / "tree", ("trouser", "bag", "sneaker"), 12)
    out, report = tmp_path / "m.triplet", tmp_path / "suspects.csv"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train", "triplet", "--data", str(tmp_path / "tree"), "--out", str(out), "--epochs", "2",
                     "--dim", "32", "--hidden", "64", "--threads", "1", "--no-progress",
                     "--suspects", str(report), "--suspect-k", "5", "--suspect-share", "0.6"]) == 0
    rows = list(csv.DictReader(io.StringIO(report.read_text())))
    assert sorted(Path(r["path"]) for r in rows[:PLANTED]) == sorted(planted), rows
    assert {(r["label"], r["looks_like"]) for r in rows[:PLANTED]} == {("trouser", "bag")}
    assert "suspected label errors: " in log.getvalue() and f"wrote {report}" in log.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    (["--suspect-share", "0"], "The '--suspect-share' parameter must be a real number in (0, 1]. Got 0.0 instead."),
    (["--suspect-share", "nan"], "'--suspect-share'"),
    (["--suspect-k", "-1"], "The '--suspect-k' parameter must be an integer >= 0. Got -1 instead."),
    (["--suspects", "s.csv", "--suspect-k", "0"], "'--suspects' parameter must be used with class folders"),
])
def test_bad_suspect_options(fm_folder: Path, tmp_path: Path, args: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "triplet", "--data", str(fm_folder), "--out", str(tmp_path / "m.triplet"), "--epochs", "1",
            "--dim", "8", "--hidden", "0", "--no-progress", *args]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("lookalike: error: ") and message in err, err
    assert not list(tmp_path.iterdir())


def test_suspects_need_class_folders(fm_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = sorted(fm_folder.rglob("*.png"))
    (tmp_path / "t.csv").write_text(f"{images[0]},{images[1]},{images[-1]}\n")
    assert main(["train", "triplet", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "m.triplet"),
                 "--suspects", str(tmp_path / "s.csv")]) == 1
    assert "'--suspects' parameter must be used with class folders" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_no_validation_triplets_logs_no_accuracy(fm_folder: Path, inputs_of: Inputs) -> None:
    cfg = TripletConfig(dim=8, hidden=0, val_fraction=0.0)
    data = load_triplet_data(fm_folder, cfg)
    lines: list[str] = []
    trainer = train(cfg, data, 1, None, inputs=inputs_of(data), suspect_k=0, log=lines.append)
    assert len(data.val) == 0 and np.isnan(trainer.history[-1]["val_accuracy"])
    assert "no validation triplets (val_fraction 0): no triplet accuracy is measured" in lines
    assert [line for line in lines if line.startswith("epoch 1/1")][0].count("nan") == 0
