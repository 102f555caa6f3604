"""Triplets people judged in a catalogue (issue 14, part 3): ``train triplet --from-catalog`` trains on them (the
stored efficientnet-lite0 vectors as inputs, whole references held out), ``eval triplets`` scores the catalogue's
encoders and the trained model on them, and bad input is one error line."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike import Catalog
from lookalike.cli import main
from lookalike.encoders import get_encoder
from lookalike.errors import DatasetError
from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import triplet_accuracy
from lookalike.triplet.from_catalog import catalog_data, score_triplets

TINY = ["--hidden", "64", "--threads", "1", "--no-progress"]  # --from-catalog: a residual head, 1280-d


@pytest.fixture(scope="module")
def judged(fm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An efficientnet-lite0 catalogue of 8 images of each of 5 classes, with a person's judgements about 10
    reference items: 3 items of its class as similar, and as not similar the 3 nearest items of other classes
    (the hard cases a person corrects)."""
    root = tmp_path_factory.mktemp("judged")
    for cls in sorted(fm_folder.iterdir())[:5]:
        (root / "shop" / cls.name).mkdir(parents=True)
        for image in sorted(cls.iterdir())[:8]:
            shutil.copy(image, root / "shop" / cls.name / image.name)
    path = root / "cat"
    with Catalog(path) as cat:
        cat.index_folder(root / "shop")
        rng = np.random.default_rng(0)
        for ref in rng.choice([i.id for i in cat.list(limit=100)], size=10, replace=False):
            cls = ref.split("/")[0]
            hits = cat.similar(ref, k=39)
            same = [h.id for h in hits if h.id.split("/")[0] == cls][:3]
            other = [h.id for h in hits if h.id.split("/")[0] != cls][:3]
            cat.judgements.judge(ref, similar=same, dissimilar=other)
    return path


def test_catalog_data_holds_out_whole_references_and_reads_the_stored_vectors(judged: Path) -> None:
    with Catalog(judged) as cat:
        data, inputs = catalog_data(cat, TripletConfig(val_fraction=0.2, seed=0))
        triplets = cat.judgements.triplets()
    assert data.kind == "triplets" and len(data.train) + len(data.val) == len(triplets) == 90
    assert len(data.val) == 18  # 2 of the 10 references, 9 triplets each
    assert not set(data.train[:, 0]) & set(data.val[:, 0])
    assert {data.names[i] for i in data.train[:, 0]} | {data.names[i] for i in data.val[:, 0]} == \
        {a.id for a, _, _ in triplets}
    assert inputs is not None and inputs.shape == (len(data.paths), 1280)
    fresh = get_encoder("efficientnet-lite0").encode(data.paths)  # the stored vectors are the images' own
    assert np.allclose(inputs, fresh, atol=1e-5)
    again, _ = catalog_data(Catalog(judged), TripletConfig(val_fraction=0.2, seed=0))
    assert np.array_equal(again.val, data.val)  # seeded
    _, none = catalog_data(Catalog(judged), TripletConfig(fine_tune=1))
    assert none is None  # fine-tuning reads the images


@pytest.mark.slow
def test_train_from_catalog_then_eval(judged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "judged.triplet"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train", "triplet", "--from-catalog", "--catalog", str(judged), "--epochs", "15",
                     "--batch-size", "32", "--out", str(model), *TINY]) == 0
    text = log.getvalue()
    assert "90 triplets of" in text and "2 of 10 reference items held out" in text
    assert "validation triplet accuracy before training: efficientnet-lite0 features" in text
    enc = get_encoder(f"triplet:{model}")
    assert enc.config.residual and enc.dim == 1280  # the default of --from-catalog (benchmarks/judged.py)
    assert len(enc.meta["held_out"]) == 18 and all(len(row) == 3 for row in enc.meta["held_out"])
    capsys.readouterr()
    assert main(["eval", "triplets", "--catalog", str(judged), "--model", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    scores = {s["encoder"]: s for s in report["scores"]}
    assert report["default"] == "efficientnet-lite0" and set(scores) == {"efficientnet-lite0", enc.spec}
    with Catalog(judged) as cat:
        data, inputs = catalog_data(cat, TripletConfig(val_fraction=0.2, seed=0))
    rows = np.concatenate([data.train, data.val])
    assert inputs is not None
    assert scores["efficientnet-lite0"]["accuracy"] == pytest.approx(triplet_accuracy(inputs, rows))
    trained = scores[enc.spec]
    assert trained["accuracy"] == pytest.approx(triplet_accuracy(enc.embed_features(inputs), rows))
    assert trained["held_out"] == 18 and 0 <= trained["held_out_accuracy"] <= 1
    assert trained["baseline_held_out"] == pytest.approx(triplet_accuracy(inputs, data.val))
    # the training triplets are learned: the hard negatives no longer fool the embedding as they fool the features
    assert triplet_accuracy(enc.embed_features(inputs), data.train) > triplet_accuracy(inputs, data.train)
    assert main(["eval", "triplets", "--catalog", str(judged), "--model", str(model)]) == 0
    table = capsys.readouterr().out
    assert "90 triplets judged" in table and "| efficientnet-lite0 (default) |" in table


def test_a_binary_encoder_is_scored_by_hamming(judged: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(judged, tmp_path / "cat"))
    with Catalog(path) as cat:
        codes = cat.fit_hasher("itq", 32)
        scores = {s.encoder: s for s in score_triplets(cat)}
        data, inputs = catalog_data(cat, TripletConfig(val_fraction=0))
        vectors, _ = cat.vector_index(codes.spec).vectors(np.array([cat.get(n).key for n in data.names]))
    assert set(scores) >= {"efficientnet-lite0", codes.spec}
    assert not any("sketch" in s for s in scores)
    assert scores[codes.spec].accuracy == pytest.approx(triplet_accuracy(vectors, data.train, binary=True))
    bits = np.unpackbits(vectors, axis=1).astype(int)
    q, p, n = (bits[data.train[:, i]] for i in range(3))
    expected = np.mean((q != p).sum(1) < (q != n).sum(1))  # fewer differing bits is closer
    assert scores[codes.spec].accuracy == pytest.approx(expected)


def test_no_triplets_and_bad_options_are_one_error_line(fm_folder: Path, judged: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    with Catalog(empty, "pixels:size=8") as cat:
        cat.index_folder(sorted(fm_folder.iterdir())[0])
        first = cat.list(limit=2)
        cat.judgements.judge(first[0].id, similar=[first[1].id])  # a similar item, no negative: no triplet
    with pytest.raises(DatasetError, match="no triplets"):
        catalog_data(Catalog(empty), TripletConfig())
    for argv in (["train", "triplet", "--from-catalog", "--catalog", str(empty), "--out", str(tmp_path / "m")],
                 ["eval", "triplets", "--catalog", str(empty)],
                 ["train", "triplet", "--from-catalog", "--pairs", "--catalog", str(judged), "--out", "m"],
                 ["eval", "triplets", "--catalog", str(judged), "--model", str(tmp_path / "missing.triplet")]):
        assert main([*argv, *(TINY if argv[0] == "train" else [])]) == 1
        out, err = capsys.readouterr()
        assert err.startswith("lookalike: error: ") and err.count("\n") == 1, (out, err)
    with pytest.raises(SystemExit) as usage:  # --data and --from-catalog are one or the other
        main(["train", "triplet", "--from-catalog", "--data", str(fm_folder), "--out", "m"])
    assert usage.value.code == 2
    assert not (tmp_path / "m").exists()


def test_eval_scores_only_held_out_triplets_that_still_hold(judged: Path, tmp_path: Path) -> None:
    """A verdict changed after training drops its held-out triplets from the model's held-out score."""
    from lookalike.triplet.trainer import train

    path = Path(shutil.copytree(judged, tmp_path / "cat"))
    model = tmp_path / "m.triplet"
    with Catalog(path) as cat:
        cfg = TripletConfig(dim=1280, hidden=0, residual=True, val_fraction=0.2)
        data, inputs = catalog_data(cat, cfg)
        train(cfg, data, 1, model, device="cpu", inputs=inputs, log=lambda _: None, suspect_k=0)
        held = get_encoder(f"triplet:{model}").meta["held_out"]
        assert next(s for s in score_triplets(cat, [str(model)]) if s.held_out).held_out == len(held) == 18
        ref, pos, _ = held[0]
        cat.judgements.judge(ref, dissimilar=[pos])  # that positive is not similar after all
        left = next(s for s in score_triplets(cat, [str(model)]) if s.encoder.startswith("triplet:"))
        assert left.held_out == len([row for row in held if not (row[0] == ref and row[1] == pos)])
        assert left.held_out < 18


def test_a_judged_item_whose_file_is_gone_is_named(judged: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(judged, tmp_path / "cat"))
    with Catalog(path) as cat:
        victim = cat.judgements.triplets()[0][1]
        moved = Path(str(victim.path))
        moved.rename(moved.with_suffix(".gone"))
        try:
            data, inputs = catalog_data(cat, TripletConfig())  # the stored vectors need no image file
            assert inputs is not None and len(data.names) == len(inputs)
            assert {s.encoder for s in score_triplets(cat)} == {"efficientnet-lite0"}
            with pytest.raises(DatasetError, match="no image file"):  # fine-tuning reads the images
                catalog_data(cat, TripletConfig(fine_tune=1))
        finally:
            moved.with_suffix(".gone").rename(moved)
