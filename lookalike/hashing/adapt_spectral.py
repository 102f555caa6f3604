"""``adapt-spectral``: codes adapted to the catalogue without labels (issue 16, part 3) — ITQ on a network's
out-of-sample map of the catalogue's k-NN-graph spectral embedding.

The ``adapt`` hasher (:mod:`lookalike.hashing.adapt`) learns a *linear* map onto each vector's neighbour-smoothed
version. This one follows the neighbourhood structure further and with a non-linear map:

1. the exact k-NN graph of the (unit) training vectors, symmetrised (an edge where either row lists the other);
2. its spectral embedding — the ``dim`` leading non-trivial eigenvectors of the normalised adjacency
   ``D^-1/2 A D^-1/2`` (Lanczos, :func:`scipy.sparse.linalg.eigsh`), as random-walk coordinates ``D^-1/2 v``,
   centred and scaled to unit rows: Laplacian eigenmaps (Belkin & Niyogi 2003), the embedding spectral hashing
   (Weiss, Torralba & Fergus 2008) and anchor-graph hashing (Liu et al. 2011) quantise;
3. an MLP ``g`` (two GELU hidden layers) trained to map each training vector onto its row of the embedding (cosine
   loss): the out-of-sample extension, so new items and queries — which are not in the graph — get a place in it
   without a k-NN search (as SpectralNet, Shaham et al. 2018, learns it);
4. ITQ (Gong & Lazebnik 2011) on the unit outputs of ``g``.

No label is read. ``dim`` is ``max(n_bits, min_dim)``. The defaults (k 5, min_dim 16) were chosen on a validation
split of Fashion-MNIST's training vectors (``benchmarks/adapt_spectral_select.py``; BENCHMARKS.md "Codes adapted to
the catalogue, non-linear"): k in {5, 10, 20}, then min_dim in {16, 32, 64}. The embedding's useful dimensions are
about the number of well-separated groups in the catalogue; past them its eigenvectors are noise (on 8 Gaussian
blobs, 32 dimensions lose to ITQ), so on a small or few-class catalogue fewer dimensions or ``adapt`` may be
better. ``transform`` is numpy only (the MLP's forward pass, GELU in its tanh form in both); ``fit`` imports
torch. Fit cost on 50,000 efficientnet-lite0 rows, 2 cores: the graph about 45 s (kept for other lengths,
:func:`~.adapt.knn_graph`), the eigenvectors about 6 s, the MLP's 8 epochs about 80 s.
"""

from __future__ import annotations

import numpy as np

from .adapt import knn_graph, unit_rows
from .base import _CHUNK_ROWS, Hasher, Integer, Real, centred_dot
from .pca import ITQ, rotated_projection

__all__ = ["SpectralAdapt", "gelu", "spectral_embedding"]
_DENSE_ROWS = 1000  # graphs up to this many rows are solved densely


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its tanh form (PyTorch's ``approximate="tanh"``), float32."""
    x = np.asarray(x, dtype=np.float32)
    c = np.float32(np.sqrt(2.0 / np.pi))
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def spectral_embedding(neighbours: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(n, dim) float32 unit rows: the centred random-walk coordinates ``D^-1/2 v`` of the ``dim`` leading
    eigenvectors ``v`` of ``D^-1/2 A D^-1/2`` after the trivial one, ``A`` the symmetrised 0/1 adjacency of the
    (n, k) neighbour lists (column order by decreasing eigenvalue; each column's sign fixed so that its largest
    entry in magnitude is positive). ``rng`` draws Lanczos's start vector."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    n, k = neighbours.shape
    if not 1 <= dim <= n - 2:
        raise ValueError(f"the spectral embedding of {n} rows has at most {n - 2} dimensions; asked for {dim}")
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((np.ones(n * k), (rows, neighbours.ravel())), shape=(n, n))
    A = ((A + A.T) > 0).astype(np.float64)
    inv_sqrt = 1.0 / np.sqrt(np.asarray(A.sum(axis=1)).ravel())  # every row has >= k >= 1 edges
    M = sp.diags(inv_sqrt) @ A @ sp.diags(inv_sqrt)
    if n <= _DENSE_ROWS:  # small graphs: the dense solver (Lanczos is slow and fragile when dim + 1 nears n)
        values, vectors = np.linalg.eigh(M.toarray())
    else:
        values, vectors = eigsh(M, k=dim + 1, which="LA", v0=rng.uniform(-1.0, 1.0, n))
    order = np.argsort(-values, kind="stable")[1:dim + 1]  # drop the leading (trivial: sqrt of the degrees) one
    E = vectors[:, order] * inv_sqrt[:, None]
    E *= np.sign(E[np.abs(E).argmax(axis=0), np.arange(dim)])
    return unit_rows((E - E.mean(axis=0)).astype(np.float32))


class SpectralAdapt(Hasher):
    """ITQ on an MLP's map of the vectors into the catalogue's k-NN-graph spectral embedding (module docstring).

    Args:
        n_bits: code length (multiple of 8).
        k: neighbours per row of the graph. min_dim: the embedding has ``max(n_bits, min_dim)`` dimensions.
        hidden: width of the MLP's two hidden layers. epochs, batch_size, lr: AdamW (weight decay 1e-4) with a
            one-cycle schedule peaking at ``lr``.
        sample: at most this many training rows make the graph and train the MLP (a seeded sample beyond).
        n_iter: ITQ iterations. random_state: seeds the sample, the start vector, the MLP and ITQ.

    Learned attributes: ``w1_ b1_ w2_ b2_ w3_ b3_`` (float32, the MLP: ``gelu(gelu(u w1 + b1) w2 + b2) w3 + b3``
    on unit rows ``u``), ``itq_mean_``, ``components_``, ``rotation_`` (ITQ on the unit outputs),
    ``quantization_loss_``, ``loss_`` (the mean cosine loss of each epoch).
    """

    name = "adapt-spectral"
    _constraints = {"k": Integer(1, 1000), "min_dim": Integer(1), "hidden": Integer(1), "epochs": Integer(1),
                    "batch_size": Integer(2), "lr": Real(0.0), "sample": Integer(4), "n_iter": Integer(0)}
    _learned = ("w1_", "b1_", "w2_", "b2_", "w3_", "b3_", "itq_mean_", "components_", "rotation_",
                "quantization_loss_", "loss_")

    def __init__(self, n_bits: int = 64, *, k: int = 5, min_dim: int = 16, hidden: int = 1024, epochs: int = 8,
                 batch_size: int = 256, lr: float = 1e-3, sample: int = 60_000, n_iter: int = 50,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.n_bits = n_bits
        self.k = k
        self.min_dim = min_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.sample = sample
        self.n_iter = n_iter
        self.random_state = random_state

    def _max_bits(self, n_samples: int, n_features: int) -> tuple[int, str]:
        return min(n_samples, self.sample) - 2, "the number of training rows less 2 (the graph's embedding)"

    def _fit(self, X: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> None:
        rows = X if len(X) <= self.sample else X[np.sort(rng.choice(len(X), self.sample, replace=False))]
        U = unit_rows(rows.astype(np.float32))
        dim = min(max(self.n_bits, self.min_dim), len(U) - 2)
        target = spectral_embedding(knn_graph(U, min(self.k, len(U) - 1)), dim, rng)
        self._train(U, target, rng)
        itq = ITQ(self.n_bits, n_iter=self.n_iter, random_state=rng).fit(self.mapped(U))
        self.itq_mean_, self.components_, self.rotation_ = itq.mean_, itq.components_, itq.rotation_
        self.quantization_loss_ = itq.quantization_loss_

    def _train(self, U: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> None:
        import torch
        import torch.nn.functional as F

        from .torch_fit import cpu_threads, seeded

        n, d = U.shape
        gen, layers = seeded(rng, lambda: [torch.nn.Linear(d, self.hidden), torch.nn.Linear(self.hidden, self.hidden),
                                           torch.nn.Linear(self.hidden, target.shape[1])])

        def forward(x: torch.Tensor) -> torch.Tensor:
            for layer in layers[:-1]:
                x = F.gelu(layer(x), approximate="tanh")
            return layers[-1](x)

        params = [p for layer in layers for p in layer.parameters()]
        bs = min(self.batch_size, n)
        steps = n // bs
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.epochs * steps)
        data, goal = torch.from_numpy(U), torch.from_numpy(target)
        losses = []
        with cpu_threads():
            for _ in range(self.epochs):
                order = torch.randperm(n, generator=gen)
                total = 0.0
                for start in range(0, steps * bs, bs):
                    batch = order[start:start + bs]
                    loss = (1.0 - (F.normalize(forward(data[batch]), dim=1) * goal[batch]).sum(dim=1)).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    schedule.step()
                    total += float(loss.detach())
                losses.append(total / steps)
        (self.w1_, self.b1_), (self.w2_, self.b2_), (self.w3_, self.b3_) = (
            (layer.weight.detach().numpy().T.astype(np.float32).copy(), layer.bias.detach().numpy().astype(np.float32))
            for layer in layers)
        self.loss_ = np.array(losses)

    def mapped(self, X: np.ndarray) -> np.ndarray:
        """Unit rows of the MLP's outputs on unit rows of ``X``: the vectors' places in the spectral embedding."""
        X = np.asarray(X, dtype=np.float32)
        out = np.empty((len(X), self.w3_.shape[1]), dtype=np.float32)
        for start in range(0, len(X), _CHUNK_ROWS):
            h = gelu(unit_rows(X[start:start + _CHUNK_ROWS]) @ self.w1_ + self.b1_)
            h = gelu(h @ self.w2_ + self.b2_)
            out[start:start + _CHUNK_ROWS] = h @ self.w3_ + self.b3_
        return unit_rows(out)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return centred_dot(self.mapped(X), self.itq_mean_, rotated_projection(self))
