"""BinGAN networks, a tiny training run, checkpoints, the model file and its ONNX graph."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.bingan.config import BinGANConfig  # noqa: E402
from lookalike.bingan.data import TrainData, prepare_image  # noqa: E402
from lookalike.bingan.modelfile import load_discriminator, read_model, write_model  # noqa: E402
from lookalike.bingan.nets import Discriminator, Generator, data_init  # noqa: E402
from lookalike.bingan.trainer import Trainer, train  # noqa: E402
from lookalike.errors import EncoderError, InvalidParameterError  # noqa: E402

TINY = BinGANConfig(bits=16, width=0.1, batch_size=16, init_size=32, noise_dim=16)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """48 Fashion-MNIST training images, padded to 1×32×32."""
    from lookalike.bingan.data import prepare_array
    from lookalike.datasets import load_fashion_mnist

    return prepare_array(load_fashion_mnist("train").images[:48], TINY)


@pytest.mark.parametrize(("arch", "bits", "channels", "high"), [("retrieval", 16, 1, 19), ("retrieval", 64, 3, 19),
                                                                 ("patch", 256, 1, 13 * 36)])
def test_shapes(arch: str, bits: int, channels: int, high: int) -> None:
    cfg = BinGANConfig(bits=bits, arch=arch, channels=channels, width=0.1)
    d, g = Discriminator(cfg), Generator(cfg)
    out = d(torch.zeros((3, channels, 32, 32)))
    assert out.logits.shape == (3, 2) and out.code.shape == (3, bits) and out.high.shape == (3, high)
    fake = g(torch.rand((3, cfg.noise_dim)))
    assert fake.shape == (3, channels, 32, 32) and fake.abs().max() <= 1


def test_paper_widths() -> None:
    d = Discriminator(BinGANConfig(bits=32))
    convs = [m.v.shape[0] for m in d.modules() if getattr(m, "kind", "") == "conv"]
    assert convs == [96, 96, 96, 192, 192, 192, 192, 192, 192]
    p = Discriminator(BinGANConfig(bits=256, arch="patch"))
    assert [m.v.shape[0] for m in p.modules() if getattr(m, "kind", "") == "conv"] == [96] * 3 + [128] * 4 + [256, 128]


def test_data_dependent_init_normalises_and_freezes_g(images: np.ndarray) -> None:
    torch.manual_seed(0)
    d = Discriminator(TINY).eval()
    x = (torch.as_tensor(images).float() - 127.5) / 128
    with data_init(), torch.no_grad():
        d(x)
    first = d.features[1]  # the first conv: zero mean, unit variance per channel on the init batch
    with torch.no_grad():
        t = first(x)
    assert t.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (t.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
    assert not first.g.requires_grad and d.code_layer.g.requires_grad
    assert d(x).code.std().item() == pytest.approx(0.1, rel=0.1)  # the code layer's init_stdv


def test_config_rejects_bad_values() -> None:
    for bad in ({"bits": 12}, {"bits": 0}, {"arch": "x"}, {"channels": 2}, {"batch_size": 1}, {"lambda_dmr": -1.0},
                {"fit": "crop"}, {"width": 0}):
        with pytest.raises(InvalidParameterError):
            BinGANConfig(**bad)  # type: ignore[arg-type]
    assert BinGANConfig.from_json(TINY.to_json()) == TINY
    with pytest.raises(InvalidParameterError, match="unknown keys"):
        BinGANConfig.from_json(json.dumps({"bits": 16, "evil": 1}))


@pytest.mark.slow
def test_training_lowers_the_loss_and_resume_is_exact(images: np.ndarray, tmp_path: Path) -> None:
    data = TrainData(images, None, None, None, "test")
    a = train(TINY, data, 3, tmp_path / "a.bingan", checkpoint_every=3, log=lambda s: None)
    first, last = a.history[0], a.history[-1]
    assert last["d_unl"] < first["d_unl"]
    assert last["d_unl"] + TINY.lambda_dmr * last["dmr"] < first["d_unl"] + TINY.lambda_dmr * first["dmr"]
    # 2 epochs, then resume to 3: the same weights as 3 straight
    train(TINY, data, 2, tmp_path / "b.bingan", checkpoint_every=2, log=lambda s: None)
    b = train(TINY, data, 3, tmp_path / "b.bingan", resume=True, log=lambda s: None)
    assert b.epoch == 3 and len(b.history) == 3
    for (name, pa), pb in zip(a.D.state_dict().items(), b.D.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, msg=name)
    meta = read_model(tmp_path / "b.bingan").meta
    assert meta["epochs"] == 3 and meta["device"] == "cpu"


def test_model_file_onnx_matches_torch(images: np.ndarray, tmp_path: Path) -> None:
    import onnxruntime as ort

    trainer = Trainer(TINY, "cpu")
    trainer.initialise(images)
    path = write_model(tmp_path / "m.bingan", trainer.D, TINY, {"epochs": 0})
    model = read_model(path)
    assert model.config == TINY
    session = ort.InferenceSession(model.onnx, providers=["CPUExecutionProvider"])
    (onnx_codes,) = session.run(None, {"images": images[:20]})
    np.testing.assert_allclose(onnx_codes, trainer.codes(images[:20]), atol=1e-5)
    reloaded = load_discriminator(model)
    with torch.no_grad():
        np.testing.assert_allclose(reloaded((torch.as_tensor(images[:4]).float() - 127.5) / 128).code.numpy(),
                                   onnx_codes[:4], atol=1e-5)


def test_prepare_pads_and_resizes() -> None:
    from PIL import Image

    img = Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).convert("RGB")
    padded = prepare_image(img, TINY)
    assert padded.shape == (1, 32, 32) and padded[0, 2:30, 2:30].min() == 200 and padded[0, 0].max() == 0
    rgb = prepare_image(img, TINY.replace(channels=3, fit="resize"))
    assert rgb.shape == (3, 32, 32) and rgb.min() == 200


def test_hostile_and_broken_model_files(tmp_path: Path) -> None:
    cases = {"missing": None, "garbage": b"\x00not a zip" * 10, "empty": b""}
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(EncoderError, match="BinGAN model file"):
            read_model(path)
    pickled = tmp_path / "pickled.npz"  # an object array would need pickle: refused, never executed
    np.savez(pickled, format=np.array("lookalike-bingan"), version=np.array(1),
             config=np.array([{"bits": 16}], dtype=object))
    with pytest.raises(EncoderError, match="not a BinGAN model file"):
        read_model(pickled)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, format=np.array("lookalike-bingan"), version=np.array(99), config=np.array("{}"))
    with pytest.raises(EncoderError, match="version"):
        read_model(wrong)
    bad_cfg = tmp_path / "cfg.npz"
    np.savez(bad_cfg, format=np.array("lookalike-bingan"), version=np.array(1), config=np.array('{"bits": 13}'),
             onnx=np.zeros(4, np.uint8))
    with pytest.raises(EncoderError, match="config"):
        read_model(bad_cfg)
    assert zipfile.is_zipfile(bad_cfg)


def test_bad_checkpoint_is_refused(tmp_path: Path) -> None:
    from lookalike.bingan.modelfile import load_checkpoint

    (tmp_path / "x.ckpt").write_bytes(b"junk")
    with pytest.raises(InvalidParameterError, match="checkpoint"):
        load_checkpoint(tmp_path / "x.ckpt")
    with pytest.raises(InvalidParameterError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.ckpt")


def test_bit_stats_against_direct_evaluation() -> None:
    from lookalike.bingan.trainer import bit_stats

    codes = np.array([[1.0, -1.0, 0.0], [2.0, -3.0, -1.0], [0.5, -0.1, -2.0], [3.0, -2.0, -1.0]])
    stats = bit_stats(codes)  # p = (1, 0, 0.25): two constant bits, one at 25 %
    h = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    assert stats["hard_me"] == pytest.approx((1 + 1 + 0.25) / 3)
    assert stats["entropy"] == pytest.approx(h / 3)
    assert stats["constant"] == 2


def test_probe_shows_the_dropout_mismatch_of_the_reference_init(images: np.ndarray) -> None:
    """The reference's data-dependent init runs with dropout on, so the code is centred as the regularisers see
    it (dropout on), not as the encoder reads it (dropout off): the diagnostic must see both."""
    t = Trainer(TINY, "cpu")
    t.initialise(images[:32])
    stats = t.probe(images[32:])
    assert set(stats) == {f"{m}_{k}" for m in ("train", "eval") for k in ("hard_me", "entropy", "constant")}
    assert stats["train_hard_me"] < 0.5 and 0 <= stats["eval_hard_me"] <= 1
    assert t.D.training


def test_init_without_dropout_centres_the_code_the_encoder_reads(images: np.ndarray) -> None:
    """With ``init_dropout=False`` the code units start at zero mean with dropout off, as ``codes`` reads them."""
    t = Trainer(TINY.replace(init_dropout=False), "cpu")
    t.initialise(images[:32])
    c = t.codes(images[:32])
    np.testing.assert_allclose(c.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(c.std(axis=0), 0.1, rtol=1e-2)
    ref = Trainer(TINY, "cpu")
    ref.initialise(images[:32])
    assert np.abs(ref.codes(images[:32]).mean(axis=0)).max() > 1e-3  # the reference's init is off-centre there
    assert t.D.training and ref.D.training


def test_selection_keeps_the_epoch_with_the_best_validation_map(images: np.ndarray, tmp_path: Path) -> None:
    """select_every: a validation split of the training set is held out and the model file is the epoch whose
    validation mAP was best (recomputed here from that file), not the last; deterministic under the seed."""
    from lookalike.bingan.trainer import evaluate

    labels = np.arange(len(images)) % 4
    data = TrainData(images, labels, None, None, "test")
    cfg = TINY.replace(centre_high=True, gamma=0.1)
    a = train(cfg, data, 4, tmp_path / "a.bingan", select_every=1, validation=16, eval_k=8, log=lambda s: None)
    scores = [r["valid_map"] for r in a.history]
    assert len(scores) == 4 and a.selected == 1 + int(np.argmax(scores))
    meta = read_model(tmp_path / "a.bingan").meta
    assert meta["selected"] == {"epoch": a.selected, "valid_map": max(scores)}
    held = np.zeros(len(images), bool)
    held[np.random.default_rng(cfg.seed + 1).choice(len(images), 16, replace=False)] = True
    d = load_discriminator(read_model(tmp_path / "a.bingan"))
    with torch.no_grad():
        codes = d((torch.as_tensor(images).float() - 127.5) / 128.0).code.numpy()
    assert evaluate(codes[held], codes[~held], labels[held], labels[~held], 8) == pytest.approx(max(scores))
    np.testing.assert_allclose(a.codes(images), codes, atol=1e-5)  # the trainer encodes with the selected state
    b = train(cfg, data, 4, tmp_path / "b.bingan", select_every=1, validation=16, eval_k=8, log=lambda s: None)
    assert [r["valid_map"] for r in b.history] == scores
    with pytest.raises(InvalidParameterError):
        train(cfg, TrainData(images, None, None, None, "x"), 1, tmp_path / "c.bingan", select_every=1,
              log=lambda s: None)
    with pytest.raises(InvalidParameterError):
        train(cfg, data, 1, tmp_path / "c.bingan", select_every=1, validation=len(images), log=lambda s: None)


@pytest.mark.parametrize("reg_dropout", [True, False])
def test_the_regularisers_pass_runs_with_or_without_dropout(images: np.ndarray, reg_dropout: bool) -> None:
    """Per step the discriminator runs on the real batch, the fakes, the regularisers' second pass, then twice for
    the generator; reg_dropout=False runs the third with dropout off (and leaves the net in training mode)."""
    trainer = Trainer(TINY.replace(reg_dropout=reg_dropout))
    trainer.initialise(images)
    modes: list[bool] = []
    handle = trainer.D.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    try:
        trainer.step(images[:16], images[16:32])
    finally:
        handle.remove()
    assert modes == [True, True, reg_dropout, True, True] and trainer.D.training


def test_generator_steps_and_the_discriminators_rate(images: np.ndarray) -> None:
    """g_steps=2: the real features once, then two generator steps each on its own fake batch (two more passes
    and two generator updates); d_lr_ratio scales the discriminator's Adam rate only."""
    trainer = Trainer(TINY.replace(g_steps=2, d_lr_ratio=0.25))
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(TINY.lr * 0.25)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(TINY.lr)
    trainer.initialise(images)
    modes: list[bool] = []
    handle = trainer.D.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    g_before = [p.detach().clone() for p in trainer.G.parameters() if p.requires_grad]
    try:
        trainer.step(images[:16], images[16:32])
    finally:
        handle.remove()
    assert len(modes) == 6
    assert trainer.opt_g.state[next(p for p in trainer.G.parameters() if p.requires_grad)]["step"] == 2
    assert any(not torch.equal(a, b) for a, b in zip(g_before, (p for p in trainer.G.parameters() if p.requires_grad),
                                                   strict=True))
    for bad in ({"g_steps": 0}, {"g_steps": 1.5}, {"d_lr_ratio": 0}, {"d_lr_ratio": float("nan")}):
        with pytest.raises(InvalidParameterError):
            TINY.replace(**bad)
