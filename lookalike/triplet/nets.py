"""The networks (torch): the projection head, and efficientnet-lite0 split for fine-tuning its last blocks.

The head maps efficientnet-lite0's L2-normalised 1280-d features to ``dim`` unit vectors:
``Linear(1280, hidden) → ReLU → Linear(hidden, dim) → L2 normalisation`` (``hidden = 0``: one linear layer); a
residual head (``residual``, dim 1280) is ``normalize(x + mlp(x))`` with the last layer zero-initialised.

For ``fine_tune = N`` the pretrained network (``lookalike.encoders.efficientnet.build_torch_model``, the very
graph the ``efficientnet-lite0`` encoder exports) is cut before its last N MBConv blocks: the *prefix* (stem and
the first 16 − N blocks) stays frozen and its activations are computed once per image; the *suffix* (the last N
blocks, the 1280-channel head convolution, average pooling, L2 normalisation) trains with the projection head.
Batch-norm layers keep their pretrained statistics (the network stays in eval mode): the batches of a small data
set are too few and too alike to re-estimate them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .config import BLOCKS, FEATURE_DIM, TripletConfig

__all__ = ["FineTuneNet", "FullModel", "ProjectionHead"]
# the input scaling of efficientnet-lite0 (as in lookalike/encoders/efficientnet.py: (x - 127) / 128; the tests
# check that prefix → suffix gives the encoder's own features)
MEAN, STD = 127.0, 128.0


class ProjectionHead(torch.nn.Module):
    """1280-d features → ``dim`` unit vectors."""

    def __init__(self, cfg: TripletConfig, in_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        if cfg.hidden:
            self.mlp: torch.nn.Module = torch.nn.Sequential(
                torch.nn.Linear(in_dim, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, cfg.dim))
        else:
            self.mlp = torch.nn.Linear(in_dim, cfg.dim)
        self.residual = cfg.residual
        if cfg.residual:  # starts as the identity: the features themselves
            last = self.mlp[-1] if isinstance(self.mlp, torch.nn.Sequential) else self.mlp
            assert isinstance(last, torch.nn.Linear)
            torch.nn.init.zeros_(last.weight)
            torch.nn.init.zeros_(last.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.mlp(features)
        return F.normalize(features + out if self.residual else out, dim=1, eps=1e-12)


class FineTuneNet(torch.nn.Module):
    """efficientnet-lite0 cut before its last ``n`` blocks: a frozen prefix, a trainable suffix.

    ``trunk`` is the whole pretrained network (uint8 NHWC images → 1280-d unit features); the prefix and suffix
    share its modules, so training the suffix changes the trunk that is exported.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        from ..encoders.efficientnet import build_torch_model

        if not 1 <= n <= BLOCKS:
            raise ValueError(f"fine_tune must be in [1, {BLOCKS}]")
        self.n = n
        self.trunk = build_torch_model("head", "avg")
        self.cut = len(self.trunk.blocks) - n
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        for p in self.suffix_parameters():
            p.requires_grad_(True)
        self.trunk.eval()

    def train(self, mode: bool = True) -> FineTuneNet:  # batch-norm statistics stay frozen
        super().train(mode)
        self.trunk.eval()
        return self

    def suffix_parameters(self) -> list[torch.nn.Parameter]:
        params = [p for block in self.trunk.blocks[self.cut:] for p in block.parameters()]
        return params + list(self.trunk.head.parameters())

    def suffix_state(self) -> dict[str, torch.Tensor]:
        """The trunk's state of the trained part only (the prefix is the pretrained weights)."""
        keep = tuple(f"blocks.{i}." for i in range(self.cut, len(self.trunk.blocks))) + ("head.",)
        return {k: v for k, v in self.trunk.state_dict().items() if k.startswith(keep)}

    @torch.no_grad()
    def prefix(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 224, 224, 3) → the activations before the trainable blocks."""
        x = (images.permute(0, 3, 1, 2).to(torch.float32) - MEAN) / STD
        x = self.trunk.stem(x)
        for block in self.trunk.blocks[:self.cut]:
            x = block(x)
        return x

    def suffix(self, x: torch.Tensor) -> torch.Tensor:
        """Prefix activations → the 1280-d unit features."""
        for block in self.trunk.blocks[self.cut:]:
            x = block(x)
        x = self.trunk.head(x)
        return F.normalize(x.mean(dim=(2, 3)), dim=1, eps=1e-12)


class FullModel(torch.nn.Module):
    """uint8 (n, 224, 224, 3) images → embeddings: the (fine-tuned) trunk, then the head (the exported graph)."""

    def __init__(self, trunk: Any, head: ProjectionHead) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))
