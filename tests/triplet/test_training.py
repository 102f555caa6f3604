"""Training on Fashion-MNIST class folders, the model file and its encoder, resume, CSV sources, fine-tuning."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lookalike.encoders import get_encoder
from lookalike.triplet.config import TripletConfig
from lookalike.triplet.data import load_triplet_data
from lookalike.triplet.modelfile import load_head, read_model
from lookalike.triplet.trainer import Trainer, backbone_inputs, train, triplet_accuracy

Inputs = Callable[[Any], np.ndarray]
QUIET = {"log": lambda line: None}


@pytest.mark.slow
def test_training_raises_validation_triplet_accuracy(fm_folder: Path, inputs_of: Inputs, tmp_path: Path) -> None:
    cfg = TripletConfig(seed=0)
    data = load_triplet_data(fm_folder, cfg)
    t0 = time.perf_counter()
    trainer = train(cfg, data, 6, tmp_path / "m.triplet", inputs=inputs_of(data), **QUIET)
    assert time.perf_counter() - t0 < 20
    before, after = trainer.baseline["untrained"], trainer.history[-1]["val_accuracy"]
    assert len(data.val) >= 200 and after > before + 0.01, (before, after)
    assert max(r["val_accuracy"] for r in trainer.history) > trainer.baseline["features"]
    meta = read_model(tmp_path / "m.triplet").meta
    assert meta["epochs"] == 6 and meta["val_accuracy"] == after and meta["baseline"] == trainer.baseline


def test_the_onnx_encoder_matches_the_torch_head(fm_folder: Path, fm_features: dict[Path, np.ndarray],
                                                 inputs_of: Inputs, tmp_path: Path) -> None:
    cfg = TripletConfig(dim=64, hidden=128, distance="angular", mining="all", seed=3)
    data = load_triplet_data(fm_folder, cfg)
    out = tmp_path / "m.triplet"
    trainer = train(cfg, data, 1, out, inputs=inputs_of(data), **QUIET)
    enc = get_encoder(f"triplet:{out}")
    assert (enc.kind, enc.dim, enc.spec, enc.input_size) == ("float", 64, f"triplet:{out.resolve()}", (224, 224))
    paths = sorted(fm_features)[:20]
    got = enc.encode(paths, batch_size=7)
    head, net = load_head(read_model(out))
    assert net is None
    with torch.no_grad():
        ref = head(torch.from_numpy(np.stack([fm_features[p] for p in paths]))).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(trainer.embed(np.stack([fm_features[p] for p in paths])), ref, atol=1e-6)


def test_resume_gives_the_uninterrupted_run(fm_folder: Path, inputs_of: Inputs, tmp_path: Path) -> None:
    cfg = TripletConfig(dim=32, hidden=64, batch_size=48, seed=5)
    data = load_triplet_data(fm_folder, cfg)
    inputs = inputs_of(data)
    whole = train(cfg, data, 4, tmp_path / "whole.triplet", inputs=inputs, **QUIET)
    train(cfg, data, 2, tmp_path / "part.triplet", inputs=inputs, **QUIET)
    lines: list[str] = []
    resumed = train(cfg, data, 4, tmp_path / "part.triplet", resume=True, inputs=inputs, log=lines.append)
    assert any("resumed" in line and "at epoch 2" in line for line in lines)
    assert [line for line in lines if line.startswith("epoch")][0].startswith("epoch 3/4")
    for (name, a), (_, b) in zip(whole.head.state_dict().items(), resumed.head.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert [r["loss"] for r in whole.history] == [r["loss"] for r in resumed.history]
    assert whole.baseline == resumed.baseline
    a, b = (get_encoder(f"triplet:{tmp_path / n}.triplet") for n in ("whole", "part"))
    x = inputs[:5]
    np.testing.assert_array_equal(a.embed_features(x), b.embed_features(x))  # type: ignore[attr-defined]


def test_the_same_seed_trains_the_same_model(fm_folder: Path, inputs_of: Inputs, tmp_path: Path) -> None:
    cfg = TripletConfig(dim=16, hidden=0, seed=9)
    data = load_triplet_data(fm_folder, cfg)
    one, two = (train(cfg, data, 1, tmp_path / f"{i}.triplet", inputs=inputs_of(data), **QUIET) for i in (1, 2))
    torch.testing.assert_close(one.head.state_dict(), two.head.state_dict(), rtol=0, atol=0)


def test_training_on_csv_triplets_and_pairs(fm_folder: Path, inputs_of: Inputs, tmp_path: Path) -> None:
    folder = load_triplet_data(fm_folder, TripletConfig(val_fraction=0))
    rng = np.random.default_rng(0)
    by_class = [np.flatnonzero(folder.labels == c) for c in range(10)]
    triplets, pairs = [], []
    for _ in range(200):
        c, o = rng.choice(10, 2, replace=False)
        q, p = rng.choice(by_class[c], 2, replace=False)
        n = rng.choice(by_class[o])
        triplets.append(",".join(str(folder.paths[i].relative_to(fm_folder)) for i in (q, p, n)))
        pairs.append(",".join(str(folder.paths[i].relative_to(fm_folder)) for i in (q, p)))
    for name, rows, as_pairs in (("t.csv", triplets, False), ("p.csv", pairs, True)):
        csv_path = fm_folder / name
        csv_path.write_text("\n".join(rows) + "\n")
        try:
            cfg = TripletConfig(dim=64, hidden=256, batch_size=96, seed=1)
            data = load_triplet_data(csv_path, cfg, pairs=as_pairs)
        finally:
            csv_path.unlink()
        assert data.kind == ("pairs" if as_pairs else "triplets") and len(data.val) == 40
        trainer = train(cfg, data, 5, tmp_path / f"{name}.triplet", inputs=inputs_of(data), **QUIET)
        assert trainer.history[-1]["val_accuracy"] > trainer.baseline["untrained"], name
        assert len(trainer.history) == 5 and all(np.isfinite(r["loss"]) for r in trainer.history)


def test_triplet_accuracy() -> None:
    v = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    assert triplet_accuracy(v, np.array([[0, 1, 2], [0, 2, 1], [2, 1, 0]])) == pytest.approx(2 / 3)
    assert np.isnan(triplet_accuracy(v, np.empty((0, 3), dtype=np.int64)))


@pytest.mark.slow
def test_fine_tuning_the_last_block(fm_folder: Path, fm_features: dict[Path, np.ndarray], tmp_path: Path) -> None:
    """--fine-tune 1 on 40 images: the prefix → suffix path gives the encoder's features before training, the
    exported whole-network graph gives the torch model's embeddings after, and the block's weights moved."""
    small = tmp_path / "small"
    for cls in sorted(p for p in fm_folder.iterdir() if p.is_dir()):
        (small / cls.name).mkdir(parents=True)
        for path in sorted(cls.glob("*.png"))[:4]:
            (small / cls.name / path.name).write_bytes(path.read_bytes())
    cfg = TripletConfig(dim=32, hidden=64, fine_tune=1, batch_size=40, per_class=4, val_fraction=0.5, seed=0)
    data = load_triplet_data(small, cfg)
    inputs = backbone_inputs(data, cfg)
    fresh = Trainer(cfg, "cpu")
    features = np.stack([fm_features[fm_folder / Path(p).relative_to(small)] for p in data.paths])
    np.testing.assert_allclose(fresh.features(inputs), features, atol=2e-5)
    out = tmp_path / "ft.triplet"
    trainer = train(cfg, data, 2, out, inputs=inputs, **QUIET)
    model = read_model(out)
    assert model.graph == "full" and model.backbone and all(k.startswith(("blocks.15.", "head.")) for k in
                                                            model.backbone)
    head, net = load_head(model)
    assert net is not None
    moved = net.trunk.state_dict()["blocks.15._project_conv.weight"]
    assert not torch.equal(moved, fresh.net.trunk.state_dict()["blocks.15._project_conv.weight"])  # type: ignore
    enc = get_encoder(f"triplet:{out}")
    paths = data.paths[:6]
    got = enc.encode(paths)
    from lookalike.images import load_image
    from lookalike.triplet.nets import FullModel

    images = torch.from_numpy(np.stack([enc.prepare(load_image(p).image) for p in paths]))
    with torch.no_grad():
        ref = FullModel(net.trunk, head).eval()(images).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-5)
    np.testing.assert_allclose(trainer.embed(inputs[:6]), ref, atol=2e-5)


@pytest.mark.parametrize("hidden", [0, 64])
def test_a_residual_head_starts_as_the_features_and_learns_a_correction(fm_folder: Path, inputs_of: Inputs,
                                                                         tmp_path: Path, hidden: int) -> None:
    """``residual``: normalize(x + mlp(x)) with the last layer at zero, so the untrained model (and its ONNX
    export) gives efficientnet-lite0's own features; training moves it away from them."""
    cfg = TripletConfig(dim=1280, hidden=hidden, residual=True, val_fraction=0.2)
    data = load_triplet_data(fm_folder, cfg)
    inputs = inputs_of(data)
    untrained = Trainer(cfg, "cpu")
    np.testing.assert_allclose(untrained.embed(inputs), inputs, atol=1e-6)
    model = tmp_path / "res.triplet"
    trainer = train(cfg, data, 2, model, device="cpu", inputs=inputs, **QUIET)
    trained = trainer.embed(inputs)
    assert np.abs(trained - inputs).max() > 1e-3
    enc = get_encoder(f"triplet:{model}")
    assert enc.dim == 1280 and enc.config.residual
    np.testing.assert_allclose(enc.embed_features(inputs), trained, atol=1e-5)
    assert trainer.baseline["untrained"] == pytest.approx(trainer.baseline["features"])


def test_a_residual_head_needs_the_features_length() -> None:
    from lookalike.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="1280"):
        TripletConfig(residual=True)  # dim 512
    with pytest.raises(InvalidParameterError, match="residual"):
        TripletConfig(dim=1280, residual=1)  # type: ignore[arg-type]
    assert TripletConfig.from_json(TripletConfig().to_json().replace(', "residual": false', "")) == TripletConfig()
