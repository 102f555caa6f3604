"""Localiser hyperparameters, as a plain dataclass (no torch), stored as JSON in model files.

Defaults (the layer stage5 at 224 pixels, the threshold 0.995) were chosen on the *validation* composites
(``lookalike.evaluation.composites``, split ``validation``: other products, another strip of the photographs than
the training split), never on the test composites; see BENCHMARKS.md ("Product localisation on composites").
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError
from ..modelfiles import config_fields

LAYERS = ("stage5", "stage6", "stage7", "head")
STRIDE = {"stage5": 16, "stage6": 32, "stage7": 32, "head": 32}
CHANNELS = {"stage5": 112, "stage6": 192, "stage7": 320, "head": 1280}


@dataclass(frozen=True)
class LocaliserConfig:
    """Everything that defines a localiser and its training run.

    Attributes:
        layer: the efficientnet-lite0 layer whose spatial feature map the crops are pooled from.
        size: the side the image is resized to before the backbone (a multiple of the layer's stride); the map is
            ``size / stride`` cells a side.
        max_aspect: crops are every rectangle of whole cells whose sides differ by at most this factor.
        context: cells added on each side of a crop for its context feature.
        hidden: width of the two hidden layers shared by the classifier and the regressor.
        pos_iou, neg_iou: a crop whose IoU with the true box is at least ``pos_iou`` is an object crop (and trains
            the regressor); below ``neg_iou`` a background crop; in between it trains neither head.
        threshold: at inference, the boxes of the crops with p(object) >= ``threshold`` are averaged. 0.995,
            chosen on the validation composites (mean IoU 0.700 against 0.667 at TiefVision's 0.8: the boxes of
            crops the classifier is less sure of are worse, and averaging them in pulls the mean box off).
        min_score: when no crop passes ``threshold``, the best crop's box is used if its p(object) is at least
            this; below it nothing looks like an object and no box is returned (the whole image is used).
        per_image: crops drawn per training image and epoch (half object crops when it has enough).
        batch_size, lr, weight_decay: minibatch (crops) and AdamW settings.
        seed: seeds the initialisation and the crops drawn.
    """

    layer: str = "stage5"
    size: int = 224
    max_aspect: float = 3.0
    context: int = 1
    hidden: int = 512
    pos_iou: float = 0.5
    neg_iou: float = 0.3
    threshold: float = 0.995
    min_score: float = 0.1
    per_image: int = 32
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.layer in LAYERS, "layer", self.layer, f"one of {', '.join(LAYERS)}")
        stride = STRIDE.get(self.layer, 32)
        _check(_int(self.size) and 2 * stride <= self.size <= 1024 and self.size % stride == 0, "size", self.size,
               f"a multiple of {stride} in [{2 * stride}, 1024]")
        _check(_real(self.max_aspect) and 1 <= self.max_aspect <= 32, "max-aspect", self.max_aspect,
               "a real number in [1, 32]")
        _check(_int(self.context) and 0 <= self.context <= 8, "context", self.context, "an integer in [0, 8]")
        _check(_int(self.hidden) and 8 <= self.hidden <= 8192, "hidden", self.hidden, "an integer in [8, 8192]")
        _check(_real(self.pos_iou) and 0 < self.pos_iou <= 1, "pos-iou", self.pos_iou, "a real number in (0, 1]")
        _check(_real(self.neg_iou) and 0 <= self.neg_iou <= self.pos_iou, "neg-iou", self.neg_iou,
               "a real number in [0, pos-iou]")
        _check(_real(self.threshold) and 0 <= self.threshold <= 1, "threshold", self.threshold,
               "a real number in [0, 1]")
        _check(_real(self.min_score) and 0 <= self.min_score <= 1, "min-score", self.min_score,
               "a real number in [0, 1]")
        _check(_int(self.per_image) and 2 <= self.per_image <= 4096, "per-image", self.per_image,
               "an integer in [2, 4096]")
        _check(_int(self.batch_size) and 2 <= self.batch_size <= 65536, "batch-size", self.batch_size,
               "an integer in [2, 65536]")
        _check(_real(self.lr) and 0 < self.lr < 1, "lr", self.lr, "a real number in (0, 1)")
        _check(_real(self.weight_decay) and 0 <= self.weight_decay < 1, "weight-decay", self.weight_decay,
               "a real number in [0, 1)")
        _check(_int(self.seed) and self.seed >= 0, "seed", self.seed, "a non-negative integer")

    @property
    def grid(self) -> int:
        """Cells of the feature map a side."""
        return self.size // STRIDE[self.layer]

    @property
    def channels(self) -> int:
        return CHANNELS[self.layer]

    @property
    def feature_dim(self) -> int:
        """Length of one crop's feature: the mean inside, the mean of its context, its four coordinates."""
        return 2 * self.channels + 4

    def replace(self, **changes: Any) -> LocaliserConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocaliserConfig:
        """Parse a stored config, refusing unknown keys and wrong types with InvalidParameterError."""
        floats = ("max_aspect", "pos_iou", "neg_iou", "threshold", "min_score", "lr", "weight_decay")
        return cls(**config_fields(cls, text, "localiser", floats))


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise InvalidParameterError(f"The '--{key}' parameter of localiser training must be {expected}. "
                                    f"Got {value!r} instead.")
