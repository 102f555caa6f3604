"""BinGAN hyperparameters and preprocessing, as a plain dataclass (no torch), stored as JSON in model files.

Defaults follow the authors' reference code (``settings.py``; retrieval variant): batch 25, Adam lr 3e-4 with
β1 = 0.5, γ = 0.001, β = 2.0, λ_DMR = 0.05, λ_BRE = 0.001 (CIFAR; 0.01 for the patch variant). Where the code and
the paper differ, the option is documented here and the default is the code's:

- ``fm_layer``: the generator's feature-matching layer. ``"code"``: the K-unit code layer itself (the reference
  code's ``disc_layers[-2]`` for the retrieval net); ``"pool"``: the global-pooled last NiN layer (the improved-GAN
  convention, and the reference for the patch net, whose ``disc_layers[-2]`` is that pool). Default: ``"auto"`` =
  ``"code"`` for ``arch="retrieval"``, ``"pool"`` for ``arch="patch"``.
- the mAP cut-off (1,000 in the paper's table, 10,000 in ``test_cifar.py``) and tie handling are options of the
  trainer's evaluation (``eval_k``, ``eval_ties``; ``--eval-k``, ``--eval-ties``); the default is the paper's
  mAP@1000 on a stable ranking; ``benchmarks/bingan.py`` reports both with the harness's three cells.
- ``width``: a channel multiplier (1.0 = the paper's 96/192 and 96/128 channels). Below 1 is *not* in the paper:
  it exists so a CPU can train a smaller net; every result table says which width it used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError

ARCHS = ("retrieval", "patch")
FITS = ("pad", "resize")
FM_LAYERS = ("auto", "code", "pool")
SIZE = 32  # the discriminator's input side


@dataclass(frozen=True)
class BinGANConfig:
    """Everything that defines a BinGAN model and its training run.

    Attributes:
        bits: K, the code length (multiple of 8): 16/32/64 for retrieval, 256 for patches.
        arch: ``"retrieval"`` (conv96×3 / conv192×3 / conv192 pad 0 / NiN 192 ×2 / pool / linear K / 2 logits) or
            ``"patch"`` (conv96×3 / conv128×3 / conv128 pad 0 / NiN K / NiN 128 / pool / 2 logits).
        channels: input channels, 1 (grey) or 3 (RGB).
        fit: how an image becomes 32×32: ``"pad"`` (resize to ``inner``×``inner`` when needed, then zero-pad; 28×28
            Fashion-MNIST keeps every pixel) or ``"resize"`` (bilinear to 32×32).
        inner: the side before padding (28 for Fashion-MNIST).
        width: channel multiplier (1.0 = paper).
        noise_dim: the generator's uniform noise dimension (100).
        batch_size, lr, beta1: minibatch and Adam settings (25, 3e-4, 0.5).
        gamma: softsign γ; beta: the β of the L_MAC weights α_ij = exp(−|s_i·s_j| / (M β)).
        lambda_dmr, lambda_bre: regulariser weights.
        fm_layer: see the module docstring.
        shared_reg_pass: False (reference): the regularisers use a second forward pass of the real batch with its
            own dropout masks; True reuses the GAN pass (a quarter less compute, not in the reference).
        init_size: images for the data-dependent weight-norm initialisation (500).
        init_dropout: True (reference): that initialisation runs with dropout on, which centres each code unit as
            training sees it but not as the encoder (dropout off) reads it; False runs it with dropout off.
        centre_high: False (reference): the DMR target and the L_MAC weights take sign(high); True takes the sign
            of high minus its batch mean. The pooled LeakyReLU layer is 60-97% positive, so sign(high)·sign(high)/M
            is 0.6-0.9 for every pair and the DMR target pulls all codes together (issue 16); centred, about half
            the signs differ between unrelated images. Not in the paper.
        reg_dropout: True (reference): the regularisers' second pass of the real batch runs with dropout on; False
            runs it with dropout off, so L_DMR / L_ME / L_MAC balance the code the encoder reads (dropout shifts
            the code units; balanced with dropout on, the bits were 0.5-0.8 unbalanced off). Not in the paper.
        d_lr_ratio: the discriminator's learning rate is ``lr`` times this (1.0, the reference: one rate for
            both); below 1 slows the side that wins the game here (issue 16). Not in the paper.
        g_steps: generator steps per discriminator step (1, the reference), each on a fresh noise draw against the
            same second real batch. Not in the paper.
        seed: seeds torch and numpy (data order, noise, dropout).
    """

    bits: int = 32
    arch: str = "retrieval"
    channels: int = 1
    fit: str = "pad"
    inner: int = 28
    width: float = 1.0
    noise_dim: int = 100
    batch_size: int = 25
    lr: float = 3e-4
    beta1: float = 0.5
    gamma: float = 1e-3
    beta: float = 2.0
    lambda_dmr: float = 0.05
    lambda_bre: float = 0.001
    fm_layer: str = "auto"
    shared_reg_pass: bool = False
    init_size: int = 500
    init_dropout: bool = True
    centre_high: bool = False
    reg_dropout: bool = True
    d_lr_ratio: float = 1.0
    g_steps: int = 1
    seed: int = 1

    def __post_init__(self) -> None:
        _check(isinstance(self.bits, int) and not isinstance(self.bits, bool) and self.bits >= 8
               and self.bits % 8 == 0, "bits", self.bits, "a positive multiple of 8 (16, 32, 64; 256 for patches)")
        _check(self.arch in ARCHS, "arch", self.arch, f"one of {', '.join(ARCHS)}")
        _check(self.channels in (1, 3), "channels", self.channels, "1 (grey) or 3 (RGB)")
        _check(self.fit in FITS, "fit", self.fit, f"one of {', '.join(FITS)}")
        _check(isinstance(self.inner, int) and 4 <= self.inner <= SIZE, "inner", self.inner, "an integer in [4, 32]")
        _check(_real(self.width) and 0 < self.width <= 4, "width", self.width, "a real number in (0, 4]")
        _check(isinstance(self.noise_dim, int) and self.noise_dim >= 1, "noise_dim", self.noise_dim, "an int >= 1")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 2, "batch_size", self.batch_size,
               "an integer >= 2 (the regularisers compare pairs)")
        for key in ("lr", "gamma", "beta"):
            _check(_real(getattr(self, key)) and getattr(self, key) > 0, key, getattr(self, key), "a real number > 0")
        _check(_real(self.beta1) and 0 <= self.beta1 < 1, "beta1", self.beta1, "a real number in [0, 1)")
        for key in ("lambda_dmr", "lambda_bre"):
            _check(_real(getattr(self, key)) and getattr(self, key) >= 0, key, getattr(self, key),
                   "a real number >= 0")
        _check(self.fm_layer in FM_LAYERS, "fm_layer", self.fm_layer, f"one of {', '.join(FM_LAYERS)}")
        _check(isinstance(self.init_size, int) and self.init_size >= 2, "init_size", self.init_size, "an int >= 2")
        _check(isinstance(self.init_dropout, bool), "init_dropout", self.init_dropout, "True or False")
        _check(isinstance(self.centre_high, bool), "centre_high", self.centre_high, "True or False")
        _check(isinstance(self.reg_dropout, bool), "reg_dropout", self.reg_dropout, "True or False")
        _check(_real(self.d_lr_ratio) and 0 < self.d_lr_ratio <= 10, "d_lr_ratio", self.d_lr_ratio,
               "a real number in (0, 10]")
        _check(isinstance(self.g_steps, int) and not isinstance(self.g_steps, bool) and 1 <= self.g_steps <= 10,
               "g_steps", self.g_steps, "an integer in [1, 10]")
        _check(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "a non-negative integer")

    @property
    def feature_layer(self) -> str:
        """The feature-matching layer after resolving ``"auto"``."""
        if self.fm_layer != "auto":
            return self.fm_layer
        return "code" if self.arch == "retrieval" else "pool"

    def replace(self, **changes: Any) -> BinGANConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BinGANConfig:
        """Parse a stored config, refusing unknown keys and wrong types with InvalidParameterError."""
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as err:
            raise InvalidParameterError(f"the BinGAN config is not valid JSON: {err}") from err
        if not isinstance(raw, dict):
            raise InvalidParameterError("the BinGAN config must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InvalidParameterError(f"the BinGAN config has unknown keys: {', '.join(unknown)}")
        for key, value in raw.items():
            if isinstance(value, int) and not isinstance(value, bool) and known[key].type == "float":
                raw[key] = float(value)
        return cls(**raw)


def _real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise InvalidParameterError(f"The {key!r} parameter of BinGAN must be {expected}. Got {value!r} instead.")
