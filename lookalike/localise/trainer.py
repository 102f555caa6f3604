"""Training the localiser: the crop classifier and the box regressor on cached feature maps.

The backbone runs once per training image (:func:`.data.load_box_data`: efficientnet-lite0's ONNX feature map, as
at inference); an epoch then draws ``per_image`` crops of every image (:func:`.data.sample_crops`: up to half
object crops), builds their features (:func:`.windows.crop_features`) and trains, with AdamW, the logistic loss of
object (IoU >= ``pos_iou``) against background (IoU < ``neg_iou``) crops plus the smooth-L1 loss of the box
offsets of the object crops. Everything is seeded by ``cfg.seed``: the same config and data give the same model,
and a run resumed from its checkpoint continues exactly as the uninterrupted run would.

After every epoch, with validation boxes (``--val-boxes``), the mean IoU of the predicted boxes (the averaging
rule of :func:`.windows.average_boxes`) with the true ones, and the share with IoU >= 0.5.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidParameterError
from ..modelfiles import resolve_device
from ..validation import check_int
from .config import LocaliserConfig
from .data import BoxData, sample_crops
from .modelfile import FORMAT, load_checkpoint, save_checkpoint, write_model
from .nets import ExportModel, LocaliserNet
from .windows import average_boxes, crop_cells, crop_coords, crop_features, iou

__all__ = ["Trainer", "evaluate", "train"]
REG_WEIGHT = 1.0  # the box loss's weight against the classifier's
SMOOTH_L1_BETA = 1 / 9  # Fast R-CNN's


class Trainer:
    """The network, the optimiser and the crop RNG. Seeded from ``cfg.seed``."""

    def __init__(self, cfg: LocaliserConfig, device: str | torch.device = "auto") -> None:
        self.cfg = cfg
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        torch.manual_seed(cfg.seed)
        self.net = LocaliserNet(cfg).to(self.device)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng([cfg.seed, 2])
        self.cells = crop_cells(cfg)
        self.coords = crop_coords(self.cells, cfg.grid)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.standardised = False

    def standardise(self, data: BoxData, sample: int = 20_000) -> None:
        """Set the network's input standardisation from a seeded sample of the training crops' features."""
        rng = np.random.default_rng([self.cfg.seed, 3])
        img = rng.integers(0, len(data), sample)
        cells = self.cells[rng.integers(0, len(self.cells), sample)]
        x = crop_features(data.ii, img, cells, self.cfg).astype(np.float64)
        self.net.set_standardisation(torch.from_numpy(x.mean(axis=0)).float().to(self.device),
                                     torch.from_numpy(x.std(axis=0)).float().to(self.device))
        self.standardised = True

    def train_epoch(self, data: BoxData, progress: bool = False) -> dict[str, float]:
        """One pass: ``per_image`` crops of every training image; returns the mean losses."""
        cfg = self.cfg
        if not self.standardised:
            self.standardise(data)
        self.net.train()
        img, crop, label, target = sample_crops(data.boxes, self.coords, cfg, self.rng, range(len(data)))
        order = self.rng.permutation(len(img))
        steps = list(range(0, len(order), cfg.batch_size))
        bar = _bar(len(steps), progress, f"epoch {self.epoch + 1}")
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "cls": 0.0, "box": 0.0}
        for i, start in enumerate(steps, 1):
            b = order[start:start + cfg.batch_size]
            x = torch.from_numpy(crop_features(data.ii, img[b], self.cells[crop[b]], cfg)).to(self.device)
            y = torch.from_numpy(label[b]).to(self.device)
            t = torch.from_numpy(target[b]).to(self.device)
            logits, offsets = self.net(x)
            known, pos = y >= 0, y == 1
            cls = F.binary_cross_entropy_with_logits(logits[known], y[known].float()) if known.any() \
                else logits.sum() * 0
            box = F.smooth_l1_loss(offsets[pos], t[pos], beta=SMOOTH_L1_BETA) if pos.any() else offsets.sum() * 0
            loss = cls + REG_WEIGHT * box
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            for key, value in (("loss", loss), ("cls", cls), ("box", box)):
                sums[key] += float(value.item())
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"loss": f"{sums['loss'] / i:.4f}"}, refresh=False)
        if bar is not None:
            bar.close()
        self.epoch += 1
        record = {"epoch": float(self.epoch), **{k: v / len(steps) for k, v in sums.items()},
                  "seconds": time.perf_counter() - t0}
        self.history.append(record)
        return record

    @torch.no_grad()
    def predict(self, data: BoxData, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Every crop's (p(object), box) for every image of ``data``, by the torch network: (n, m), (n, m, 4)."""
        self.net.eval()
        model = ExportModel(self.net)
        m = len(self.cells)
        ps, boxes = [], []
        for start in range(0, len(data), chunk):
            idx = np.arange(start, min(start + chunk, len(data)))
            x = crop_features(data.ii, np.repeat(idx, m), np.tile(self.cells, (len(idx), 1)), self.cfg)
            crops = torch.from_numpy(np.tile(self.coords, (len(idx), 1))).to(self.device)
            p, b = model(torch.from_numpy(x).to(self.device), crops)
            ps.append(p.cpu().numpy().reshape(len(idx), m))
            boxes.append(b.cpu().numpy().reshape(len(idx), m, 4))
        self.net.train()
        return np.concatenate(ps), np.concatenate(boxes)

    def state(self) -> dict[str, Any]:
        return {"format": FORMAT + "-checkpoint", "config": self.cfg.to_json(), "epoch": self.epoch,
                "net": self.net.state_dict(), "opt": self.opt.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state), "history": json.dumps(self.history),
                "standardised": self.standardised}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> Trainer:
        try:
            trainer = cls(LocaliserConfig.from_json(state["config"]), device)
            trainer.net.load_state_dict(state["net"])
            trainer.opt.load_state_dict(state["opt"])
            torch.set_rng_state(state["torch_rng"])
            trainer.rng.bit_generator.state = json.loads(state["numpy_rng"])
            trainer.epoch = int(state["epoch"])
            trainer.history = json.loads(state["history"])
            trainer.standardised = bool(state["standardised"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise InvalidParameterError(f"the localiser checkpoint does not load: {err}") from err
        return trainer


def evaluate(p: np.ndarray, boxes: np.ndarray, truth: np.ndarray, threshold: float, min_score: float
             ) -> dict[str, float]:
    """Mean IoU of the averaged boxes with the true ones (a missing box counts 0), the share >= 0.5, and the
    share of images where nothing looked like an object."""
    ious, missing = [], 0
    for pi, bi, true in zip(p, boxes, truth, strict=True):
        found, _score, _n = average_boxes(pi, bi, threshold, min_score)
        if found is None:
            missing += 1
            ious.append(0.0)
        else:
            ious.append(float(iou(np.clip(found, 0, 1)[None, :], true)[0]))
    values = np.array(ious)
    return {"mean_iou": float(values.mean()), "iou50": float((values >= 0.5).mean()),
            "no_box": missing / max(len(values), 1)}


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)


def train(cfg: LocaliserConfig, data: BoxData, epochs: int, out: str | Path, *, device: str = "auto",
          resume: bool = False, checkpoint_every: int = 1, progress: bool = False, val: BoxData | None = None,
          threads: int = 0, log: Callable[[str], None] = print) -> Trainer:
    """Train for ``epochs`` epochs in all (``resume`` continues ``OUT.ckpt``), writing ``out`` and ``OUT.ckpt``
    every ``checkpoint_every`` epochs and at the end; ``val``: boxes to report the mean IoU on after each epoch.
    ``threads`` > 0 sets torch's CPU threads for the run."""
    check_int("epochs", epochs, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_int("threads", threads, 0)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(cfg, data, epochs, Path(out), device, resume, checkpoint_every, progress, val, log)
    finally:
        torch.set_num_threads(before)


def _train(cfg: LocaliserConfig, data: BoxData, epochs: int, out: Path, device: str, resume: bool,
           checkpoint_every: int, progress: bool, val: BoxData | None, log: Callable[[str], None]) -> Trainer:
    ckpt = out.with_name(out.name + ".ckpt")
    if resume:
        trainer = Trainer.from_state(load_checkpoint(ckpt), device)
        if trainer.cfg != cfg:
            log(f"resuming with the checkpoint's settings ({trainer.cfg.to_json()})")
        log(f"resumed {ckpt} at epoch {trainer.epoch}")
    else:
        trainer = Trainer(cfg, device)
    cfg = trainer.cfg
    if data.ii.shape[1] != cfg.grid + 1 or data.ii.shape[3] != cfg.channels:
        raise InvalidParameterError(f"the feature maps do not match the config ({cfg.layer} at {cfg.size})")
    log(f"training a localiser on {cfg.layer} features at {cfg.size}x{cfg.size} ({cfg.grid}x{cfg.grid} cells, "
        f"{len(trainer.cells)} crops an image) on {data.source}: {len(data):,} images"
        + (f", {len(val):,} validation images" if val is not None else "") + f", device {trainer.device}")
    t_start = time.perf_counter()
    spent = sum(r.get("seconds", 0.0) for r in trainer.history)
    while trainer.epoch < epochs:
        rec = trainer.train_epoch(data, progress)
        if val is not None:
            rec.update(evaluate(*trainer.predict(val), val.boxes, cfg.threshold, cfg.min_score))
        e = trainer.epoch
        log(f"epoch {e}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in rec.items() if k != "epoch"))
        if e % checkpoint_every == 0 or e == epochs:
            save_checkpoint(ckpt, trainer.state())
            _write(out, trainer, data, spent + time.perf_counter() - t_start)
    if not out.exists():
        _write(out, trainer, data, spent)
    return trainer


def _write(out: Path, trainer: Trainer, data: BoxData, seconds: float) -> None:
    meta = {"epochs": trainer.epoch, "device": str(trainer.device), "train_seconds": round(seconds, 1),
            "data": data.source, "images": len(data), "history": trainer.history}
    write_model(out, trainer.net, trainer.cfg, meta)
