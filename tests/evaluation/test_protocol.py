"""The retrieval protocol end to end on the real Fashion-MNIST, small enough for the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.cli import main
from lookalike.evaluation.protocol import run_protocol


@pytest.mark.slow
def test_protocol_table_and_known_ordering(capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    cells = run_protocol(feature_names=["pixels"], hashers=["lsh", "pcah", "itq"], bits=[16], queries=200,
                         out=lines.append)
    assert any(line.startswith("| float cosine (3,136 bytes)") for line in lines)
    lsh, pcah, itq = (cells[("pixels", name, 16)][0] for name in ("lsh", "pcah", "itq"))
    assert itq > pcah > lsh  # the ordering of the hashing literature on raw pixels at 16 bits
    again = run_protocol(feature_names=["pixels"], hashers=["itq"], bits=[16], queries=200, out=lambda _: None)
    assert again[("pixels", "itq", 16)] == cells[("pixels", "itq", 16)]  # fixed seeds: reproduced exactly


def test_eval_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--bits", "16,abc"]) == 1
    assert "--bits" in capsys.readouterr().err
    assert main(["eval", "--features", "nonsense", "--hashers", "lsh", "--bits", "16", "--queries", "10"]) == 1
    assert "Unknown feature" in capsys.readouterr().err
    assert main(["eval", "--features", "pixels", "--hashers", "nope", "--bits", "16", "--queries", "10"]) == 1
    assert "nope" in capsys.readouterr().err


def test_the_combined_feature_is_made_from_its_parts_cached_features(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``--features combined`` reads the two parts' cached features and combines them as the encoder would."""
    import numpy as np

    from lookalike.encoders import get_encoder
    from lookalike.evaluation.protocol import FEATURES, features

    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    parts = {"efficientnet-lite0": rng.normal(size=(5, 1280)).astype(np.float32),
             "pixels_size28": rng.uniform(size=(5, 784)).astype(np.float32)}
    (tmp_path / "features").mkdir()
    for name, x in parts.items():
        np.save(tmp_path / "features" / f"fashion-mnist-test-{name}.npy", x)
    got = features("fashion-mnist", "test", "combined")
    want = get_encoder(FEATURES["combined"]).combine(list(parts.values()))
    np.testing.assert_array_equal(got, want)
    a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in parts.values())
    np.testing.assert_allclose(got @ got.T, (a @ a.T + 0.49 * (b @ b.T)) / 1.49, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == sorted(f"fashion-mnist-test-{n}.npy"
                                                                              for n in parts)  # nothing new cached
