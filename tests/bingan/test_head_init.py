"""The BinGAN head's issue-16 options: ITQ/PCA/adapt initialisation of the code layer and the neighbourhood and
neighbour-smoothed targets."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.errors import InvalidParameterError  # noqa: E402
from lookalike.hashing import ITQ, AdaptedITQ, BinGANHead, Hasher  # noqa: E402


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
                                    {"init": "pca", "hidden": 0, "n_bits": 32}, {"init": "adapt", "hidden": 16},
                                    {"target": "smooth"}, {"k": 0}, {"ridge": 0.0}])
def test_bad_init_parameters(data: np.ndarray, params: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError):
        BinGANHead(**{"n_bits": 8, **params}).fit(data)  # type: ignore[arg-type]


def test_adapt_init_without_training_gives_the_adapt_codes(data: np.ndarray) -> None:
    head = BinGANHead(16, hidden=0, init="adapt", k=5, lambda_dmr=0.0, lambda_bre=0.0, epochs=1, min_steps=0,
                      random_state=5).fit(data)
    adapted = AdaptedITQ(16, k=5, random_state=5).fit(data)
    a, b = np.unpackbits(head.transform(data), axis=1), np.unpackbits(adapted.transform(data), axis=1)
    assert (a == b).mean() > 0.999
    np.testing.assert_array_equal(head.map_, adapted.map_)
    assert np.sqrt(np.mean(np.square(head.project(data)))) == pytest.approx(1.0, rel=1e-3)  # RMS 1 at init
    new = data[:20] * 2 + 0.1  # vectors not seen in fit go through the same map
    assert (np.unpackbits(head.transform(new), axis=1) == np.unpackbits(adapted.transform(new), axis=1)).mean() > 0.99


def test_smoothed_targets_against_numpy(data: np.ndarray) -> None:
    k = 6
    u = data / np.linalg.norm(data, axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    s = (u + u[nearest].sum(axis=1)) / (k + 1)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    s -= s.mean(axis=0)
    head = BinGANHead(8, target="smoothed", k=k)
    t = head._dmr_targets(data, torch.zeros(1)).numpy().astype(np.float64)
    np.testing.assert_allclose(t, s, atol=1e-5)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(data), 9, replace=False)
    b = np.tanh(rng.normal(size=(9, 8)))
    v = s[rows] / np.linalg.norm(s[rows], axis=1, keepdims=True)
    want = np.abs(v @ v.T - b @ b.T / 8)[~np.eye(9, dtype=bool)].mean()
    got = float(head._dmr(torch.from_numpy(b), torch.from_numpy(t[rows])))
    assert got == pytest.approx(want, rel=1e-6)
    assert BinGANHead(8)._dmr_targets(data, torch.ones(2)).shape == (2,)  # other targets: the layer's inputs


@pytest.mark.parametrize("init", ["adapt", "itq"])
def test_smoothed_fine_tuning_is_balanced_seeded_and_persists(data: np.ndarray, init: str) -> None:
    kw = {"hidden": 0, "init": init, "target": "smoothed", "k": 5, "epochs": 3, "min_steps": 0, "batch_size": 60,
          "lambda_bre": 0.1, "random_state": 0}
    a = BinGANHead(16, **kw).fit(data)
    bits = np.unpackbits(a.transform(data), axis=1)
    assert 0.35 < bits.mean() < 0.65 and np.isfinite(a.loss_).all()
    np.testing.assert_array_equal(BinGANHead(16, **kw).fit(data).w2_, a.w2_)
    untrained = BinGANHead(16, **{**kw, "lambda_dmr": 0.0, "lambda_bre": 0.0}).fit(data)
    assert not np.array_equal(untrained.w2_, a.w2_)  # the fine-tuning moved the code layer
    back = Hasher.from_state(a.to_state())
    np.testing.assert_array_equal(back.transform(data), a.transform(data))
