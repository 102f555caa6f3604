"""BinGAN's loss terms (Zieba et al., NeurIPS 2018), in torch, exactly as the reference code computes them.

Notation: N the batch size, K the code (low-dimensional) width, M the high-dimensional width, ``f`` the code layer's
real outputs (N, K), ``h`` the high-dimensional layer (N, M).

- softsign  b̃ = f / (|f| + γ)
- s = sign(h), a stop-gradient target (sign(0) = 0)
- L_DMR = Σ_{i≠j} | s_i·s_j / M − b̃_i·b̃_j / K | / (N(N−1))
- L_ME  = (1/K) Σ_k (mean_n b̃_nk)²
- L_MAC = Σ_{i≠j} α_ij |b̃_i·b̃_j| / (N(N−1)K),   α_ij = exp(−|s_i·s_j| / (M β))
- L_BRE = L_ME + L_MAC
- discriminator (unsupervised half of improved-GAN), l = logsumexp of the 2 logits:
  L_unl = −½ E_real[l] + ½ E_real[softplus(l)] + ½ E_fake[softplus(l)]
- generator feature matching: mean_d (E_real[φ_d] − E_fake[φ_d])²

Every function takes and returns torch tensors; ``tests/bingan/test_losses.py`` checks each against numpy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "bre_loss",
    "discriminator_loss",
    "dmr_loss",
    "feature_matching_loss",
    "mac_loss",
    "me_loss",
    "pair_weights",
    "softsign",
]


def softsign(f: torch.Tensor, gamma: float) -> torch.Tensor:
    """b̃ = f / (|f| + γ): a differentiable stand-in for sign(f), in (−1, 1)."""
    return f / (f.abs() + gamma)


def _off_diagonal_sum(gram: torch.Tensor) -> torch.Tensor:
    return gram.sum() - gram.diagonal().sum()


def _pairs(n: int) -> int:
    if n < 2:
        raise ValueError(f"the BinGAN regularisers compare pairs: need a batch of at least 2, got {n}")
    return n * (n - 1)


def high_signs(high: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """sign(high), no gradient; ``centre``: of high minus its batch mean (BinGANConfig.centre_high)."""
    h = high.detach()
    return torch.sign(h - h.mean(dim=0, keepdim=True) if centre else h)


def dmr_loss(b_soft: torch.Tensor, high: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """Distance matching: the code's normalised inner products follow those of sign(high) (no gradient to high)."""
    s = high_signs(high, centre)
    target = (s @ s.T) / s.shape[1]
    inner = (b_soft @ b_soft.T) / b_soft.shape[1]
    return _off_diagonal_sum((target - inner).abs()) / _pairs(b_soft.shape[0])


def me_loss(b_soft: torch.Tensor) -> torch.Tensor:
    """Mean entropy term: each bit averages to 0 over the batch."""
    return b_soft.mean(dim=0).square().mean()


def pair_weights(high: torch.Tensor, beta: float, centre: bool = False) -> torch.Tensor:
    """α_ij = exp(−|s_i·s_j| / (M β)) with s = sign(high): pairs far apart in the high-dim layer weigh more."""
    s = high_signs(high, centre)
    return torch.exp(-(s @ s.T).abs() / (s.shape[1] * beta))


def mac_loss(b_soft: torch.Tensor, high: torch.Tensor, beta: float, centre: bool = False) -> torch.Tensor:
    """Modified activation correlation: α-weighted mean |b̃_i·b̃_j| / K over the pairs i ≠ j."""
    gram = (b_soft @ b_soft.T).abs()
    return _off_diagonal_sum(pair_weights(high, beta, centre) * gram) / (_pairs(b_soft.shape[0]) * b_soft.shape[1])


def bre_loss(b_soft: torch.Tensor, high: torch.Tensor, beta: float, centre: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_ME, L_MAC); L_BRE is their sum."""
    return me_loss(b_soft), mac_loss(b_soft, high, beta, centre)


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """The unsupervised improved-GAN loss on 2-logit outputs, D(x) = Z / (Z + 1) with Z = Σ exp(logits)."""
    l_real = torch.logsumexp(logits_real, dim=1)
    l_fake = torch.logsumexp(logits_fake, dim=1)
    return -0.5 * l_real.mean() + 0.5 * F.softplus(l_real).mean() + 0.5 * F.softplus(l_fake).mean()


def feature_matching_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mean over features of the squared difference of batch means (real features carry no gradient)."""
    return (real.detach().mean(dim=0) - fake.mean(dim=0)).square().mean()
