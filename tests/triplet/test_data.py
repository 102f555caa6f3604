"""Triplet sources: class folders, CSV triplets, CSV pairs, the validation split, and hostile input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import DatasetError, DatasetNotFoundError, InvalidParameterError
from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import load_triplet_data

CFG = TripletConfig()


def _images(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def _small_tree(fm_folder: Path, root: Path, classes: int = 3, per: int = 5) -> Path:
    for c, cls in enumerate(sorted(p for p in fm_folder.iterdir() if p.is_dir())[:classes]):
        (root / cls.name).mkdir(parents=True)
        for img in sorted(cls.glob("*.png"))[:per]:
            shutil.copy(img, root / cls.name / img.name)
        assert c < classes
    return root


def test_class_folders_split_off_validation_triplets(fm_folder: Path) -> None:
    data = load_triplet_data(fm_folder, CFG)
    assert data.kind == "classes" and len(data.paths) == 300 and data.labels.max() == 9
    train = set(data.train.tolist())
    held = set(data.val[:, :2].ravel().tolist()) | set(data.val[:, 2].tolist())
    assert not train & held and len(train) + len({*data.val[:, 0]}) == 300  # every held-out image is a query
    q, p, n = data.val.T
    assert (data.labels[q] == data.labels[p]).all() and (data.labels[q] != data.labels[n]).all() and (q != p).all()
    again = load_triplet_data(fm_folder, CFG)
    np.testing.assert_array_equal(again.val, data.val)  # seeded
    assert not np.array_equal(load_triplet_data(fm_folder, CFG.replace(seed=1)).val, data.val)
    assert len(load_triplet_data(fm_folder, CFG.replace(val_fraction=0)).val) == 0


def test_csv_triplets_relative_to_the_csv(fm_folder: Path, tmp_path: Path) -> None:
    imgs = _images(fm_folder)
    rows = ["query,positive,negative", "", "# a comment"]
    rows += [f"{imgs[i].relative_to(fm_folder)},{imgs[i + 1].relative_to(fm_folder)},{imgs[-1 - i]}"
             for i in range(0, 20, 2)]
    csv_path = fm_folder / "triplets.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    try:
        data = load_triplet_data(csv_path, CFG)
    finally:
        csv_path.unlink()
    assert data.kind == "triplets" and len(data.train) + len(data.val) == 10 and len(data.val) == 2
    assert data.paths[0] == fm_folder / imgs[0].relative_to(fm_folder) and len(data.paths) == 30


def test_csv_pairs_form_groups(fm_folder: Path, tmp_path: Path) -> None:
    imgs = _images(fm_folder)
    # a~b, b~c: one group; d~e another; f~g a third
    text = "\n".join(f"{imgs[a]},{imgs[b]}" for a, b in [(0, 1), (1, 2), (40, 41), (80, 81)])
    (tmp_path / "pairs.csv").write_text(text)
    data = load_triplet_data(tmp_path / "pairs.csv", CFG.replace(val_fraction=0.25), pairs=True)
    assert data.kind == "pairs" and data.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert len(data.train) == 3 and len(data.val) == 1
    q, p, n = data.val[0]
    assert data.labels[q] == data.labels[p] != data.labels[n]


def _csv(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "t.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_hostile_csvs_are_refused_clearly(fm_folder: Path, tmp_path: Path) -> None:
    a, b, c = (str(p) for p in _images(fm_folder)[:3])
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    cases = [
        (f"{a},{b}\n", "row 1 has 2 field(s); expected 3: triplets (query, positive, negative) (a CSV of pairs "
                       "needs --pairs)"),
        (f"{a},{b},{c},{a}\n", "row 1 has 4 field(s)"),
        (f"{a},{b},{c}\n{a},,{c}\n", "row 2 has an empty field"),
        (f"{a},{b},missing.png\n", "row 1: missing.png: no such file (paths are relative to the CSV's folder)"),
        (f"{a},{b},notes.txt\n", "row 1: notes.txt: not an image"),
        (f"{a},{b},sub\n", "row 1: sub: a folder"),
        (f"{a},{a},{c}\n", "row 1 names one image twice"),
        ("query,positive,negative\n\n", "no rows"),
        (b"\xff\xfe\x00bad", "not a UTF-8 text CSV"),
        (f'"{a},{b},{c}\n', "row 1 has 1 field(s)"),
    ]
    for text, message in cases:
        with pytest.raises(DatasetError) as err:
            load_triplet_data(_csv(tmp_path, text), CFG)
        assert message in str(err.value) and str(err.value).startswith(str(tmp_path / "t.csv"))
    with pytest.raises(DatasetError, match="row 1 has 3 field"):
        load_triplet_data(_csv(tmp_path, f"{a},{b},{c}\n"), CFG, pairs=True)
    with pytest.raises(DatasetError, match="one group"):
        load_triplet_data(_csv(tmp_path, f"{a},{b}\n{b},{c}\n"), CFG, pairs=True)


def test_hostile_folders_are_refused_clearly(fm_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such file or folder"):
        load_triplet_data(tmp_path / "nope", CFG)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_triplet_data(tmp_path / "empty", CFG)
    one = _small_tree(fm_folder, tmp_path / "one", classes=1)
    with pytest.raises(DatasetError, match="one class only"):
        load_triplet_data(one, CFG)
    tree = _small_tree(fm_folder, tmp_path / "tree")
    (tree / "zz-empty").mkdir()
    (tree / "zz-empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="zz-empty: class folder holds no images"):
        load_triplet_data(tree, CFG)
    shutil.rmtree(tree / "zz-empty")
    (tree / "lonely").mkdir()
    shutil.copy(_images(tree)[0], tree / "lonely" / "x.png")
    with pytest.raises(DatasetError, match="lonely: class folder holds 1 image"):
        load_triplet_data(tree, CFG)
    with pytest.raises(DatasetError, match="--pairs expects a CSV"):
        load_triplet_data(tree, CFG, pairs=True)


@pytest.mark.parametrize(("change", "message"), [
    ({"dim": 1}, "The '--dim' parameter of triplet training must be an integer in [2, 4096]. Got 1 instead."),
    ({"margin": 0.0}, "'--margin'"), ({"margin": float("nan")}, "'--margin'"), ({"distance": "l1"}, "'--distance'"),
    ({"mining": "easy"}, "'--mining'"), ({"fine_tune": 17}, "'--fine-tune'"), ({"batch_size": 2}, "'--batch-size'"),
    ({"lr": 0}, "'--lr'"), ({"val_fraction": 0.9}, "'--val-fraction'"), ({"per_class": 1}, "'--per-class'"),
    ({"seed": -1}, "'--seed'"), ({"dim": True}, "'--dim'"),
])
def test_bad_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        TripletConfig(**change)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_config_round_trips_through_json() -> None:
    cfg = TripletConfig(dim=64, margin=0.3, distance="angular", mining="all", fine_tune=2, lr=0.01)
    assert TripletConfig.from_json(cfg.to_json()) == cfg and cfg.g == 0.3 and TripletConfig().g == 0.05
    with pytest.raises(InvalidParameterError, match="unknown keys: bits"):
        TripletConfig.from_json('{"bits": 3}')
