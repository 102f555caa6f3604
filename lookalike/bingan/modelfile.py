"""The BinGAN model file and training checkpoints.

A model file (``lookalike train bingan --out MODEL``) is a NumPy ``.npz`` archive read with
``allow_pickle=False``, so opening a hostile file runs no code:

- ``format`` ("lookalike-bingan"), ``version`` (1), ``config`` (BinGANConfig JSON), ``meta`` (JSON: epochs,
  device, wall time, history);
- ``onnx``: the discriminator up to its code layer as an ONNX graph (uint8 bytes). It takes uint8 images
  (n, C, 32, 32) and returns the (n, K) float code-layer outputs; the bits are ``code >= 0`` (the reference
  thresholds at ``>= 0``). The ``bingan:PATH`` encoder runs it with ONNX Runtime; no torch is needed to search.
- ``d/<name>``: the discriminator's float32 weights, so torch can load the model again.

Checkpoints (``MODEL.ckpt``) hold optimiser state and RNG states as well; they are written with ``torch.save`` and
read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import modelfiles
from ..errors import EncoderError
from ..modelfiles import read_archive, read_config, read_onnx, read_weights, save_checkpoint
from .config import SIZE, BinGANConfig

FORMAT = "lookalike-bingan"
VERSION = 1
__all__ = ["FORMAT", "VERSION", "ModelFile", "export_onnx", "load_checkpoint", "read_model", "save_checkpoint",
           "write_model"]


@dataclass(frozen=True)
class ModelFile:
    config: BinGANConfig
    onnx: bytes
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]


def export_onnx(disc: Any, cfg: BinGANConfig) -> bytes:
    """The discriminator's code layer as ONNX bytes: uint8 (n, C, 32, 32) → float32 (n, K). Needs torch."""
    import torch

    class _Codes(torch.nn.Module):
        def __init__(self, d: torch.nn.Module) -> None:
            super().__init__()
            self.d = d

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.d((images.float() - 127.5) / 128.0).code

    was_training = disc.training
    wrapper = _Codes(disc).cpu().eval()
    example = torch.zeros((2, cfg.channels, SIZE, SIZE), dtype=torch.uint8)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (example,), buffer,  # type: ignore[arg-type]  # file-like objects work with dynamo=False
                input_names=["images"], output_names=["code"], dynamic_axes={"images": {0: "n"}, "code": {0: "n"}},
                opset_version=17, dynamo=False,
            )
    finally:
        disc.train(was_training)
    return buffer.getvalue()


def write_model(path: str | Path, disc: Any, cfg: BinGANConfig, meta: dict[str, Any]) -> Path:
    """Write the model file atomically (a temporary file, then rename). Needs torch."""
    path = Path(path)
    weights = {f"d/{k}": v.detach().cpu().float().numpy() for k, v in disc.state_dict().items()}
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT), "version": np.array(VERSION), "config": np.array(cfg.to_json()),
        "meta": np.array(json.dumps(meta)), "onnx": np.frombuffer(export_onnx(disc, cfg), dtype=np.uint8),
        **weights,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def read_model(path: str | Path) -> ModelFile:
    """Read and check a model file without running any code from it.

    Raises:
        EncoderError: missing, unreadable, not a BinGAN model file, another version, or a config that does not
            parse or does not match the weights.
    """
    path, arrays = read_archive(path, FORMAT, VERSION, "BinGAN")
    cfg, meta = read_config(path, arrays, BinGANConfig.from_json, "BinGAN")
    return ModelFile(cfg, read_onnx(path, arrays, "BinGAN"), read_weights(path, arrays, "d/", "BinGAN"), meta)


def load_discriminator(model: ModelFile) -> Any:
    """A torch Discriminator with the file's weights (eval mode). Needs torch."""
    import torch

    from .nets import Discriminator

    disc = Discriminator(model.config)
    try:
        disc.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.weights.items()})
    except RuntimeError as err:
        raise EncoderError(f"the BinGAN weights do not fit its config: {err}") from err
    return disc.eval()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a BinGAN checkpoint (InvalidParameterError: missing, unreadable or not one)."""
    return modelfiles.load_checkpoint(path, FORMAT, "BinGAN")
