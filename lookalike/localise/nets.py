"""The localiser's network (torch): one trunk shared by the crop classifier and the box regressor.

``features`` (n, 2C + 4: a crop's mean feature, its context's mean, its coordinates; see :mod:`.windows`) are
standardised by the training set's per-column mean and spread (buffers, exported with the graph), then
``Linear → ReLU → Linear → ReLU`` (``hidden`` wide) feeds two linear heads: the object logit and the four box
offsets relative to the crop. :class:`ExportModel` is the graph in the model file: it adds the sigmoid and decodes
the offsets into boxes (shares of the image's sides) with the crops' coordinates, so the file's ONNX graph alone
maps crops to (p(object), box).
"""

from __future__ import annotations

import torch

from .config import LocaliserConfig

__all__ = ["ExportModel", "LocaliserNet"]


class LocaliserNet(torch.nn.Module):
    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, cfg: LocaliserConfig) -> None:
        super().__init__()
        d = cfg.feature_dim
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        self.trunk = torch.nn.Sequential(torch.nn.Linear(d, cfg.hidden), torch.nn.ReLU(),
                                         torch.nn.Linear(cfg.hidden, cfg.hidden), torch.nn.ReLU())
        self.classifier = torch.nn.Linear(cfg.hidden, 1)
        self.regressor = torch.nn.Linear(cfg.hidden, 4)

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.scale.copy_(1.0 / torch.clamp(std, min=1e-6))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(object logits (n,), box offsets (n, 4))."""
        h = self.trunk((features - self.mean) * self.scale)
        return self.classifier(h).squeeze(1), self.regressor(h)


class ExportModel(torch.nn.Module):
    """(features (n, D), crops (n, 4)) → (p(object) (n,), boxes (n, 4)): the graph of the model file."""

    def __init__(self, net: LocaliserNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, offsets = self.net(features)
        size = torch.cat([crops[:, 2:] - crops[:, :2]] * 2, dim=1)
        return torch.sigmoid(logits), crops + offsets * size
