"""The BinGAN head's issue-16 options: ITQ/PCA initialisation of the code layer and the neighbourhood target."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.errors import InvalidParameterError  # noqa: E402
from lookalike.hashing import ITQ, BinGANHead  # noqa: E402


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """Four well-separated clusters in 24-d, 240 points."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 24)) * 3
    return (centres[rng.integers(0, 4, 240)] + rng.normal(size=(240, 24))).astype(np.float32)


def test_itq_init_without_training_gives_itq_codes(data: np.ndarray) -> None:
    head = BinGANHead(16, hidden=0, init="itq", lambda_dmr=0.0, lambda_bre=0.0, epochs=1, min_steps=0,
                      random_state=5).fit(data)
    itq = ITQ(16, random_state=5).fit(data)
    a, b = np.unpackbits(head.transform(data), axis=1), np.unpackbits(itq.transform(data), axis=1)
    assert (a == b).mean() > 0.999
    assert np.sqrt(np.mean(np.square(head.project(data)))) == pytest.approx(1.0, rel=1e-3)  # RMS 1 at init


def test_pca_init_projects_on_the_principal_directions(data: np.ndarray) -> None:
    head = BinGANHead(8, hidden=0, init="pca", lambda_dmr=0.0, lambda_bre=0.0, epochs=1, min_steps=0).fit(data)
    _, _, vt = np.linalg.svd(data - data.mean(0), full_matrices=False)
    w = head.w2_ / np.linalg.norm(head.w2_, axis=0)
    np.testing.assert_allclose(np.abs(w.T @ vt[:8].T), np.eye(8), atol=1e-3)


@pytest.mark.parametrize("target", ["cosine", "neighbours"])
def test_fine_tuned_codes_are_balanced_and_seeded(data: np.ndarray, target: str) -> None:
    kw = {"hidden": 0, "init": "itq", "target": target, "epochs": 3, "min_steps": 0, "batch_size": 60,
          "lambda_bre": 0.1, "random_state": 0}
    a = BinGANHead(16, **kw).fit(data)
    bits = np.unpackbits(a.transform(data), axis=1)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.4) and 0.35 < bits.mean() < 0.65
    assert np.isfinite(a.loss_).all()
    np.testing.assert_array_equal(BinGANHead(16, **kw).fit(data).w2_, a.w2_)


def test_dmr_terms_against_numpy() -> None:
    rng = np.random.default_rng(0)
    b = np.tanh(rng.normal(size=(7, 8)))
    x = rng.normal(size=(7, 5))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    off = ~np.eye(7, dtype=bool)
    cos, inner = u @ u.T, b @ b.T / 8
    want_l1 = np.abs(cos - inner)[off].mean()
    tau = 0.3

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = np.where(off, z, -np.inf)
        m = z.max(axis=1, keepdims=True)
        return np.where(off, z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True)), 0.0)

    lp, lq = log_softmax(cos / tau), log_softmax(inner / tau)
    want_kl = np.where(off, np.exp(lp) * (lp - lq), 0.0).sum(axis=1).mean()  # the diagonal left out
    tb, tx = torch.from_numpy(b), torch.from_numpy(x)
    assert float(BinGANHead(8, target="cosine")._dmr(tb, tx)) == pytest.approx(want_l1, rel=1e-9)
    assert float(BinGANHead(8, target="neighbours", tau=tau)._dmr(tb, tx)) == pytest.approx(want_kl, rel=1e-9)
    assert float(BinGANHead(8, target="neighbours", tau=tau)._dmr(tb, tx)) >= 0.0


@pytest.mark.parametrize("params", [{"init": "itq", "hidden": 16}, {"init": "kmeans"}, {"tau": 0.0},
                                    {"init": "pca", "hidden": 0, "n_bits": 32}])
def test_bad_init_parameters(data: np.ndarray, params: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError):
        BinGANHead(**{"n_bits": 8, **params}).fit(data)  # type: ignore[arg-type]
