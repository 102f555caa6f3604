"""``bingan-head``: BinGAN's regularisers as a hasher on top of any float encoder (beyond the paper).

BinGAN (Zieba et al., NeurIPS 2018) shapes a GAN discriminator's low-dimensional code layer with two terms: DMR,
which makes the codes' normalised inner products (Hamming distances) follow those of the binarised high-dimensional
layer, and BRE, which keeps every bit balanced (L_ME) and the codes of different images decorrelated (L_MAC). Here
the high-dimensional layer is a pretrained encoder's embedding (e.g. efficientnet-lite0's 1280-d vector) and a
small MLP is the code layer, trained on the catalogue's own vectors with no labels and no GAN:

    f = W2 · LeakyReLU_0.2(W1 · (x − mean) · scale + b1) + b2           (K outputs; ``hidden=0``: one linear layer)
    loss = λ_DMR · L_DMR(softsign_γ(f), t) + λ_BRE · (L_ME + L_MAC)

with ``target="sign"`` the DMR target is sign(x − mean), as the paper binarises its high-dimensional layer, and
with ``target="cosine"`` (the default, better in our measurements) the cosine similarity of the centred vectors.
``target="neighbours"`` replaces the L1 DMR by a neighbourhood-structure term: per image of the batch, the KL
divergence from the softmax over the other images' cosines / τ to the softmax over their b̃_i·b̃_j / (K τ).
With ``init="itq"`` (or ``"pca"``; needs ``hidden=0``) the code layer starts from ITQ's (or PCA's) projection of
the same data instead of random weights: W2 = components_ᵀ · rotation_ · c (c makes the outputs' RMS 1), b2 = 0,
so before the first step the bits are ITQ's, and DMR + BRE then fine-tune them (issue 16).
The bits are ``f > 0``. ``transform`` is numpy only; ``fit`` imports torch (CPU; one epoch over 60,000 1280-d
vectors takes about 10 s on 2 busy cores).

Example::

    codes = get_hasher("bingan-head", n_bits=64, random_state=0).fit(X).transform(X)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidParameterError
from .base import _CHUNK_ROWS, Hasher, Integer, Real

if TYPE_CHECKING:
    import torch

__all__ = ["BinGANHead"]
_TARGETS = ("sign", "cosine", "neighbours")
_INITS = ("random", "pca", "itq")


class BinGANHead(Hasher):
    """K-bit codes from a float embedding, learned with BinGAN's DMR and BRE regularisers.

    Args:
        n_bits: K, a multiple of 8.
        hidden: width of the hidden layer (0: a single linear layer).
        epochs, batch_size, lr: Adam training (β1 = 0.9); more epochs when needed to make ``min_steps`` steps
            (so a small catalogue still trains).
        gamma: softsign γ. beta: β of the L_MAC pair weights.
        lambda_dmr, lambda_bre: the regulariser weights (>= 0).
        target: ``"cosine"`` (default; better in our measurements, see BENCHMARKS.md) or ``"sign"`` (the paper's
            binarised high-dimensional layer) or ``"neighbours"`` (the softmax-KL neighbourhood term, ``tau``).
        tau: the temperature τ of ``target="neighbours"``.
        init: ``"random"`` (default: PyTorch's initialisation), ``"itq"`` or ``"pca"``: the code layer starts
            from ITQ's rotated (or PCA's) projection fitted on the same data, ITQ drawing its random start from
            ``random_state`` first (so with both λ = 0 the codes are ``ITQ(random_state=…)``'s). Needs ``hidden=0``.
        itq_iter: ITQ iterations of ``init="itq"``.
        random_state: seeds the initial weights and the minibatch order.

    Learned attributes:
        scale_: float, 1 / the RMS of the centred training data. w1_, b1_, w2_, b2_: float32 weights (w1_ and b1_
        empty when ``hidden=0``). loss_: float64, the mean training loss of each epoch.
    """

    name = "bingan-head"
    _constraints = {
        "hidden": Integer(0), "epochs": Integer(1), "min_steps": Integer(0), "batch_size": Integer(2),
        "lr": Real(0.0), "gamma": Real(0.0), "beta": Real(0.0), "tau": Real(0.0),
        "lambda_dmr": Real(0.0, inclusive=True), "lambda_bre": Real(0.0, inclusive=True), "itq_iter": Integer(0),
    }
    _learned = ("scale_", "w1_", "b1_", "w2_", "b2_", "loss_")

    def __init__(self, n_bits: int = 64, *, hidden: int = 1024, epochs: int = 5, min_steps: int = 500,
                 batch_size: int = 256, lr: float = 1e-3, gamma: float = 0.1, beta: float = 2.0,
                 lambda_dmr: float = 1.0, lambda_bre: float = 0.01, target: str = "cosine",
                 tau: float = 0.1, init: str = "random", itq_iter: int = 50,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.hidden = hidden
        self.epochs = epochs
        self.min_steps = min_steps
        self.batch_size = batch_size
        self.lr = lr
        self.gamma = gamma
        self.beta = beta
        self.lambda_dmr = lambda_dmr
        self.lambda_bre = lambda_bre
        self.target = target
        self.tau = tau
        self.init = init
        self.itq_iter = itq_iter
        self.random_state = random_state

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.target not in _TARGETS:
            raise InvalidParameterError(
                f"The 'target' parameter of BinGANHead must be one of {', '.join(_TARGETS)}. Got {self.target!r}."
            )
        if self.init not in _INITS:
            raise InvalidParameterError(
                f"The 'init' parameter of BinGANHead must be one of {', '.join(_INITS)}. Got {self.init!r}."
            )
        if self.init != "random" and self.hidden:
            raise InvalidParameterError(
                f"The 'init' parameter of BinGANHead can be {self.init!r} only with hidden=0. Got hidden={self.hidden}."
            )

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str] | None:
        return None if self.init == "random" else (n_features, f"the number of features (init={self.init!r})")

    def _initial_code_layer(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator,
                            scale: float) -> np.ndarray:
        """(d, n_bits) float32 weights W with ``((X − mean) · scale) @ W`` = ITQ's (PCA's) projection, RMS 1."""
        from .base import centred_dot
        from .pca import ITQ, principal_components

        if self.init == "itq":
            itq = ITQ(self.n_bits, n_iter=self.itq_iter, random_state=rng).fit(X)  # the same mean, the same rng
            w = itq.components_.T.astype(np.float64) @ itq.rotation_.astype(np.float64)
        else:
            components, _ = principal_components(X, mean, self.n_bits)
            w = components.T.astype(np.float64)
        v = centred_dot(X, mean, w.astype(np.float32))
        rms = max(float(np.sqrt(np.square(v, dtype=np.float64).mean())), 1e-12)
        return (w / (rms * scale)).astype(np.float32)

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        import torch

        from .bingan_losses import bre_loss, softsign

        centred = X - mean
        scale = 1.0 / max(float(np.sqrt(np.square(centred, dtype=np.float64).sum(axis=1).mean())), 1e-12)
        w_init = None if self.init == "random" else self._initial_code_layer(X, mean, rng, scale)
        data = torch.from_numpy(centred * np.float32(scale))
        n, d = data.shape
        gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        torch_state = torch.get_rng_state()
        torch.manual_seed(int(rng.integers(2**63 - 1)))
        layers: list[torch.nn.Module] = []
        if self.hidden:
            layers += [torch.nn.Linear(d, self.hidden), torch.nn.LeakyReLU(0.2)]
        layers.append(torch.nn.Linear(self.hidden or d, self.n_bits))
        net = torch.nn.Sequential(*layers)
        torch.set_rng_state(torch_state)
        code_layer = layers[-1]
        if w_init is not None and isinstance(code_layer, torch.nn.Linear):
            with torch.no_grad():
                code_layer.weight.copy_(torch.from_numpy(w_init.T.copy()))
                code_layer.bias.zero_()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        bs = min(self.batch_size, n)
        losses = []
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
        try:
            for _ in range(max(self.epochs, -(-self.min_steps // max(n // bs, 1)))):
                order = torch.randperm(n, generator=gen)
                total, steps = 0.0, 0
                for start in range(0, n - bs + 1, bs):
                    x = data[order[start:start + bs]]
                    b = softsign(net(x), self.gamma)
                    me, mac = bre_loss(b, x, self.beta)
                    loss = self.lambda_dmr * self._dmr(b, x) + self.lambda_bre * (me + mac)
                    opt.zero_grad(set_to_none=True)
                    if loss.requires_grad:
                        loss.backward()
                        opt.step()
                    total, steps = total + float(loss.detach()), steps + 1
                losses.append(total / max(steps, 1))
        finally:
            torch.set_num_threads(threads)
        weights = [p.detach().numpy().astype(np.float32) for p in net.parameters()]
        empty = np.zeros((0,), dtype=np.float32)
        self.w1_, self.b1_ = (weights[0].T.copy(), weights[1]) if self.hidden else (empty.reshape(d, 0), empty)
        self.w2_, self.b2_ = weights[-2].T.copy(), weights[-1]
        self.scale_ = scale
        self.loss_ = np.array(losses)

    def _dmr(self, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from .bingan_losses import dmr_loss

        if self.target == "sign":
            return dmr_loss(b, x)
        u = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if self.target == "neighbours":
            import torch

            eye = torch.eye(len(b), dtype=torch.bool)
            t = ((u @ u.T) / self.tau).masked_fill(eye, -torch.inf)
            s = ((b @ b.T) / (b.shape[1] * self.tau)).masked_fill(eye, -torch.inf)
            log_p, log_q = torch.log_softmax(t, dim=1), torch.log_softmax(s, dim=1)
            return (log_p.exp() * (log_p - log_q).masked_fill(eye, 0.0)).sum(dim=1).mean()
        diff = ((u @ u.T) - (b @ b.T) / b.shape[1]).abs()
        return (diff.sum() - diff.diagonal().sum()) / (len(b) * (len(b) - 1))

    def _project(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_bits), dtype=np.float32)
        scale = np.float32(self.scale_)
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            h = (X[start:start + _CHUNK_ROWS] - self.mean_) * scale
            if self.w1_.shape[1]:
                h = h @ self.w1_ + self.b1_
                h = np.where(h > 0, h, np.float32(0.2) * h)
            out[start:start + _CHUNK_ROWS] = h @ self.w2_ + self.b2_
        return out
