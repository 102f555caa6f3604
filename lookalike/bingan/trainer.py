"""Training BinGAN: alternating discriminator and generator steps, checkpoints, resume, periodic mAP.

One minibatch, as in the reference ``train_model.py``: a discriminator step on
L_unl + λ_DMR·L_DMR + λ_BRE·(L_ME + L_MAC) (the regularisers on a second forward pass of the real batch, with its
own dropout masks), then a generator step on feature matching against a batch drawn from a second permutation of
the data. Adam (β1 = 0.5, β2 = 0.999) with the same constant learning rate for both (the reference's decay factor
``min(3 − epoch/400, 1)`` is 1 for its 400 epochs). torch's Adam adds ε outside the square root, the reference's
inside; with ε = 1e-8 the difference is immaterial.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError
from ..hashing.bingan_losses import bre_loss, discriminator_loss, dmr_loss, feature_matching_loss, softsign
from ..modelfiles import resolve_device
from ..validation import check_int
from .config import BinGANConfig
from .data import TrainData
from .modelfile import FORMAT, load_checkpoint, save_checkpoint, write_model
from .nets import DiscOutput, build, data_init

__all__ = ["Trainer", "bit_stats", "evaluate", "resolve_device", "train"]
TERMS = ("d_unl", "dmr", "me", "mac", "g_fm")


class Trainer:
    """The two networks, their optimisers and RNGs. Seeded from ``cfg.seed``: the same config gives the same run."""

    def __init__(self, cfg: BinGANConfig, device: str | torch.device = "auto") -> None:
        self.cfg = cfg
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        torch.manual_seed(cfg.seed)
        self.D, self.G = build(cfg)
        self.D.to(self.device)
        self.G.to(self.device)
        betas = (cfg.beta1, 0.999)
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_d = torch.optim.Adam(self.d_params, lr=cfg.lr * cfg.d_lr_ratio, betas=betas, eps=1e-8)
        self.opt_g = torch.optim.Adam([p for p in self.G.parameters() if p.requires_grad], lr=cfg.lr, betas=betas,
                                      eps=1e-8)
        self.noise = torch.Generator().manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.epoch = 0
        self.initialised = False
        self.history: list[dict[str, float]] = []
        self.selected: int | None = None  # the epoch train(select_every=...) wrote the model from

    def _scale(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(images).to(self.device)
        return (x.float() - 127.5) / 128.0

    def _z(self, n: int) -> torch.Tensor:
        return self.G.sample_noise(n, self.noise).to(self.device)

    def _fm(self, out: DiscOutput) -> torch.Tensor:
        return out.code if self.cfg.feature_layer == "code" else out.pool

    def initialise(self, images: np.ndarray) -> None:
        """Data-dependent weight-norm initialisation on the first ``init_size`` images and as many noise draws."""
        n = min(self.cfg.init_size, len(images))
        self.D.train(self.cfg.init_dropout)
        self.G.train()
        with data_init(), torch.no_grad():
            self.D(self._scale(images[:n]))
            self.G(self._z(n))
        self.D.train()
        self.initialised = True

    def step(self, real: np.ndarray, real2: np.ndarray) -> dict[str, float]:
        """One discriminator step on ``real``, ``g_steps`` generator steps matching features of ``real2``."""
        cfg = self.cfg
        x, x2 = self._scale(real), self._scale(real2)
        self.D.train()
        self.G.train()
        with torch.no_grad():
            fake = self.G(self._z(len(x)))
        out_real, out_fake = self.D(x), self.D(fake)
        l_unl = discriminator_loss(out_real.logits, out_fake.logits)
        if cfg.shared_reg_pass:
            reg = out_real
        else:
            self.D.train(cfg.reg_dropout)  # reg_dropout=False: the regularisers see the code the encoder reads
            reg = self.D(x)
            self.D.train()
        b = softsign(reg.code, cfg.gamma)
        l_dmr = dmr_loss(b, reg.high, cfg.centre_high)
        l_me, l_mac = bre_loss(b, reg.high, cfg.beta, cfg.centre_high)
        loss_d = l_unl + cfg.lambda_dmr * l_dmr + cfg.lambda_bre * (l_me + l_mac)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        for p in self.d_params:  # the generator step needs gradients w.r.t. the images only
            p.requires_grad_(False)
        try:
            with torch.no_grad():
                real_f = self._fm(self.D(x2))
            for _ in range(cfg.g_steps):
                fake_f = self._fm(self.D(self.G(self._z(len(x2)))))
                loss_g = feature_matching_loss(real_f, fake_f)
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        return {"d_unl": l_unl.item(), "dmr": l_dmr.item(), "me": l_me.item(), "mac": l_mac.item(),
                "g_fm": loss_g.item()}

    def train_epoch(self, images: np.ndarray, progress: bool = False) -> dict[str, float]:
        """One pass over ``images`` (uint8, N×C×32×32) in minibatches; returns the mean of each loss term."""
        if not self.initialised:
            self.initialise(images)
        bs = self.cfg.batch_size
        n_batches = len(images) // bs
        if n_batches < 1:
            raise InvalidParameterError(f"{len(images)} training images are fewer than one batch of {bs}")
        order, order2 = self.rng.permutation(len(images)), self.rng.permutation(len(images))
        sums = dict.fromkeys(TERMS, 0.0)
        bar = _bar(n_batches, progress, f"epoch {self.epoch + 1}")
        t0 = time.perf_counter()
        for i in range(n_batches):
            idx, idx2 = np.sort(order[i * bs:(i + 1) * bs]), np.sort(order2[i * bs:(i + 1) * bs])
            terms = self.step(images[idx], images[idx2])
            for k, v in terms.items():
                sums[k] += v
            if bar is not None:
                bar.update(1)
                if i % 10 == 0 or i == n_batches - 1:
                    bar.set_postfix({k: f"{sums[k] / (i + 1):.4f}" for k in TERMS}, refresh=False)
        if bar is not None:
            bar.close()
        self.epoch += 1
        record = {"epoch": float(self.epoch), **{k: v / n_batches for k, v in sums.items()},
                  "seconds": time.perf_counter() - t0}
        self.history.append(record)
        return record

    @torch.no_grad()
    def codes(self, images: np.ndarray, batch: int = 500) -> np.ndarray:
        """(n, K) float code-layer outputs with dropout off; the bits are ``codes >= 0``."""
        self.D.eval()
        out = [self.D(self._scale(images[i:i + batch])).code.cpu().numpy() for i in range(0, len(images), batch)]
        self.D.train()
        return np.concatenate(out) if out else np.empty((0, self.cfg.bits), dtype=np.float32)

    @torch.no_grad()
    def probe(self, images: np.ndarray) -> dict[str, float]:
        """Bit statistics of ``images`` (a held-out batch) with dropout on (as the regularisers see the code) and
        off (as the encoder reads it): ``bit_stats`` keys prefixed ``train_`` / ``eval_``. A collapse shows here."""
        x = self._scale(images)
        out: dict[str, float] = {}
        for mode in ("train", "eval"):
            self.D.train(mode == "train")
            out.update({f"{mode}_{k}": v for k, v in bit_stats(self.D(x).code.cpu().numpy()).items()})
        self.D.train()
        return out

    def state(self) -> dict[str, Any]:
        return {"format": FORMAT + "-checkpoint", "config": self.cfg.to_json(), "epoch": self.epoch,
                "D": self.D.state_dict(), "G": self.G.state_dict(), "opt_d": self.opt_d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "noise": self.noise.get_state(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state), "history": json.dumps(self.history)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> Trainer:
        trainer = cls(BinGANConfig.from_json(state["config"]), device)
        trainer.D.load_state_dict(state["D"])
        trainer.G.load_state_dict(state["G"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.opt_g.load_state_dict(state["opt_g"])
        trainer.noise.set_state(state["noise"])
        torch.set_rng_state(state["torch_rng"])
        trainer.rng.bit_generator.state = json.loads(state["numpy_rng"])
        trainer.epoch, trainer.initialised = int(state["epoch"]), True
        trainer.history = json.loads(state["history"])
        return trainer


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)


def bit_stats(codes: np.ndarray) -> dict[str, float]:
    """Balance of the bits ``codes >= 0`` over a batch: ``hard_me`` = mean_k (2 p_k − 1)² (L_ME of the hard bits;
    0 balanced, 1 constant), ``entropy`` = mean bit entropy in bits, ``constant`` = bits with p_k < 5 % or > 95 %."""
    p = (np.asarray(codes) >= 0).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nan_to_num(p * np.log2(p)) - np.nan_to_num((1 - p) * np.log2(1 - p))
    return {"hard_me": float(np.mean((2 * p - 1) ** 2)), "entropy": float(h.mean()),
            "constant": float(np.sum((p < 0.05) | (p > 0.95)))}


def evaluate(codes_q: np.ndarray, codes_db: np.ndarray, ql: np.ndarray, dbl: np.ndarray,
             k: int = 1000, ties: str = "stable") -> float:
    """mAP@k by Hamming distance of the packed codes ``>= 0`` (the evaluation harness's ``retrieval_map``)."""
    from ..evaluation import retrieval_map

    q, db = np.packbits(codes_q >= 0, axis=1), np.packbits(codes_db >= 0, axis=1)
    return retrieval_map(q, db, ql, dbl, min(k, len(db)), metric="hamming", ties=ties)


def train(cfg: BinGANConfig, data: TrainData, epochs: int, out: str | Path, *, device: str = "auto",
          resume: bool = False, checkpoint_every: int = 1, eval_every: int = 0, eval_k: int = 1000,
          eval_ties: str = "stable", limit: int | None = None, progress: bool = False,
          select_every: int = 0, validation: int = 1000, log: Callable[[str], None] = print) -> Trainer:
    """Train for ``epochs`` epochs in all (``resume`` continues ``OUT.ckpt``), writing ``out`` and ``OUT.ckpt``
    every ``checkpoint_every`` epochs and at the end; mAP@``eval_k`` of the held-out queries every ``eval_every``
    epochs (0: never). ``limit`` trains on a seeded subset of that many images; evaluation still searches all.

    ``select_every`` (0: off): early stopping on a validation split of the *training* set, fixed before training:
    ``validation`` seeded training images are held out of training and, every ``select_every`` epochs, searched
    (mAP@``eval_k``, their labels against the training images') among the images trained on; ``out`` is written
    from the epoch with the best validation mAP (``meta["selected"]``), never chosen on the evaluation queries, and
    the returned trainer's discriminator is that epoch's (``OUT.ckpt`` keeps the last, to resume from). The best
    state is kept in memory: a resumed run selects among its own epochs."""
    check_int("epochs", epochs, 1)
    check_int("select_every", select_every, 0)
    out = Path(out)
    ckpt = out.with_name(out.name + ".ckpt")
    if resume:
        trainer = Trainer.from_state(load_checkpoint(ckpt), device)
        if trainer.cfg != cfg:
            log(f"resuming with the checkpoint's settings ({trainer.cfg.to_json()})")
        log(f"resumed {ckpt} at epoch {trainer.epoch}")
    else:
        trainer = Trainer(cfg, device)
    cfg = trainer.cfg
    images, labels = data.train, data.train_labels
    if limit is not None and limit < len(images):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(images), limit, replace=False))
        images, labels = images[keep], None if labels is None else labels[keep]
    valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    if select_every:
        check_int("validation", validation, 1)
        if labels is None or validation >= len(images):
            raise InvalidParameterError(f"selection needs labelled training images and a validation split smaller "
                                        f"than the {len(images):,} training images; got {validation}")
        held = np.zeros(len(images), bool)
        held[np.random.default_rng(cfg.seed + 1).choice(len(images), validation, replace=False)] = True
        valid = (images[held], labels[held], labels[~held])
        images = images[~held]
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    log(f"training BinGAN ({cfg.arch}, {cfg.bits} bits, width {cfg.width}) on {len(images):,} images of "
        f"{data.source}, device {trainer.device}")
    t_start = time.perf_counter()
    spent = sum(r.get("seconds", 0.0) for r in trainer.history)
    while trainer.epoch < epochs:
        rec = trainer.train_epoch(images, progress)
        e = trainer.epoch
        if eval_every and data.queries is not None and (e % eval_every == 0 or e == epochs):
            assert data.query_labels is not None and data.train_labels is not None
            rec[f"map@{eval_k}"] = evaluate(trainer.codes(data.queries), trainer.codes(data.train),
                                            data.query_labels, data.train_labels, eval_k, eval_ties)
        if valid is not None and (e % select_every == 0 or e == epochs):
            rec["valid_map"] = evaluate(trainer.codes(valid[0]), trainer.codes(images), valid[1], valid[2], eval_k,
                                        eval_ties)
            if best is None or rec["valid_map"] > best[0]:
                best = (rec["valid_map"], e, {k: v.detach().clone() for k, v in trainer.D.state_dict().items()})
        if data.queries is not None:  # a diagnostic only: bit balance of 500 held-out images, nothing is tuned on it
            rec.update({k: v for k, v in trainer.probe(data.queries[:500]).items() if k.endswith("hard_me")})
        log(f"epoch {e}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in rec.items() if k != "epoch"))
        if e % checkpoint_every == 0 or e == epochs:
            save_checkpoint(ckpt, trainer.state())
            _write(out, trainer, data, spent + time.perf_counter() - t_start)
    if not out.exists():
        _write(out, trainer, data, spent)
    if best is not None:
        trainer.D.load_state_dict(best[2])  # the returned trainer encodes with it; OUT.ckpt keeps the last epoch
        _write(out, trainer, data, spent + time.perf_counter() - t_start, {"epoch": best[1], "valid_map": best[0]})
        trainer.selected = best[1]
        log(f"selected epoch {best[1]} (validation mAP@{eval_k} {best[0]:.4f}) for {out}")
    return trainer


def _write(out: Path, trainer: Trainer, data: TrainData, seconds: float,
           selected: dict[str, float] | None = None) -> None:
    meta: dict[str, Any] = {"epochs": trainer.epoch, "device": str(trainer.device),
                            "train_seconds": round(seconds, 1), "data": data.source, "history": trainer.history}
    if selected is not None:
        meta["selected"] = selected
    write_model(out, trainer.D, trainer.cfg, meta)
