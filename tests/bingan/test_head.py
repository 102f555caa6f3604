"""The ``bingan-head`` hasher: fit, state round-trip, numpy-only transform, parameters, and the CLI path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.cli import main  # noqa: E402
from lookalike.errors import InvalidParameterError, NotFittedError  # noqa: E402
from lookalike.hashing import BinGANHead, Hasher, get_hasher  # noqa: E402


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """Three well-separated clusters in 40-d, 300 points."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 40)) * 3
    return (centres[rng.integers(0, 3, 300)] + rng.normal(size=(300, 40))).astype(np.float32)


def test_fit_transform_and_loss_goes_down(data: np.ndarray) -> None:
    h = get_hasher("bingan-head", n_bits=16, epochs=5, min_steps=0, hidden=32, batch_size=64, random_state=0)
    assert isinstance(h, BinGANHead)
    codes = h.fit_transform(data)
    assert codes.shape == (300, 2) and codes.dtype == np.uint8
    assert h.loss_.shape == (5,) and h.loss_[-1] < h.loss_[0]
    bits = np.unpackbits(codes, axis=1)
    assert 0.2 < bits.mean() < 0.8  # BRE keeps bits balanced
    again = get_hasher("bingan-head", n_bits=16, epochs=5, min_steps=0, hidden=32, batch_size=64, random_state=0)
    again.fit(data)
    np.testing.assert_array_equal(again.transform(data), codes)  # seeded


def test_numpy_projection_matches_torch_network(data: np.ndarray) -> None:
    for hidden in (0, 16):
        h = BinGANHead(8, hidden=hidden, epochs=1, min_steps=0, random_state=1).fit(data)
        assert h.project(data).shape == (300, 8)
        lin = (data - h.mean_) * np.float32(h.scale_)
        if hidden:
            lin = lin @ h.w1_ + h.b1_
            lin = np.where(lin > 0, lin, 0.2 * lin)
        np.testing.assert_allclose(h.project(data), lin @ h.w2_ + h.b2_, rtol=1e-5, atol=1e-5)


def test_state_round_trip_without_torch(data: np.ndarray, tmp_path: Path) -> None:
    h = BinGANHead(16, hidden=8, epochs=2, min_steps=0, random_state=0).fit(data)
    state = h.to_state()
    back = Hasher.from_state(state)
    np.testing.assert_array_equal(back.transform(data), h.transform(data))
    np.savez(tmp_path / "state.npz", **state)
    np.save(tmp_path / "x.npy", data)
    code = (
        "import sys, numpy as np\n"
        "from lookalike.hashing import Hasher\n"
        f"s = dict(np.load({str(tmp_path / 'state.npz')!r}, allow_pickle=False))\n"
        f"codes = Hasher.from_state(s).transform(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'codes.npy')!r}, codes)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), h.transform(data))


@pytest.mark.parametrize("params", [{"n_bits": 12}, {"lambda_dmr": -1.0}, {"gamma": 0.0}, {"epochs": 0},
                                    {"target": "euclid"}, {"hidden": -1}])
def test_bad_parameters(params: dict[str, object], data: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError):
        get_hasher("bingan-head", **params).fit(data)


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        BinGANHead().transform(np.zeros((2, 3)))


def test_min_steps_and_zero_lambdas(data: np.ndarray) -> None:
    assert len(BinGANHead(8, hidden=0, epochs=1, min_steps=40, batch_size=100).fit(data).loss_) == 14  # 3 steps/epoch
    a = BinGANHead(8, hidden=0, epochs=2, lambda_dmr=0.0, lambda_bre=0.0, random_state=0).fit(data)
    b = BinGANHead(8, hidden=0, epochs=1, lambda_dmr=0.0, lambda_bre=0.0, random_state=0).fit(data)
    np.testing.assert_array_equal(a.w2_, b.w2_)


def test_cli_index_with_bingan_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.datasets import export_image_folder, load_fashion_mnist

    folder = tmp_path / "images"
    export_image_folder(load_fashion_mnist("test"), folder, limit=40, seed=2)
    catalog = str(tmp_path / "cat")
    argv = ["--catalog", catalog, "index", str(folder), "--encoder", "pixels:size=16", "--hash", "bingan-head",
            "--bits", "64", "--no-progress"]
    assert main(argv) == 0
    assert "+bingan-head:64" in capsys.readouterr().out
    query = sorted(folder.rglob("*.png"))[0]
    assert main(["--catalog", catalog, "search", str(query), "-k", "5"]) == 0
    assert query.stem in capsys.readouterr().out
