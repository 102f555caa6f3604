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
``target="smoothed"`` is the L1 DMR against a target better than the features themselves: the cosines of the
centred *neighbour-smoothed* vectors of the batch (each unit training vector averaged with its ``k`` nearest
training neighbours, as the ``adapt`` hasher's target; :mod:`lookalike.hashing.adapt`), made once in ``fit``.
``init="adapt"`` puts the ``adapt`` hasher's learned smoothing map in front of the code layer (fixed, not trained:
the code layer sees ``map_vectors(x)``) and starts the code layer from ITQ on the mapped vectors, so with both
λ = 0 the bits are ``AdaptedITQ(k, ridge, random_state=…)``'s; DMR + BRE then fine-tune the code layer.
Measured (``benchmarks/bingan_head_select.py``; BENCHMARKS.md, "BinGAN head: hyper-parameters chosen on a validation
split"): on Fashion-MNIST's efficientnet-lite0 vectors no fine-tuning, from ITQ's or from adapt's start, with any of
these targets, ended above its own start in the mean over the lengths on the validation split; the best head is
``init="adapt"`` with both λ = 0, i.e. the ``adapt`` codes (above ITQ at 16, 32 and 64 bits, on the test queries too).
The bits are ``f > 0``. ``transform`` is numpy only; ``fit`` imports torch (CPU; one epoch over 60,000 1280-d
vectors takes about 10 s on 2 busy cores).

Example::

    codes = get_hasher("bingan-head", n_bits=64, random_state=0).fit(X).transform(X)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidParameterError
from .adapt import map_vectors
from .base import _CHUNK_ROWS, Hasher, Integer, Real

if TYPE_CHECKING:
    import torch

__all__ = ["BinGANHead"]
_TARGETS = ("sign", "cosine", "neighbours", "smoothed")
_INITS = ("random", "pca", "itq", "adapt")


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
            ``"smoothed"``: the L1 DMR against the cosines of the centred neighbour-smoothed vectors.
        tau: the temperature τ of ``target="neighbours"``.
        init: ``"random"`` (default: PyTorch's initialisation), ``"itq"`` or ``"pca"``: the code layer starts
            from ITQ's rotated (or PCA's) projection fitted on the same data, ITQ drawing its random start from
            ``random_state`` first (so with both λ = 0 the codes are ``ITQ(random_state=…)``'s). Needs ``hidden=0``.
            ``"adapt"``: the ``adapt`` hasher's smoothing map (``k``, ``ridge``) in front of an ITQ-initialised
            code layer (with both λ = 0 the codes are ``AdaptedITQ(k=…, ridge=…, random_state=…)``'s).
        k: neighbours of ``target="smoothed"`` and ``init="adapt"``. ridge: the smoothing map's ridge
            (``init="adapt"``).
        itq_iter: ITQ iterations of ``init="itq"``.
        random_state: seeds the initial weights and the minibatch order.

    Learned attributes:
        scale_: float, 1 / the RMS of the centred training data. w1_, b1_, w2_, b2_: float32 weights (w1_ and b1_
        empty when ``hidden=0``). loss_: float64, the mean training loss of each epoch. map_ (d, d), map_mean_
        (d,): the fixed input map of ``init="adapt"`` (empty otherwise). centre_: the mean of the code layer's
        inputs (of the mapped vectors with ``init="adapt"``, else ``mean_``).
    """

    name = "bingan-head"
    _constraints = {
        "hidden": Integer(0), "epochs": Integer(1), "min_steps": Integer(0), "batch_size": Integer(2),
        "lr": Real(0.0), "gamma": Real(0.0), "beta": Real(0.0), "tau": Real(0.0),
        "lambda_dmr": Real(0.0, inclusive=True), "lambda_bre": Real(0.0, inclusive=True), "itq_iter": Integer(0),
        "k": Integer(1, 1000), "ridge": Real(0.0, False, 1e6),
    }
    _learned = ("scale_", "w1_", "b1_", "w2_", "b2_", "loss_", "map_", "map_mean_", "centre_")

    def __init__(self, n_bits: int = 64, *, hidden: int = 1024, epochs: int = 5, min_steps: int = 500,
                 batch_size: int = 256, lr: float = 1e-3, gamma: float = 0.1, beta: float = 2.0,
                 lambda_dmr: float = 1.0, lambda_bre: float = 0.01, target: str = "cosine",
                 tau: float = 0.1, init: str = "random", itq_iter: int = 50, k: int = 30, ridge: float = 0.01,
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
        self.k = k
        self.ridge = ridge
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

    def _initial_code_layer(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(Z, centre, W)``: the code layer's inputs (X, or X through the adapt map), their mean, and the (d,
        n_bits) projection the layer starts from (ITQ's, PCA's, or ITQ's on the mapped vectors; None: random)."""
        from .adapt import AdaptedITQ
        from .pca import ITQ, principal_components, rotated_projection

        if self.init == "adapt":
            adapted = AdaptedITQ(self.n_bits, k=self.k, ridge=self.ridge, sample=len(X), n_iter=self.itq_iter,
                                 random_state=rng).fit(X)  # draws from the same rng, as AdaptedITQ's own fit
            self.map_, self.map_mean_ = adapted.map_, adapted.map_mean_
            return adapted.mapped(X), adapted.itq_mean_, rotated_projection(adapted).astype(np.float64)
        if self.init == "itq":
            itq = ITQ(self.n_bits, n_iter=self.itq_iter, random_state=rng).fit(X)  # the same mean, the same rng
            return X, mean, itq.components_.T.astype(np.float64) @ itq.rotation_.astype(np.float64)
        if self.init == "pca":
            return X, mean, principal_components(X, mean, self.n_bits)[0].T.astype(np.float64)
        return X, mean, None

    def _dmr_targets(self, X: np.ndarray, data: torch.Tensor) -> torch.Tensor:
        """Per training row, the vector whose batch cosines (or signs) DMR matches: the code layer's input, or
        with ``target="smoothed"`` the centred neighbour-smoothed unit vector."""
        import torch

        from .adapt import knn_graph, smoothed, unit_rows

        if self.target != "smoothed":
            return data
        U = unit_rows(X.astype(np.float32))
        S = smoothed(U, knn_graph(U, min(self.k, len(U) - 1)))  # the graph init="adapt" made, if it ran
        return torch.from_numpy((S - S.mean(axis=0, dtype=np.float64)).astype(np.float32))

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        import torch

        from .base import centred_dot
        from .bingan_losses import bre_loss, softsign
        from .torch_fit import cpu_threads, seeded

        empty = np.zeros((0,), dtype=np.float32)
        self.map_, self.map_mean_ = empty.reshape(0, 0), empty
        Z, centre, w = self._initial_code_layer(X, mean, rng)
        centred = Z - centre
        scale = 1.0 / max(float(np.sqrt(np.square(centred, dtype=np.float64).sum(axis=1).mean())), 1e-12)
        w_init = None
        if w is not None:  # outputs of RMS 1 on the training data
            v = centred_dot(Z, centre, w.astype(np.float32))
            w_init = (w / (max(float(np.sqrt(np.square(v, dtype=np.float64).mean())), 1e-12) * scale))
        data = torch.from_numpy(centred * np.float32(scale))
        targets = self._dmr_targets(X, data)
        n, d = data.shape

        def build() -> torch.nn.Sequential:
            hidden = [torch.nn.Linear(d, self.hidden), torch.nn.LeakyReLU(0.2)] if self.hidden else []
            return torch.nn.Sequential(*hidden, torch.nn.Linear(self.hidden or d, self.n_bits))

        gen, net = seeded(rng, build)
        code_layer = net[-1]
        if w_init is not None and isinstance(code_layer, torch.nn.Linear):
            with torch.no_grad():
                code_layer.weight.copy_(torch.from_numpy(w_init.T.astype(np.float32)))
                code_layer.bias.zero_()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        bs = min(self.batch_size, n)
        losses = []
        with cpu_threads():
            for _ in range(max(self.epochs, -(-self.min_steps // max(n // bs, 1)))):
                order = torch.randperm(n, generator=gen)
                total, steps = 0.0, 0
                for start in range(0, n - bs + 1, bs):
                    batch = order[start:start + bs]
                    x = data[batch]
                    b = softsign(net(x), self.gamma)
                    me, mac = bre_loss(b, x, self.beta)
                    loss = self.lambda_dmr * self._dmr(b, targets[batch]) + self.lambda_bre * (me + mac)
                    opt.zero_grad(set_to_none=True)
                    if loss.requires_grad:
                        loss.backward()
                        opt.step()
                    total, steps = total + float(loss.detach()), steps + 1
                losses.append(total / max(steps, 1))
        weights = [p.detach().numpy().astype(np.float32) for p in net.parameters()]
        self.w1_, self.b1_ = (weights[0].T.copy(), weights[1]) if self.hidden else (empty.reshape(d, 0), empty)
        self.w2_, self.b2_ = weights[-2].T.copy(), weights[-1]
        self.scale_ = scale
        self.centre_ = np.asarray(centre, dtype=np.float32)
        self.loss_ = np.array(losses)

    def _dmr(self, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The DMR term of softsign codes ``b`` against the target rows ``x`` of the same batch."""
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
            h = X[start:start + _CHUNK_ROWS]
            if self.map_.size:
                h = map_vectors(h, self.map_, self.map_mean_)
            h = (h - self.centre_) * scale
            if self.w1_.shape[1]:
                h = h @ self.w1_ + self.b1_
                h = np.where(h > 0, h, np.float32(0.2) * h)
            out[start:start + _CHUNK_ROWS] = h @ self.w2_ + self.b2_
        return out
