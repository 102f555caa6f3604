"""BinGAN's networks in torch: weight-normalised layers with data-dependent initialisation, the two
discriminators (retrieval and patch) and the generator, as in the authors' reference code (``backends.py``,
itself built on the improved-GAN code of Salimans et al. 2016).

Weight normalisation (Salimans & Kingma 2016): W = g · V / ‖V‖ per output unit, plus a bias b. The first forward
pass under :func:`data_init` sets, per output unit, g = init_stdv / sqrt(var(t) + 1e-6) and b = −mean(t) · g where
t is the unit's pre-activation with g = 1, b = 0 on a batch of data, so every layer starts with zero-mean,
``init_stdv``-scaled outputs. As in the reference, g is then frozen (``train_g=False``) except in the code layer and
the generator's output layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import SIZE, BinGANConfig

__all__ = ["Discriminator", "DiscOutput", "Generator", "WeightNorm", "build", "data_init"]

_INIT = {"on": False}


@contextlib.contextmanager
def data_init() -> Iterator[None]:
    """Within this block, each weight-norm layer's forward pass initialises its g and b from its input batch."""
    _INIT["on"] = True
    try:
        yield
    finally:
        _INIT["on"] = False


class WeightNorm(nn.Module):
    """A weight-normalised linear, conv (``stride``, ``padding``) or transposed-conv layer."""

    def __init__(self, kind: str, shape: tuple[int, ...], *, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, train_g: bool = False, init_stdv: float = 1.0) -> None:
        super().__init__()
        self.kind, self.stride, self.padding, self.output_padding = kind, stride, padding, output_padding
        self.init_stdv = init_stdv
        self.v = nn.Parameter(torch.randn(shape) * 0.05)
        out = shape[1] if kind == "deconv" else shape[0]
        self.g = nn.Parameter(torch.ones(out), requires_grad=train_g)
        self.b = nn.Parameter(torch.zeros(out))
        self._axes = (0, 2, 3) if kind == "deconv" else tuple(d for d in range(len(shape)) if d != 0)

    def weight(self) -> torch.Tensor:
        norm = self.v.square().sum(dim=self._axes, keepdim=True).sqrt()
        return self.v / norm * (self.g.view(1, -1, 1, 1) if self.kind == "deconv" else self.g.view(-1, *[1] * (
            self.v.dim() - 1)))

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x, w)
        if self.kind == "conv":
            return F.conv2d(x, w, stride=self.stride, padding=self.padding)
        return F.conv_transpose2d(x, w, stride=self.stride, padding=self.padding, output_padding=self.output_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _INIT["on"]:
            with torch.no_grad():
                self.g.fill_(1.0)
                t = self._op(x, self.weight())
                axes = [d for d in range(t.dim()) if d != 1]
                mean, var = t.mean(dim=axes), t.var(dim=axes, unbiased=False)
                scale = self.init_stdv / torch.sqrt(var + 1e-6)
                self.g.copy_(scale)
                self.b.copy_(-mean * scale)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self._op(x, self.weight()) + self.b.view(shape)


def _conv(cin: int, cout: int, stride: int = 1, padding: int = 1, k: int = 3) -> WeightNorm:
    return WeightNorm("conv", (cout, cin, k, k), stride=stride, padding=padding)


class DiscOutput(NamedTuple):
    logits: torch.Tensor  # (n, 2) GAN logits
    code: torch.Tensor  # (n, K) real values whose signs are the bits (b_h before the sign)
    high: torch.Tensor  # (n, M) the high-dimensional layer whose signs are the DMR/BRE targets
    pool: torch.Tensor  # the global-pooled feature the "pool" feature-matching option uses


class Discriminator(nn.Module):
    """The retrieval (``arch="retrieval"``) or patch (``arch="patch"``) discriminator; see :class:`BinGANConfig`."""

    def __init__(self, cfg: BinGANConfig) -> None:
        super().__init__()
        self.arch = cfg.arch

        def ch(n: int) -> int:
            return max(8, round(n * cfg.width))

        c1, c2 = ch(96), ch(192 if cfg.arch == "retrieval" else 128)
        act = nn.LeakyReLU(0.2)
        self.features = nn.Sequential(
            nn.Dropout(0.2),
            _conv(cfg.channels, c1), act, _conv(c1, c1), act, _conv(c1, c1, stride=2), act,
            nn.Dropout(0.5),
            _conv(c1, c2), act, _conv(c2, c2), act, _conv(c2, c2, stride=2), act,
            nn.Dropout(0.5),
            _conv(c2, c2, padding=0), act,  # 8×8 → 6×6: the patch net's high-dimensional layer
        )
        if cfg.arch == "retrieval":
            self.nin = nn.Sequential(_conv(c2, c2, padding=0, k=1), act, _conv(c2, c2, padding=0, k=1), act)
            self.code_layer = WeightNorm("linear", (cfg.bits, c2), train_g=True, init_stdv=0.1)
            self.out = WeightNorm("linear", (2, cfg.bits))
        else:
            self.nin_code = nn.Sequential(_conv(c2, cfg.bits, padding=0, k=1), act)
            self.nin = nn.Sequential(_conv(cfg.bits, c2, padding=0, k=1), act)
            self.out = WeightNorm("linear", (2, c2))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        h = self.features(x)
        if self.arch == "retrieval":
            pooled = self.nin(h).mean(dim=(2, 3))
            code = self.code_layer(pooled)
            return DiscOutput(self.out(code), code, pooled, pooled)
        nin_code = self.nin_code(h)
        pooled = self.nin(nin_code).mean(dim=(2, 3))
        return DiscOutput(self.out(pooled), nin_code.mean(dim=(2, 3)), h.flatten(1), pooled)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).code


class _BiasBatchNorm(nn.Module):
    """Batch normalisation without a scale, with a learned bias (the reference's ``batch_norm(g=None)``)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(n, affine=False) if n > 0 else nn.Identity()
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = self.bn(x.view(x.shape[0], x.shape[1], -1, 1)).view_as(x)
        return y + self.bias.view(shape)


class Generator(nn.Module):
    """U(0,1) noise → Dense 4·4·512 → deconv 5×5 s2 → 256×8×8 → 128×16×16 → C×32×32 tanh (weight-norm output)."""

    def __init__(self, cfg: BinGANConfig) -> None:
        super().__init__()
        self.noise_dim = cfg.noise_dim
        c = [max(8, round(n * cfg.width)) for n in (512, 256, 128)]
        self.c0 = c[0]
        self.dense = nn.Linear(cfg.noise_dim, 4 * 4 * c[0], bias=False)
        self.bn0 = _BiasBatchNorm(4 * 4 * c[0])
        self.up1 = nn.ConvTranspose2d(c[0], c[1], 5, stride=2, padding=2, output_padding=1, bias=False)
        self.bn1 = _BiasBatchNorm(c[1])
        self.up2 = nn.ConvTranspose2d(c[1], c[2], 5, stride=2, padding=2, output_padding=1, bias=False)
        self.bn2 = _BiasBatchNorm(c[2])
        self.up3 = WeightNorm("deconv", (c[2], cfg.channels, 5, 5), stride=2, padding=2, output_padding=1,
                              train_g=True, init_stdv=0.1)
        for layer in (self.dense, self.up1, self.up2):
            nn.init.normal_(layer.weight, std=0.05)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.dense(z)))
        x = x.view(-1, self.c0, 4, 4)
        x = F.relu(self.bn1(self.up1(x)))
        x = F.relu(self.bn2(self.up2(x)))
        x = torch.tanh(self.up3(x))
        assert x.shape[-1] == SIZE
        return x

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device: Any = None) -> torch.Tensor:
        return torch.rand((n, self.noise_dim), generator=generator, device=device)


def build(cfg: BinGANConfig) -> tuple[Discriminator, Generator]:
    """Fresh (uninitialised) discriminator and generator; seed torch first for reproducible weights."""
    return Discriminator(cfg), Generator(cfg)
