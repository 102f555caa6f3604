"""Training the triplet embedding: cached backbone inputs, mined hinge loss, checkpoints, resume, accuracy.

The backbone's work is done once: with a frozen backbone every image's efficientnet-lite0 features come from the
``efficientnet-lite0`` encoder (ONNX Runtime, the very vectors the ``triplet:PATH`` encoder feeds its head), and
with ``fine_tune = N`` the frozen prefix's activations are computed once by torch; an epoch then runs only the
trained part. AdamW on the head (and the unfrozen blocks); one epoch is one pass over the training images (class
folders) or rows (CSV). Everything is seeded by ``cfg.seed``: the same config and data give the same model, and a
run resumed from its checkpoint continues exactly as the uninterrupted run would.

Triplet accuracy is the share of validation triplets with ``D(q, p) < D(q, n)`` (the same for both distances on
unit vectors); it is reported for the backbone's own features, for the untrained (seeded) head, and after every
epoch. After training on class folders (or labelled feature rows, :func:`train_features`), the items whose nearest
neighbours in the trained embedding mostly carry another class are logged as suspected label errors
(:mod:`.suspects`) and kept on the trainer.
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
from ..modelfiles import resolve_device
from ..validation import check_int
from .config import TripletConfig
from .data import TripletData, batches, class_data, triplet_accuracy
from .losses import triplet_loss
from .modelfile import FORMAT, load_checkpoint, save_checkpoint, write_model
from .nets import FineTuneNet, ProjectionHead
from .suspects import DEFAULT_K, DEFAULT_SHARE, Suspect, label_suspects

__all__ = ["Trainer", "backbone_inputs", "final_accuracy", "resolve_device", "train", "train_features",
           "triplet_accuracy"]
SUSPECTS_SHOWN = 10  # suspected label errors named in the log (all of them go to the CSV)
PREFIX_BUDGET = 4 << 30  # bytes of cached prefix activations (--fine-tune) before refusing


def backbone_inputs(data: TripletData, cfg: TripletConfig, *, progress: bool = False) -> np.ndarray:
    """What the trained part reads, per image of ``data.paths``: efficientnet-lite0 features (frozen backbone) or
    the frozen prefix's activations (``fine_tune > 0``), float32."""
    from ..encoders import get_encoder

    encoder = get_encoder(cfg.backbone)
    if not cfg.fine_tune:
        return encoder.encode(data.paths, progress=progress)
    from ..images import load_image

    net = FineTuneNet(cfg.fine_tune)
    out: np.ndarray | None = None
    step = 32
    for start in range(0, len(data.paths), step):
        images = np.stack([encoder.prepare(load_image(p, draft=encoder.input_size).image)
                           for p in data.paths[start:start + step]])
        x = net.prefix(torch.from_numpy(images)).numpy()
        if out is None:
            need = len(data.paths) * x[0].nbytes
            if need > PREFIX_BUDGET:
                raise InvalidParameterError(
                    f"--fine-tune {cfg.fine_tune} on {len(data.paths):,} images would cache {need / 2**30:.1f} GiB "
                    f"of activations (at most {PREFIX_BUDGET >> 30} GiB): unfreeze fewer blocks or use fewer images")
            out = np.empty((len(data.paths), *x.shape[1:]), dtype=np.float32)
        out[start:start + len(x)] = x
    assert out is not None
    return out


class Trainer:
    """The head (and the unfrozen blocks), the optimiser and the batch RNG. Seeded from ``cfg.seed``."""

    def __init__(self, cfg: TripletConfig, device: str | torch.device = "auto") -> None:
        self.cfg = cfg
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        torch.manual_seed(cfg.seed)
        self.head = ProjectionHead(cfg).to(self.device)
        self.net = FineTuneNet(cfg.fine_tune).to(self.device) if cfg.fine_tune else None
        params = list(self.head.parameters()) + (self.net.suffix_parameters() if self.net is not None else [])
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.baseline: dict[str, float] = {}
        self.suspects: list[Suspect] = []  # set by train() after training on classes
        self.train_seconds = 0.0  # set by train(): wall time of the epochs, this run and the resumed ones

    def _embed(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        return self.head(self.net.suffix(t) if self.net is not None else t)

    @torch.no_grad()
    def embed(self, inputs: np.ndarray, batch: int = 512) -> np.ndarray:
        """(n, dim) unit embeddings of backbone inputs (see :func:`backbone_inputs`), in eval mode."""
        self.head.eval()
        step = batch if self.net is None else 32
        out = [self._embed(inputs[i:i + step]).cpu().numpy() for i in range(0, len(inputs), step)]
        self.head.train()
        return np.concatenate(out) if out else np.empty((0, self.cfg.dim), dtype=np.float32)

    def val_accuracy(self, inputs: np.ndarray, triplets: np.ndarray) -> float:
        """Triplet accuracy of ``triplets`` (rows of item ids) in the current embedding, embedding only the items
        they name."""
        if len(triplets) == 0:
            return float("nan")
        used, local = np.unique(triplets, return_inverse=True)
        return triplet_accuracy(self.embed(inputs[used]), local.reshape(triplets.shape))

    @torch.no_grad()
    def features(self, inputs: np.ndarray) -> np.ndarray:
        """The backbone's own 1280-d features of the inputs (the untrained suffix for a fine-tuned model)."""
        if self.net is None:
            return inputs
        return np.concatenate([self.net.suffix(torch.from_numpy(inputs[i:i + 32]).to(self.device)).cpu().numpy()
                               for i in range(0, len(inputs), 32)])

    def train_epoch(self, inputs: np.ndarray, data: TripletData, progress: bool = False) -> dict[str, float]:
        """One pass over the training triplets; returns the mean loss and share of active triplets."""
        cfg = self.cfg
        self.head.train()
        epoch_batches = list(batches(data, cfg, self.rng))
        bar = _bar(len(epoch_batches), progress, f"epoch {self.epoch + 1}")
        t0 = time.perf_counter()
        loss_sum = active_sum = 0.0
        steps = 0
        for ids, pairs, negatives in epoch_batches:
            x = self._embed(inputs[ids])
            loss, stats = triplet_loss(x, torch.from_numpy(pairs).to(self.device),
                                       torch.from_numpy(negatives).to(self.device), margin=cfg.g,
                                       distance=cfg.distance, mining=cfg.mining)
            if stats["triplets"]:
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                loss_sum += loss.item()
                active_sum += stats["active"]
                steps += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"loss": f"{loss_sum / max(steps, 1):.4f}"}, refresh=False)
        if bar is not None:
            bar.close()
        if steps == 0:
            raise InvalidParameterError("no batch held a valid triplet (a query, its positive and a negative); "
                                        "use a larger --batch-size")
        self.epoch += 1
        record = {"epoch": float(self.epoch), "loss": loss_sum / steps, "active": active_sum / steps,
                  "seconds": time.perf_counter() - t0}
        self.history.append(record)
        return record

    def state(self) -> dict[str, Any]:
        return {"format": FORMAT + "-checkpoint", "config": self.cfg.to_json(), "epoch": self.epoch,
                "head": self.head.state_dict(), "net": self.net.suffix_state() if self.net is not None else {},
                "opt": self.opt.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state), "history": json.dumps(self.history),
                "baseline": json.dumps(self.baseline)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> Trainer:
        try:
            trainer = cls(TripletConfig.from_json(state["config"]), device)
            trainer.head.load_state_dict(state["head"])
            if trainer.net is not None:
                full = trainer.net.trunk.state_dict()
                full.update(state["net"])
                trainer.net.trunk.load_state_dict(full)
            trainer.opt.load_state_dict(state["opt"])
            torch.set_rng_state(state["torch_rng"])
            trainer.rng.bit_generator.state = json.loads(state["numpy_rng"])
            trainer.epoch = int(state["epoch"])
            trainer.history = json.loads(state["history"])
            trainer.baseline = json.loads(state["baseline"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise InvalidParameterError(f"the triplet checkpoint does not load: {err}") from err
        return trainer


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)


def train(cfg: TripletConfig, data: TripletData, epochs: int, out: str | Path | None, *, device: str = "auto",
          resume: bool = False, checkpoint_every: int = 1, progress: bool = False, threads: int = 0,
          inputs: np.ndarray | None = None, suspect_k: int = DEFAULT_K, suspect_share: float = DEFAULT_SHARE,
          log: Callable[[str], None] = print) -> Trainer:
    """Train for ``epochs`` epochs in all (``resume`` continues ``OUT.ckpt``), writing ``out`` and ``OUT.ckpt``
    every ``checkpoint_every`` epochs and at the end (``out`` None: nothing is written, no resume).
    ``inputs``: the precomputed :func:`backbone_inputs` of ``data`` (computed here when None). ``threads`` > 0
    sets torch's CPU threads for the run. On class data, the suspected label errors (``suspect_k`` neighbours,
    ``suspect_share`` of them of another class; ``suspect_k = 0``: not looked for) are logged and kept in
    ``trainer.suspects``."""
    check_int("epochs", epochs, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_int("threads", threads, 0)
    check_int("suspect_k", suspect_k, 0)
    if resume and out is None:
        raise InvalidParameterError("resume needs the model file whose checkpoint it continues (out)")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        trainer, inputs = _train(cfg, data, epochs, None if out is None else Path(out), device, resume,
                                 checkpoint_every, progress, inputs, log)
        if suspect_k and data.kind == "classes":
            _find_suspects(trainer, data, inputs, suspect_k, suspect_share, log)
        return trainer
    finally:
        torch.set_num_threads(before)


def train_features(features: np.ndarray, labels: np.ndarray, cfg: TripletConfig, epochs: int,
                   out: str | Path | None = None, *, classes: tuple[str, ...] = (), **options: Any) -> Trainer:
    """Train on rows of efficientnet-lite0 features (n, 1280) and their class labels (n,), without image files:
    :func:`~.data.class_data` splits them as class folders are split, then :func:`train` runs (``options``: its
    keyword arguments but ``inputs``). The same features and labels as a folder's give the same model as
    ``train(cfg, load_triplet_data(folder, cfg), epochs, out, inputs=features)``. Frozen backbone only."""
    if cfg.fine_tune:
        raise InvalidParameterError("training on feature rows needs a frozen backbone (fine_tune 0): fine-tuning "
                                    "reads the images")
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(np.asarray(labels)):
        raise InvalidParameterError(f"features (n, d) and labels (n,) must match. Got {x.shape} and "
                                    f"{np.shape(labels)}.")
    data = class_data(labels, cfg, classes=classes, source=f"{len(x):,} feature rows")
    return train(cfg, data, epochs, out, inputs=x, **options)


def _find_suspects(trainer: Trainer, data: TripletData, inputs: np.ndarray, k: int, share: float,
                   log: Callable[[str], None]) -> None:
    if len(inputs) <= k:
        log(f"suspected label errors: not looked for ({len(inputs)} items, {k} neighbours each)")
        return
    t0 = time.perf_counter()
    trainer.suspects = label_suspects(trainer.embed(inputs), data.labels, k=k, share=share,
                                      device=str(trainer.device))
    n = len(trainer.suspects)
    log(f"suspected label errors: {n:,} of {len(inputs):,} items have at least {share:.0%} of their {k} nearest "
        f"neighbours in another class ({time.perf_counter() - t0:.1f} s)" + (":" if n else ""))

    def name(label: int) -> str:
        return data.classes[label] if label < len(data.classes) else str(label)

    for s in trainer.suspects[:SUSPECTS_SHOWN]:
        where = str(data.paths[s.item]) if s.item < len(data.paths) else f"item {s.item}"
        log(f"  {where}: labelled {name(s.label)}, looks like {name(s.looks_like)} "
            f"({s.disagreement:.0%} of neighbours, similarity {s.similarity:.3f})")
    if n > SUSPECTS_SHOWN:
        log(f"  ... and {n - SUSPECTS_SHOWN:,} more")


def _train(cfg: TripletConfig, data: TripletData, epochs: int, out: Path | None, device: str, resume: bool,
           checkpoint_every: int, progress: bool, inputs: np.ndarray | None, log: Callable[[str], None]
           ) -> tuple[Trainer, np.ndarray]:
    if resume:
        assert out is not None
        ckpt = out.with_name(out.name + ".ckpt")
        trainer = Trainer.from_state(load_checkpoint(ckpt), device)
        if trainer.cfg != cfg:
            log(f"resuming with the checkpoint's settings ({trainer.cfg.to_json()})")
        log(f"resumed {ckpt} at epoch {trainer.epoch}")
    else:
        trainer = Trainer(cfg, device)
    cfg = trainer.cfg
    what = f"fine-tuning the last {cfg.fine_tune} blocks" if cfg.fine_tune else "frozen backbone"
    log(f"training a {cfg.dim}-d triplet embedding ({cfg.distance} margin {cfg.g:g}, {cfg.mining} mining, {what}) "
        f"on {data.source}: {len(data.train):,} training {_unit(data)}, {len(data.val):,} validation triplets, "
        f"device {trainer.device}")
    if inputs is None:
        inputs = backbone_inputs(data, cfg, progress=progress)
    if len(inputs) != len(data.labels):
        raise InvalidParameterError(f"inputs has {len(inputs)} rows for {len(data.labels)} images")
    if not trainer.baseline:
        trainer.baseline = {"features": triplet_accuracy(trainer.features(inputs), data.val),
                            "untrained": trainer.val_accuracy(inputs, data.val)}
    b = trainer.baseline
    if len(data.val):
        log(f"validation triplet accuracy before training: {cfg.backbone} features {b['features']:.4f}, "
            f"untrained head {b['untrained']:.4f}")
    else:
        log("no validation triplets (val_fraction 0): no triplet accuracy is measured")
    t_start = time.perf_counter()
    spent = sum(r.get("seconds", 0.0) for r in trainer.history)
    while trainer.epoch < epochs:
        rec = trainer.train_epoch(inputs, data, progress)
        seconds = rec.pop("seconds")
        rec["val_accuracy"] = trainer.val_accuracy(inputs, data.val)
        rec["seconds"] = seconds
        e = trainer.epoch
        log(f"epoch {e}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in rec.items()
                                                if k != "epoch" and not np.isnan(v)))
        if out is not None and (e % checkpoint_every == 0 or e == epochs):
            save_checkpoint(out.with_name(out.name + ".ckpt"), trainer.state())
            _write(out, trainer, data, spent + time.perf_counter() - t_start)
    if out is not None and not out.exists():
        _write(out, trainer, data, spent)
    trainer.train_seconds = spent + time.perf_counter() - t_start
    return trainer, inputs


def _unit(data: TripletData) -> str:
    return {"classes": "images", "pairs": "pairs"}.get(data.kind, "triplets")


def final_accuracy(trainer: Trainer) -> float:
    """The last epoch's validation triplet accuracy (NaN before any epoch or without validation triplets)."""
    return trainer.history[-1].get("val_accuracy", float("nan")) if trainer.history else float("nan")


def _write(out: Path, trainer: Trainer, data: TripletData, seconds: float) -> None:
    meta = {"epochs": trainer.epoch, "device": str(trainer.device), "train_seconds": round(seconds, 1),
            "data": data.source, "baseline": trainer.baseline, "val_accuracy": final_accuracy(trainer),
            "history": trainer.history}
    if data.names:  # catalogue triplets: which ones were held out, by item id
        meta["held_out"] = [[data.names[i] for i in row] for row in data.val.tolist()]
    write_model(out, trainer.head, trainer.cfg, meta, trainer.net)
