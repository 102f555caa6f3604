"""Each BinGAN loss term against a direct numpy evaluation of its formula, on a tiny batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch, installed by the [torch] extra (make install)")

from lookalike.hashing import bingan_losses as losses  # noqa: E402

N, K, M = 5, 8, 12


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    f = rng.normal(scale=0.05, size=(N, K))
    h = rng.normal(size=(N, M))
    h[0, 0] = 0.0  # sign(0) = 0, as Theano's T.sgn
    return f, h


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


def np_softsign(f: np.ndarray, gamma: float) -> np.ndarray:
    return f / (np.abs(f) + gamma)


def test_softsign_matches_formula(batch: tuple[np.ndarray, np.ndarray]) -> None:
    f, _ = batch
    for gamma in (1e-3, 0.1):
        np.testing.assert_allclose(losses.softsign(_t(f), gamma).numpy(), np_softsign(f, gamma), rtol=1e-12)
    assert losses.softsign(_t(np.array([1.0, -100.0, 0.001])), 1e-3).numpy() == pytest.approx([0.999, -0.99999, 0.5],
                                                                                              rel=1e-4)


def test_dmr_matches_formula(batch: tuple[np.ndarray, np.ndarray]) -> None:
    f, h = batch
    b, s = np_softsign(f, 1e-3), np.sign(h)
    total = sum(abs(s[i] @ s[j] / M - b[i] @ b[j] / K) for i in range(N) for j in range(N) if i != j)
    got = losses.dmr_loss(_t(b), _t(h)).item()
    assert got == pytest.approx(total / (N * (N - 1)), rel=1e-12)


def test_me_matches_formula(batch: tuple[np.ndarray, np.ndarray]) -> None:
    b = np_softsign(batch[0], 1e-3)
    expected = sum(b[:, k].mean() ** 2 for k in range(K)) / K
    assert losses.me_loss(_t(b)).item() == pytest.approx(expected, rel=1e-12)


def test_mac_and_alpha_weights_match_formula(batch: tuple[np.ndarray, np.ndarray]) -> None:
    f, h = batch
    b, s, beta = np_softsign(f, 1e-3), np.sign(h), 2.0
    alpha = np.array([[np.exp(-abs(s[i] @ s[j]) / (M * beta)) for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(losses.pair_weights(_t(h), beta).numpy(), alpha, rtol=1e-12)
    assert alpha.min() >= np.exp(-1 / beta) - 1e-12 and alpha.max() <= 1.0
    total = sum(alpha[i, j] * abs(b[i] @ b[j]) / K for i in range(N) for j in range(N) if i != j)
    assert losses.mac_loss(_t(b), _t(h), beta).item() == pytest.approx(total / (N * (N - 1)), rel=1e-12)
    me, mac = losses.bre_loss(_t(b), _t(h), beta)
    assert me.item() == pytest.approx(losses.me_loss(_t(b)).item())
    assert mac.item() == pytest.approx(total / (N * (N - 1)), rel=1e-12)


def test_discriminator_loss_matches_formula() -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(N, 2)), rng.normal(size=(N + 2, 2))
    lr, lf = np.log(np.exp(real).sum(1)), np.log(np.exp(fake).sum(1))
    softplus = np.log1p(np.exp(lr)), np.log1p(np.exp(lf))
    expected = -0.5 * lr.mean() + 0.5 * softplus[0].mean() + 0.5 * softplus[1].mean()
    assert losses.discriminator_loss(_t(real), _t(fake)).item() == pytest.approx(expected, rel=1e-12)
    # the same as the GAN cross-entropy with D(x) = Z / (Z + 1)
    d_real, d_fake = np.exp(lr) / (np.exp(lr) + 1), np.exp(lf) / (np.exp(lf) + 1)
    assert expected == pytest.approx(-0.5 * np.log(d_real).mean() - 0.5 * np.log(1 - d_fake).mean(), rel=1e-10)


def test_feature_matching_matches_formula() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(N, K)), rng.normal(size=(N, K))
    expected = np.mean((real.mean(0) - fake.mean(0)) ** 2)
    fake_t = _t(fake).requires_grad_(True)
    real_t = _t(real).requires_grad_(True)
    loss = losses.feature_matching_loss(real_t, fake_t)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert real_t.grad is None and fake_t.grad is not None


def test_targets_carry_no_gradient(batch: tuple[np.ndarray, np.ndarray]) -> None:
    f, h = batch
    ft, ht = _t(f).requires_grad_(True), _t(h).requires_grad_(True)
    b = losses.softsign(ft, 1e-3)
    (losses.dmr_loss(b, ht) + sum(losses.bre_loss(b, ht, 2.0))).backward()
    assert ht.grad is None and ft.grad is not None and torch.isfinite(ft.grad).all()


def test_regularisers_need_pairs() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        losses.dmr_loss(torch.zeros((1, K)), torch.zeros((1, M)))


def test_centred_high_signs_match_formula(batch: tuple[np.ndarray, np.ndarray]) -> None:
    """centre_high: the signs of high minus its batch mean, in the DMR target and the MAC weights."""
    f, h = batch
    h = np.abs(h) + 0.1  # all positive, like the pooled LeakyReLU layer: raw signs are all +1
    b, s, beta = np_softsign(f, 1e-3), np.sign(h - h.mean(axis=0)), 2.0
    np.testing.assert_array_equal(losses.high_signs(_t(h)).numpy(), np.ones_like(h))
    np.testing.assert_array_equal(losses.high_signs(_t(h), centre=True).numpy(), s)
    total = sum(abs(s[i] @ s[j] / M - b[i] @ b[j] / K) for i in range(N) for j in range(N) if i != j)
    assert losses.dmr_loss(_t(b), _t(h), centre=True).item() == pytest.approx(total / (N * (N - 1)), rel=1e-12)
    raw = sum(abs(1.0 - b[i] @ b[j] / K) for i in range(N) for j in range(N) if i != j)  # target 1 for every pair
    assert losses.dmr_loss(_t(b), _t(h)).item() == pytest.approx(raw / (N * (N - 1)), rel=1e-12)
    alpha = np.array([[np.exp(-abs(s[i] @ s[j]) / (M * beta)) for j in range(N)] for i in range(N)])
    mac = sum(alpha[i, j] * abs(b[i] @ b[j]) / K for i in range(N) for j in range(N) if i != j)
    assert losses.mac_loss(_t(b), _t(h), beta, centre=True).item() == pytest.approx(mac / (N * (N - 1)), rel=1e-12)
