"""The localiser model file and training checkpoints.

A model file (``lookalike train localiser --out MODEL``) is a NumPy ``.npz`` archive read with
``allow_pickle=False``, so opening a hostile file runs no code:

- ``format`` ("lookalike-localiser"), ``version`` (1), ``config`` (LocaliserConfig JSON), ``meta`` (JSON: epochs,
  device, wall time, the history of losses and validation IoU);
- ``onnx``: the graph (uint8 bytes) from crops to (p(object), box): inputs ``features`` float32 (n, 2C + 4) and
  ``crops`` float32 (n, 4), outputs ``p`` (n,) and ``boxes`` (n, 4) (see :mod:`.nets`); the backbone's feature map
  comes from efficientnet-lite0's own cached graph (``lookalike.encoders.efficientnet.feature_map_session``);
- ``w/<name>``: the network's float32 weights, so torch can load the model again.

Checkpoints (``MODEL.ckpt``) hold the optimiser and RNG states as well, written with ``torch.save`` and read with
``torch.load(weights_only=True)``.
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
from .config import LocaliserConfig

FORMAT = "lookalike-localiser"
VERSION = 1
__all__ = ["FORMAT", "VERSION", "ModelFile", "load_checkpoint", "load_net", "read_model", "save_checkpoint",
           "write_model"]


@dataclass(frozen=True)
class ModelFile:
    config: LocaliserConfig
    onnx: bytes
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]


def export_onnx(net: Any, cfg: LocaliserConfig) -> bytes:
    """The ONNX bytes of :class:`~.nets.ExportModel` around ``net``. Needs torch."""
    import torch

    from .nets import ExportModel

    module = ExportModel(net).cpu().eval()
    example = (torch.zeros((2, cfg.feature_dim)), torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 1.0, 1.0]]))
    buffer = io.BytesIO()
    was_training = net.training
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, example, buffer,  # type: ignore[arg-type]  # file-like objects work with dynamo=False
                input_names=["features", "crops"], output_names=["p", "boxes"],
                dynamic_axes={"features": {0: "n"}, "crops": {0: "n"}, "p": {0: "n"}, "boxes": {0: "n"}},
                opset_version=17, dynamo=False,
            )
    finally:
        net.train(was_training)
    return buffer.getvalue()


def write_model(path: str | Path, net: Any, cfg: LocaliserConfig, meta: dict[str, Any]) -> Path:
    """Write the model file atomically (a temporary file, then rename). Needs torch."""
    path = Path(path)
    onnx = export_onnx(net, cfg)
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT), "version": np.array(VERSION), "config": np.array(cfg.to_json()),
        "meta": np.array(json.dumps(meta)), "onnx": np.frombuffer(onnx, dtype=np.uint8),
        **{f"w/{k}": v.detach().cpu().float().numpy() for k, v in net.state_dict().items()},
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
        EncoderError: missing, unreadable, truncated, not a localiser model file, another version, or a config
            that does not parse.
    """
    path, arrays = read_archive(path, FORMAT, VERSION, "localiser")
    cfg, meta = read_config(path, arrays, LocaliserConfig.from_json, "localiser")
    return ModelFile(cfg, read_onnx(path, arrays, "localiser"), read_weights(path, arrays, "w/", "localiser"), meta)


def load_net(model: ModelFile) -> Any:
    """The :class:`~.nets.LocaliserNet` with the file's weights, in eval mode. Needs torch."""
    import torch

    from .nets import LocaliserNet

    net = LocaliserNet(model.config)
    try:
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.weights.items()})
    except RuntimeError as err:
        raise EncoderError(f"the localiser model's weights do not fit its config: {err}") from err
    return net.eval()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a localiser checkpoint (InvalidParameterError: missing, unreadable or not one)."""
    return modelfiles.load_checkpoint(path, FORMAT, "localiser")
