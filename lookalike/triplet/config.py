"""Triplet-training hyperparameters, as a plain dataclass (no torch), stored as JSON in model files.

The loss is the hinge ``max(0, g + D(q, p) - D(q, n))`` on L2-normalised embeddings, with one of two distances:

- ``euclidean``: ``D = ||a - b||`` (0 to 2 on unit vectors), the fashion prototype's (after Flipkart's VisNet),
  whose ``g = 0.05`` is kept as the default margin;
- ``angular``: the cosine distance ``D = 1 - cos(a, b)`` (0 to 2), a margin on the cosine as in TiefVision;
  default ``g = 0.1``.

On unit vectors both distances order neighbours alike (``||a - b||² = 2 - 2 cos``), so a search by cosine in the
catalogue ranks exactly as the training distance does; they differ in how the margin weighs near and far pairs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError
from ..modelfiles import config_fields

DISTANCES = ("euclidean", "angular")
MINING = ("semi-hard", "hard", "all")
DEFAULT_MARGIN = {"euclidean": 0.05, "angular": 0.1}
BACKBONE = "efficientnet-lite0"
FEATURE_DIM = 1280  # efficientnet-lite0's pooled head convolution
BLOCKS = 16  # MBConv blocks of efficientnet-lite0 (--fine-tune at most this many)


@dataclass(frozen=True)
class TripletConfig:
    """Everything that defines a triplet model and its training run.

    Attributes:
        dim: the embedding's length (512, the prototype's).
        hidden: width of the projection head's hidden layer (0: a single linear layer).
        residual: the head adds a learned correction to the features, ``normalize(x + mlp(x))``, its last layer
            initialised at zero: the untrained model *is* efficientnet-lite0, and weight decay pulls it back there.
            For few triplets (people's judgements), where a head learned from scratch loses what the features knew
            (``benchmarks/judged.py``). Needs ``dim`` 1280, the features' length.
        distance: ``"euclidean"`` or ``"angular"`` (see the module docstring).
        margin: the hinge's margin g; None takes the distance's default (0.05 Euclidean, 0.1 angular).
        mining: how each (query, positive) pair of a batch gets its negative: ``"semi-hard"`` (the closest negative
            farther than the positive, else the farthest: FaceNet's rule as TensorFlow Addons implements it),
            ``"hard"`` (the closest negative) or ``"all"`` (every negative; the loss averages the triplets that
            still violate the margin).
        fine_tune: 0 (default) keeps efficientnet-lite0 frozen and trains the head on its cached features; N > 0
            also trains its last N MBConv blocks and its 1280-channel head convolution (batch-norm statistics stay
            frozen).
        batch_size, lr, weight_decay: minibatch (images for class folders and pairs rows × 2, rows × 3 for CSV
            triplets) and AdamW settings.
        per_class: images drawn per class into a batch (class folders), so every batch holds positives.
        val_fraction: share of the triplets held out to measure triplet accuracy (0: none).
        seed: seeds the head's initialisation, the validation split and the batches.
    """

    dim: int = 512
    hidden: int = 1024
    residual: bool = False
    distance: str = "euclidean"
    margin: float | None = None
    mining: str = "semi-hard"
    fine_tune: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    per_class: int = 8
    val_fraction: float = 0.2
    seed: int = 0
    backbone: str = BACKBONE

    def __post_init__(self) -> None:
        _check(_int(self.dim) and 2 <= self.dim <= 4096, "dim", self.dim, "an integer in [2, 4096]")
        _check(_int(self.hidden) and 0 <= self.hidden <= 8192, "hidden", self.hidden, "an integer in [0, 8192]")
        _check(isinstance(self.residual, bool), "residual", self.residual, "true or false")
        _check(not self.residual or self.dim == FEATURE_DIM, "dim", self.dim,
               f"{FEATURE_DIM} (the features' length) for a residual head")
        _check(self.distance in DISTANCES, "distance", self.distance, f"one of {', '.join(DISTANCES)}")
        _check(self.margin is None or (_real(self.margin) and 0 < self.margin <= 2), "margin", self.margin,
               "a real number in (0, 2]")
        _check(self.mining in MINING, "mining", self.mining, f"one of {', '.join(MINING)}")
        _check(_int(self.fine_tune) and 0 <= self.fine_tune <= BLOCKS, "fine-tune", self.fine_tune,
               f"an integer in [0, {BLOCKS}]")
        _check(_int(self.batch_size) and 3 <= self.batch_size <= 65536, "batch-size", self.batch_size,
               "an integer in [3, 65536]")
        _check(_real(self.lr) and 0 < self.lr < 1, "lr", self.lr, "a real number in (0, 1)")
        _check(_real(self.weight_decay) and 0 <= self.weight_decay < 1, "weight-decay", self.weight_decay,
               "a real number in [0, 1)")
        _check(_int(self.per_class) and self.per_class >= 2, "per-class", self.per_class, "an integer >= 2")
        _check(_real(self.val_fraction) and 0 <= self.val_fraction <= 0.5, "val-fraction", self.val_fraction,
               "a real number in [0, 0.5]")
        _check(_int(self.seed) and self.seed >= 0, "seed", self.seed, "a non-negative integer")
        _check(self.backbone == BACKBONE, "backbone", self.backbone, repr(BACKBONE))

    @property
    def g(self) -> float:
        """The margin after resolving None to the distance's default."""
        return DEFAULT_MARGIN[self.distance] if self.margin is None else float(self.margin)

    def replace(self, **changes: Any) -> TripletConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TripletConfig:
        """Parse a stored config, refusing unknown keys and wrong types with InvalidParameterError."""
        return cls(**config_fields(cls, text, "triplet", ("lr", "weight_decay", "val_fraction", "margin")))


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise InvalidParameterError(f"The '--{key}' parameter of triplet training must be {expected}. "
                                    f"Got {value!r} instead.")
